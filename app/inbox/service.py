"""Which open tasks a person may see and act on; least privilege is in the query."""

from __future__ import annotations

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session, selectinload

from app import engine
from app.auth.access import may_work_on
from app.auth.models import User
from app.engine.models import HumanTask, HumanTaskCandidate, ProcessInstance
from app.errors import NotAllowed


def visible_tasks_query(
    user: User, *, instance_id: int | None = None, ticket_id: int | None = None
):
    query = (
        select(HumanTask)
        .where(HumanTask.status == "open")
        .order_by(HumanTask.created_at)
        .options(selectinload(HumanTask.candidates))
    )
    if instance_id is not None:
        query = query.where(HumanTask.instance_id == instance_id)
    if ticket_id is not None:
        query = query.where(HumanTask.ticket_id == ticket_id)
    if user.is_admin:
        return query
    candidate = exists().where(
        HumanTaskCandidate.task_id == HumanTask.id,
        or_(
            and_(HumanTaskCandidate.kind == "user", HumanTaskCandidate.value == user.username),
            and_(
                HumanTaskCandidate.kind == "group",
                HumanTaskCandidate.value.in_(sorted(user.group_names())),
            ),
        ),
    )
    return query.where(
        or_(
            HumanTask.assignee == user.username,
            and_(HumanTask.assignee.is_(None), candidate),
        )
    )


def complete(*, db_session: Session, user: User, task_id: str, data: dict) -> ProcessInstance:
    task = engine.get_task(db_session=db_session, task_id=task_id)
    if not may_work_on(user, task):
        raise NotAllowed(
            f"任务 {task.name} 不是分配给你的", f"task {task.name} is not assigned to you"
        )
    return engine.complete_task(
        db_session=db_session, task_id=task_id, data=data, actor=user.username
    )
