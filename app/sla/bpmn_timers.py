"""BPMN timers driven by the SLA clock: the process's escalation path fires when the clock says.

A timer boundary event stands for an SLA when it carries the Camunda property ``sla`` with
the clock's kind (``response`` or ``resolution``); ``sla_percent`` (default 100) places it at
that share of the target (a reminder at 75). Its own timer expression stays as the fallback
for work orders no policy matches. Whenever a clock of a work order changes (started, paused,
resumed, recomputed, stopped: ``clock.note_change``), whenever a user task carrying such
a timer opens, and on every step of a process with such a timer on another element, the
timers are moved to the clock's due time with ``engine.move_timers`` before
the transaction commits, so the escalation path fires at the SLA deadline on its business
calendar, never while the clock is paused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from app import engine
from app.engine.lint import camunda_properties
from app.engine.models import ProcessDefinition, ProcessInstance, Timer
from app.engine.parser import NS, load_xml
from app.sla import missing_years, task_due
from app.sla.clock import MISSING_YEARS, TIMERS_PENDING, clocks_by_kind, note_change, timer_due
from app.sla.sla_models import CLOCK_KINDS
from app.tickets.models import Ticket
from app.timeutil import utcnow

log = logging.getLogger(__name__)

KIND_PROPERTY = "sla"
PERCENT_PROPERTY = "sla_percent"
# session.info key: set while timers are being moved (the moves are engine steps themselves).
_MOVING = "sla_timers_moving"


@dataclass(frozen=True)
class SlaTimer:
    """A timer boundary event that stands for ``percent`` % of a clock's target.
    ``on_user_task``: attached to a user task (else to a sub-process, a receive task...)."""

    element_id: str
    kind: str
    percent: float
    attached_to: str | None
    on_user_task: bool = True


# Per definition content hash: versions are immutable, so this is never stale, only cold.
_SLA_TIMERS: dict[str, dict[str, SlaTimer]] = {}


def sla_timers(definition: ProcessDefinition) -> dict[str, SlaTimer]:
    """The SLA timers of a definition version, by element id (empty for most processes)."""
    found = _SLA_TIMERS.get(definition.content_hash)
    if found is None:
        found = read_sla_timers(definition.bpmn_filename, definition.bpmn_xml.encode())
        _SLA_TIMERS[definition.content_hash] = found
    return found


def read_sla_timers(filename: str, data: bytes) -> dict[str, SlaTimer]:
    """Timer boundary events with an ``sla`` property in a BPMN file. A property that names no
    clock kind, or a percent that is not a number in (0, 1000], is logged and left out: the
    timer then keeps its own expression."""
    root = load_xml(filename, data)
    user_tasks = {task.get("id") for task in root.iterfind(".//bpmn:userTask", NS)}
    found = {}
    for node in root.iterfind(".//bpmn:boundaryEvent", NS):
        properties = camunda_properties(node)
        kind = properties.get(KIND_PROPERTY)
        if kind is None or node.find("bpmn:timerEventDefinition", NS) is None:
            continue
        percent = _percent(properties.get(PERCENT_PROPERTY) or "100")
        ident = node.get("id")
        if kind not in CLOCK_KINDS or percent is None:
            log.warning(
                "%s: timer %s has sla=%r sla_percent=%r; it keeps its own expression",
                filename,
                ident,
                kind,
                properties.get(PERCENT_PROPERTY),
            )
            continue
        attached = node.get("attachedToRef")
        found[ident] = SlaTimer(ident, kind, percent, attached, attached in user_tasks)
    return found


def _percent(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if 0 < value <= 1000 else None


def note_opened(db_session: Session, instance: ProcessInstance, opened_elements: list[str]) -> None:
    """User tasks opened in this step whose SLA timers just started waiting on their own
    expression, or whose due date came from their own expression: move them to the clock
    before the step's transaction commits. A process with an SLA timer on anything else (a
    sub-process, a receive task) has no user task opening to tell when it starts waiting, so
    each of its steps is checked (a move is only made where a due time differs)."""
    if instance.ticket_id is None:
        return
    timers = sla_timers(instance.definition).values()
    if any(not timer.on_user_task for timer in timers):
        note_change(db_session, instance.ticket_id)
        return
    if not opened_elements:
        return
    attached = {timer.attached_to for timer in timers}
    attached |= task_due.due_date_tasks(instance.definition)
    if attached.intersection(opened_elements):
        note_change(db_session, instance.ticket_id)


def move_pending(db_session: Session, now: datetime | None = None) -> None:
    """Move the SLA timers of every work order noted in this transaction to their clocks'
    due times. The moves are engine steps; what they change in turn is moved in the same
    call."""
    if db_session.info.get(_MOVING):
        return
    db_session.info[_MOVING] = True
    try:
        while pending := db_session.info.pop(TIMERS_PENDING, None):
            for ticket_id, kinds in sorted(pending.items()):
                move_timers_of(db_session, ticket_id, now or utcnow(), kinds)
    finally:
        db_session.info.pop(_MOVING, None)


def move_timers_of(db_session: Session, ticket_id: int, now: datetime, kinds=CLOCK_KINDS) -> int:
    """Move the waiting SLA timers of the ticket's process that stand for its ``kinds``
    clocks to their due times, then give its open user tasks that have a due date the
    clock's (``task_due``); timers and tasks of a work order without clocks (no policy
    matched) keep their own. Returns how many timer elements moved."""
    # The ticket, its instance and the definition are in the session after a step or a
    # clock change; a process without timers for these kinds costs no query.
    ticket = db_session.get(Ticket, ticket_id)
    if ticket is None or ticket.process_instance_id is None:
        return 0
    instance = db_session.get(ProcessInstance, ticket.process_instance_id)
    if instance is None or instance.status != "running":
        return 0
    timers = {
        element_id: timer
        for element_id, timer in sla_timers(instance.definition).items()
        if timer.kind in kinds
    }
    due_tasks = task_due.due_date_tasks(instance.definition)
    if not timers and not due_tasks:
        return 0
    clocks = clocks_by_kind(db_session, ticket_id)
    if not clocks:
        return 0
    moved = _move_timers(db_session, instance, timers, clocks, now) if timers else 0
    # After the moves: an escalation that fired may have closed a task.
    task_due.follow_clock(db_session, instance.id, due_tasks, clocks)
    return moved


def _move_timers(
    db_session: Session,
    instance: ProcessInstance,
    timers: dict[str, SlaTimer],
    clocks: dict,
    now: datetime,
) -> int:
    waiting = db_session.execute(
        select(Timer.element_id, Timer.due_at).where(
            Timer.instance_id == instance.id, Timer.element_id.in_(sorted(timers))
        )
    ).all()
    moves: dict[datetime, set[str]] = {}
    for element_id, due_at in waiting:
        timer = timers[element_id]
        clock = clocks.get(timer.kind)
        if clock is None:
            continue
        target = timer_due(clock, timer.percent, now).astimezone(UTC)
        if due_at != target:
            moves.setdefault(target, set()).add(element_id)
    for target, element_ids in sorted(moves.items()):
        engine.move_timers(
            db_session=db_session,
            instance_id=instance.id,
            element_ids=sorted(element_ids),
            due_at=target,
        )
    return sum(len(element_ids) for element_ids in moves.values())


@event.listens_for(Session, "before_commit")
def _move_before_commit(session: Session) -> None:
    # Flush first: ticket changes made through the ORM (a new priority) reach the clocks in
    # the flush (receivers.follow_flush), where no engine step may run; the moves run here.
    session.flush()
    if session.info.get(TIMERS_PENDING):
        move_pending(session)
    # After the moves: their steps may run into the missing year as well.
    if session.info.get(MISSING_YEARS):
        missing_years.notify_admins(session)


@event.listens_for(Session, "after_soft_rollback")
def _forget_after_rollback(session: Session, previous_transaction) -> None:
    # The clock changes behind the notes are gone; a note kept would retry a failed move at
    # the next commit of this session (the timer worker's postponing commit).
    if previous_transaction.parent is None:
        session.info.pop(TIMERS_PENDING, None)
        session.info.pop(MISSING_YEARS, None)
