"""Where the running instances of a deployed version wait now, element by element: open user
tasks, pending timers and message waits (the instance view's badges and lists)."""

from __future__ import annotations

from sqlalchemy import func, null, select, true
from sqlalchemy.orm import Session

from app.engine.models import (
    HumanTask,
    MessageSubscription,
    ProcessDefinition,
    ProcessInstance,
    Timer,
)


def waiting_counts(*, db_session: Session, definition: ProcessDefinition) -> dict[str, int]:
    """{element id: running instances of this version waiting there now}: open user tasks,
    pending timers and message waits."""
    counts: dict[str, int] = {}
    for model, condition in (
        (HumanTask, HumanTask.status == "open"),
        (Timer, None),
        (MessageSubscription, None),
    ):
        query = (
            select(model.element_id, func.count(func.distinct(model.instance_id)))
            .join(ProcessInstance, ProcessInstance.id == model.instance_id)
            .where(
                ProcessInstance.definition_id == definition.id,
                ProcessInstance.status == "running",
            )
            .group_by(model.element_id)
        )
        if condition is not None:
            query = query.where(condition)
        for element_id, count in db_session.execute(query):
            counts[element_id] = counts.get(element_id, 0) + count
    return counts


def waiting_instances(
    *, db_session: Session, definition: ProcessDefinition, element_id: str, limit: int = 200
) -> list[dict]:
    """The running instances of this version waiting at ``element_id``, oldest first, each
    with what it waits on: an open task (since when), a timer (due when) or a message."""
    found: dict[int, dict] = {}
    for kind, model, moment, condition in (
        ("task", HumanTask, HumanTask.created_at, HumanTask.status == "open"),
        ("timer", Timer, Timer.due_at, true()),
        ("message", MessageSubscription, null(), true()),
    ):
        rows = db_session.execute(
            select(ProcessInstance, moment)
            .join(model, model.instance_id == ProcessInstance.id)
            .where(
                ProcessInstance.definition_id == definition.id,
                ProcessInstance.status == "running",
                model.element_id == element_id,
                condition,
            )
            .order_by(ProcessInstance.started_at, ProcessInstance.id)
            .limit(limit)
        )
        for instance, at in rows:
            found.setdefault(
                instance.id,
                {
                    "id": instance.id,
                    "business_key": instance.business_key,
                    "ticket_id": instance.ticket_id,
                    "started_at": instance.started_at,
                    "kind": kind,
                    "at": at,
                },
            )
    return sorted(found.values(), key=lambda row: (row["started_at"], row["id"]))[:limit]
