"""Which open tasks a person may see and act on; least privilege is in the query."""

from __future__ import annotations

from sqlalchemy import and_, select
from sqlalchemy.orm import Session, selectinload

from app import engine
from app.auth.access import may_work_on, my_task_condition, task_condition
from app.auth.models import User
from app.engine.models import HumanTask, ProcessInstance
from app.errors import NotAllowed, NotFound

SCOPES = ("mine", "group", "all")


def visible_tasks_query(
    db_session: Session,
    user: User,
    *,
    scope: str = "all",
    instance_id: int | None = None,
    ticket_id: int | None = None,
):
    """Open tasks ``user`` may see. scope: mine (assigned to them), group (unclaimed and
    offered to them or their groups), all (everything they may see)."""
    query = (
        select(HumanTask)
        .where(HumanTask.status == "open", task_condition(db_session, user))
        .order_by(HumanTask.created_at)
        .options(selectinload(HumanTask.candidates))
    )
    if scope == "mine":
        query = query.where(HumanTask.assignee == user.username)
    elif scope == "group":
        query = query.where(and_(HumanTask.assignee.is_(None), my_task_condition(user)))
    if instance_id is not None:
        query = query.where(HumanTask.instance_id == instance_id)
    if ticket_id is not None:
        query = query.where(HumanTask.ticket_id == ticket_id)
    return query


def get_visible_task(*, db_session: Session, user: User, task_id: str) -> HumanTask:
    """The task, if ``user`` may see it; otherwise 404 (ids cannot be probed)."""
    task = db_session.scalar(
        select(HumanTask).where(HumanTask.id == task_id, task_condition(db_session, user))
    )
    if task is None:
        raise NotFound(f"任务 {task_id} 不存在", f"task {task_id} not found")
    return task


def complete(*, db_session: Session, user: User, task_id: str, data: dict) -> ProcessInstance:
    task = get_visible_task(db_session=db_session, user=user, task_id=task_id)
    if task.status == "open" and not may_work_on(user, task):
        raise NotAllowed(
            f"任务 {task.name} 不是分配给你的，请先认领或转派",
            f"task {task.name} is not yours; claim it or have it transferred first",
        )
    return engine.complete_task(
        db_session=db_session, task_id=task_id, data=data, actor=user.username
    )
