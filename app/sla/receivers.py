"""Keeps SLA clocks in step with their work orders, without the other domains knowing: signal
receivers for engine steps and task reassignments, and a session hook for check-ins and for
ticket fields changed through the ORM (a PATCH of the priority, a status set by hand).

Imported once by create_app; every receiver runs inside the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session

from app import engine
from app.auth.models import User
from app.engine.models import HumanTask, ProcessEvent
from app.engine.signals import instance_stepped, task_reassigned
from app.site.models import CheckIn
from app.sla import bpmn_timers
from app.sla.clock import (
    RESOLVED_STATUSES,
    clocks_of,
    pause,
    pause_reasons,
    recompute,
    resume,
    start_clocks,
    stop,
)
from app.sla.policies import ticket_facts
from app.tickets.models import Ticket
from app.timeutil import utcnow

# Ticket fields policies match on: a change of one may select another policy.
MATCHED_FIELDS = ("priority", "category", "department_id", "process_key")
# Process variables that, submitted with a task (triage), change what policies match on.
DECIDED_FIELDS = ("priority", "category")


def follow_ticket(
    db_session: Session,
    ticket: Ticket,
    now: datetime,
    *,
    status: str,
    open_tasks: list[tuple[str, str]],
    decided: dict | None = None,
    rematch: bool = False,
    finished: bool = False,
    staff_acted: bool = False,
) -> None:
    """Bring the ticket's clocks to where the ticket stands: recomputed when what policies
    match on changed (``rematch``; ``decided``: priority or category the process just set),
    paused or running by the policy's ``pause_on``, the response clock stopped at the first
    action of staff (policies whose response is that), both stopped when finished."""
    if rematch:
        clocks = recompute(db_session, ticket, now, facts=ticket_facts(db_session, ticket, decided))
    else:
        clocks = clocks_of(db_session, ticket.id)
    if not clocks:
        return
    if finished or status in RESOLVED_STATUSES:
        for kind in ("response", "resolution"):
            stop(db_session, ticket, kind, now)
        return
    response = clocks[0]
    if staff_acted and response.policy and response.policy.response_event == "first_action":
        stop(db_session, ticket, "response", now)
    reasons = pause_reasons(clocks[-1].policy, status, open_tasks)
    if reasons:
        pause(db_session, ticket, reasons, now)
    else:
        resume(db_session, ticket, now)


@instance_stepped.connect
def follow_step(instance, *, db_session: Session, completed: int = 0, **_) -> None:
    """After every engine step of a ticket's process: the first step starts the clocks; a
    task that sets priority or category (triage) selects the policy again."""
    if instance.ticket_id is None:
        return
    ticket = db_session.get(Ticket, instance.ticket_id)
    if ticket is None:
        return
    now = instance.updated_at or utcnow()
    if instance.started_at == now:
        start_clocks(db_session, ticket, ticket.created_at or now)
    tasks = db_session.execute(
        select(
            HumanTask.element_id,
            HumanTask.name,
            HumanTask.status,
            HumanTask.completed_by,
            HumanTask.created_at,
        )
        .where(HumanTask.instance_id == instance.id)
        .where((HumanTask.status == "open") | (HumanTask.ended_at == now))
    ).all()
    completers = {t.completed_by for t in tasks if t.status == "completed" and t.completed_by}
    decided: dict = {}
    if completed:
        for data in db_session.scalars(
            select(ProcessEvent.data).where(
                ProcessEvent.instance_id == instance.id,
                ProcessEvent.event_type == "task_completed",
                ProcessEvent.at == now,
            )
        ):
            decided.update(
                {key: value for key, value in (data or {}).items() if key in DECIDED_FIELDS}
            )
    follow_ticket(
        db_session,
        ticket,
        now,
        status=ticket.status,
        open_tasks=[(t.element_id, t.name) for t in tasks if t.status == "open"],
        decided=decided,
        rematch=bool(decided),
        finished=instance.status == "completed",
        staff_acted=bool(completed) and _any_staff(db_session, completers),
    )
    bpmn_timers.note_opened(
        db_session,
        instance,
        [t.element_id for t in tasks if t.status == "open" and t.created_at == now],
    )


@task_reassigned.connect
def follow_reassignment(
    task, *, db_session: Session, event_type: str | None = None, actor: str | None = None, **_
) -> None:
    """A claim or transfer by a person is the first response on the ticket (automatic
    dispatch has no actor and is not). The signal says who and how; without that (an older
    sender) the last assignment event does."""
    if task.ticket_id is None:
        return
    if event_type is None:
        last = engine.last_assignment(db_session=db_session, task=task)
        if last is None:
            return
        event_type, actor = last.event_type, last.actor
    if event_type == "task_unclaimed" or not actor:
        return
    if not _any_staff(db_session, {actor}):
        return
    ticket = db_session.get(Ticket, task.ticket_id)
    clocks = clocks_of(db_session, task.ticket_id) if ticket else []
    if clocks and clocks[0].policy and clocks[0].policy.response_event == "first_action":
        stop(db_session, ticket, "response", utcnow())


def _any_staff(db_session: Session, usernames: set[str]) -> bool:
    if not usernames:
        return False
    roles = db_session.scalars(select(User.role).where(User.username.in_(sorted(usernames))))
    return any(role != "requester" for role in roles)


@event.listens_for(Session, "before_flush")
def follow_flush(session: Session, _context, _instances) -> None:
    """Check-ins stop the response clock (arrival on site); tickets whose matched fields or
    status changed through the ORM bring their clocks along. Runs inside the flush, so what
    it changes is written by that same flush."""
    checkins = [obj for obj in session.new if isinstance(obj, CheckIn)]
    changed = [
        (obj, _changed(obj, MATCHED_FIELDS))
        for obj in session.dirty
        if isinstance(obj, Ticket) and _changed(obj, (*MATCHED_FIELDS, "status"))
    ]
    if not checkins and not changed:
        return
    with session.no_autoflush:
        for checkin in checkins:
            ticket = session.get(Ticket, checkin.ticket_id)
            if ticket is not None:
                stop(session, ticket, "response", checkin.at or utcnow())
        for ticket, rematch in changed:
            open_tasks = session.execute(
                select(HumanTask.element_id, HumanTask.name).where(
                    HumanTask.ticket_id == ticket.id, HumanTask.status == "open"
                )
            ).all()
            follow_ticket(
                session,
                ticket,
                utcnow(),
                status=ticket.status,
                open_tasks=[tuple(row) for row in open_tasks],
                rematch=rematch,
            )


def _changed(ticket: Ticket, names: tuple[str, ...]) -> bool:
    state = inspect(ticket)
    return any(state.attrs[name].history.has_changes() for name in names)
