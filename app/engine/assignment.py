"""Who holds a task: claiming, giving back and transferring (转派), each in the process history."""

from __future__ import annotations

import logging
from functools import cache

from sqlalchemy import Insert, bindparam, select
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from app.database import write_together
from app.engine.models import (
    HumanTask,
    HumanTaskCandidate,
    ProcessEvent,
    ProcessInstance,
)
from app.engine.queries import compiled_of
from app.engine.runtime import Compiled, restore_data
from app.engine.signals import task_reassigned
from app.errors import NotFound
from app.timeutil import utcnow

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- assignment

# Events of a person changing who holds or is offered a task; the process itself is not stepped.
# task_dispatched: dispatch gave it (a dispatcher's choice, or the system's when the actor is
# None).
ASSIGNMENT_EVENTS = ("task_claimed", "task_unclaimed", "task_transferred", "task_dispatched")


def lock_task(*, db_session: Session, task_id: str) -> HumanTask:
    """The task read again after locking its instance's row.

    Claims, transfers and completions of one task therefore happen one after another, and each
    sees what the one before it left (PostgreSQL; SQLite takes its write lock at BEGIN).
    """
    return _lock(db_session, task_id, _LOCK_COLUMNS)[0]


def lock_task_with_data(
    *, db_session: Session, task_id: str, work_order: type | None = None
) -> tuple[HumanTask, dict, object | None]:
    """lock_task, with the data of the task's process as its latest task sees it ({} once the
    process ended), from the state the locking statement read: a caller that needs both saves
    a query and the ORM's work of loading the instance. ``work_order``: a mapped class whose
    ``id`` is the task's ``ticket_id`` (the engine does not know what it is); its row comes
    with the task, read by the same statement (None without one)."""
    task, work, (instance_id, status, state, state_format) = _lock(
        db_session, task_id, _STATE_COLUMNS, work_order
    )
    if status != "running":
        return task, {}, work
    return task, restore_data(instance_id, state, state_format), work


_INSTANCE = ProcessInstance.__table__
_TASK = HumanTask.__table__
_EVENT = ProcessEvent.__table__


def _lock(
    db_session: Session, task_id: str, columns: tuple, work_order: type | None = None
) -> tuple[HumanTask, object | None, tuple]:
    locking, reading = _lock_statements(columns, work_order)
    locked = db_session.execute(locking, {"task_id": task_id}).first()
    if locked is None:
        raise NotFound(f"任务 {task_id} 不存在", f"task {task_id} not found")
    # Read after the lock is held: a statement that waited for it sees what its holder left.
    row = db_session.execute(reading, {"task_id": task_id}).unique().one()
    return row[0], (row[1] if work_order is not None else None), tuple(locked)


@cache
def _lock_statements(columns: tuple, work_order: type | None) -> tuple:
    """The locking statement and the reading one, built once per shape: building them cost
    more Python than running them (a few kinds of callers, so a few entries)."""
    task_id = bindparam("task_id")
    locking = (
        select(*columns)
        .join(_TASK, _TASK.c.instance_id == _INSTANCE.c.id)
        .where(_TASK.c.id == task_id)
        .with_for_update(of=_INSTANCE)
    )
    reading = select(HumanTask)
    if work_order is not None:
        reading = reading.add_columns(work_order).outerjoin(
            work_order, work_order.id == HumanTask.ticket_id
        )
    reading = (
        reading.where(HumanTask.id == task_id)
        .options(joinedload(HumanTask.candidates))
        .execution_options(populate_existing=True)
    )
    return locking, reading


_LOCK_COLUMNS = (_INSTANCE.c.id,)
_STATE_COLUMNS = (
    _INSTANCE.c.id,
    _INSTANCE.c.status,
    _INSTANCE.c.state,
    _INSTANCE.c.state_format,
)


def assignment(task: HumanTask) -> dict:
    """Who holds the task and to whom it is offered, as history and the audit trail show it."""
    return {
        "assignee": task.assignee,
        "candidate_groups": task.candidate_groups,
        "candidate_users": task.candidate_users,
    }


def reassign_task(
    *,
    db_session: Session,
    task: HumanTask,
    event_type: str,
    assignee: str | None,
    candidate_groups: list[str] | None = None,
    reason: str | None = None,
    actor: str | None = None,
) -> tuple[dict, dict]:
    """Give an open task (locked with lock_task) to ``assignee``; with ``candidate_groups``,
    offer it to those groups instead of its candidates. The change goes into the instance's
    history as ``event_type`` with {task_id, from, to, reason}; returns (before, after).

    Who may do this is the caller's rule. The workflow state does not change: who works on a
    task is kept in the human_task projection only.
    """
    before, after, _ = _reassign(
        db_session, task, event_type, assignee, candidate_groups, reason, actor, along=None
    )
    return before, after


def reassign_task_with(
    *,
    db_session: Session,
    task: HumanTask,
    event_type: str,
    assignee: str,
    along: tuple[Insert, dict],
    reason: str | None = None,
    actor: str | None = None,
):
    """reassign_task to ``assignee``, with an INSERT of the caller's (dispatch's decision,
    with RETURNING) written in the same statement as the task's new assignee and its history
    row (database.write_together: one round trip on PostgreSQL). ``along``: the statement,
    built once, and its parameters, whose names must not start with ``h_`` nor be
    ``task_id`` or ``assignee``. Returns its result."""
    return _reassign(db_session, task, event_type, assignee, None, reason, actor, along)[2]


# The two writes of every reassignment, built once: the task's assignee, and its history row.
_ASSIGN = (
    _TASK.update()
    .where(_TASK.c.id == bindparam("task_id"))
    .values(assignee=bindparam("assignee", type_=_TASK.c.assignee.type))
)
_HISTORY = _EVENT.insert().values(
    {
        column.key: bindparam(f"h_{column.key}", type_=column.type)
        for column in _EVENT.columns
        if not column.primary_key
    }
)


def _reassign(
    db_session: Session,
    task: HumanTask,
    event_type: str,
    assignee: str | None,
    candidate_groups: list[str] | None,
    reason: str | None,
    actor: str | None,
    along: tuple[Insert, dict] | None,
) -> tuple[dict, dict, object]:
    if event_type not in ASSIGNMENT_EVENTS:
        raise ValueError(f"not an assignment event: {event_type}")
    before = assignment(task)
    if candidate_groups is not None:
        # Rows that stay are kept: deleting and re-adding one key in a flush would collide.
        kept = [c for c in task.candidates if c.kind == "group" and c.value in candidate_groups]
        added = sorted(set(candidate_groups) - {c.value for c in kept})
        task.candidates = kept + [
            HumanTaskCandidate(task_id=task.id, kind="group", value=group) for group in added
        ]
    after = {**assignment(task), "assignee": assignee}
    found = compiled_of(db_session, task.instance_id)
    # What the session holds (the candidates above) is written before the rows below.
    db_session.flush()
    # The history row is written as the engine's steps write theirs (runtime.save_steps).
    params = {
        "task_id": task.id,
        "assignee": assignee,
        "h_instance_id": task.instance_id,
        "h_ticket_id": task.ticket_id,
        "h_element_id": task.element_id,
        "h_element_type": _element_type(found, task.element_id),
        "h_element_name": task.name,
        "h_event_type": event_type,
        "h_actor": actor,
        "h_at": utcnow(),
        "h_data": {"task_id": task.id, "from": before, "to": after, "reason": reason},
    }
    if along is None:
        result = write_together(db_session, (_ASSIGN, _HISTORY), params)
    else:
        statement, more = along
        result = write_together(db_session, (statement, _ASSIGN, _HISTORY), {**params, **more})
    set_committed_value(task, "assignee", assignee)
    task_reassigned.send(task, db_session=db_session, event_type=event_type, actor=actor)
    return before, after, result


def last_assignment(*, db_session: Session, task: HumanTask) -> ProcessEvent | None:
    """The latest claim, unclaim or transfer of ``task``; None while the process's own
    assignment (``camunda:assignee``, candidates) stands."""
    events = db_session.scalars(
        select(ProcessEvent)
        .where(
            ProcessEvent.instance_id == task.instance_id,
            ProcessEvent.element_id == task.element_id,
            ProcessEvent.event_type.in_(ASSIGNMENT_EVENTS),
        )
        .order_by(ProcessEvent.id.desc())
    )
    # One element can open several tasks over time (loops); the task id is in the data.
    return next((event for event in events if (event.data or {}).get("task_id") == task.id), None)


def _element_type(found: Compiled, element_id: str) -> str | None:
    """The spec class name, as the events written by engine steps carry it."""
    for spec in (found.spec, *found.subprocess_specs.values()):
        task_spec = spec.task_specs.get(element_id)
        if task_spec is not None:
            return task_spec.__class__.__name__
    return None
