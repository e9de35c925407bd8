"""The SLA clock: a ledger of running and paused intervals per ticket and kind, from which the
deadline is computed on the policy's business calendar.

The deadline is the moment the running working minutes reach the target. Paused time is not
running time, so a pause pushes the deadline later by exactly its working minutes; a new
target (the priority changed) is counted from the original start over the same ledger.

Every change of a clock is noted on the session (``TIMERS_PENDING``): before the transaction
commits, ``app.sla.bpmn_timers`` moves the BPMN timers that stand for the clock to its new due
time.

A deadline that falls in a year without official holiday data is unknown, never guessed: the
clock runs with no deadline (``deadline_unknown``), its timers wait at ``NEVER``, and the year is
noted (``MISSING_YEARS``) so that the admins hear of it once (``app.sla.missing_years``). When
the year's days are entered, ``follow_calendars`` computes the deadlines (as it does for
every change of a calendar's days or hours).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, object_session, selectinload

from app.sla.calendar import MissingOfficialYear
from app.sla.calendars_service import load_calendar
from app.sla.policies import TicketFacts, match_policy
from app.sla.sla_models import CLOCK_KINDS, SlaClock, SlaInterval, SlaPolicy
from app.tickets.models import Ticket
from app.timeutil import utcnow

# Ticket statuses at which the work is done: the resolution clock stops.
RESOLVED_STATUSES = frozenset({"resolved", "closed"})

# The due time of a BPMN timer whose clock is paused, or stopped before the timer's point: it
# must not fire. Far enough to never come, near enough for datetime arithmetic.
NEVER = datetime(9999, 1, 1, tzinfo=UTC)

# session.info key: {ticket id: kinds of its clocks that changed in this transaction}.
TIMERS_PENDING = "sla_timers_pending"
# session.info key: {year: calendar id} of years without official holiday data that a clock
# of this transaction needed (its deadline is unknown).
MISSING_YEARS = "sla_missing_years"


def clocks_by_kind(db_session: Session, ticket_id: int) -> dict[str, SlaClock]:
    """The ticket's clocks by kind (response, resolution)."""
    return {clock.kind: clock for clock in clocks_of(db_session, ticket_id)}


def clocks_of(db_session: Session, ticket_id: int) -> list[SlaClock]:
    """The ticket's clocks, response first."""
    clocks = db_session.scalars(
        select(SlaClock)
        .where(SlaClock.ticket_id == ticket_id)
        .options(selectinload(SlaClock.intervals), selectinload(SlaClock.policy))
    ).all()
    return sorted(clocks, key=lambda clock: CLOCK_KINDS.index(clock.kind))


# ---------------------------------------------------------------- changing the ledger


def start_clocks(
    db_session: Session,
    ticket: Ticket,
    now: datetime,
    *,
    facts: TicketFacts | None = None,
) -> list[SlaClock]:
    """Start the response and resolution clocks at ``now`` from the matching policy; none when
    nothing matches. A ticket that has clocks keeps them (idempotent)."""
    existing = clocks_of(db_session, ticket.id)
    if existing:
        return existing
    policy = match_policy(db_session, ticket, facts)
    if policy is None:
        return []
    clocks = []
    for kind in CLOCK_KINDS:
        clock = SlaClock(
            ticket_id=ticket.id,
            kind=kind,
            policy=policy,
            policy_id=policy.id,
            calendar_id=policy.calendar_id,
            started_at=now,
            target_minutes=_target(policy, kind),
        )
        clock.intervals.append(SlaInterval(state="running", starts_at=now))
        db_session.add(clock)
        _settle(clock, now)
        clocks.append(clock)
    note_change(db_session, ticket.id)
    return clocks


def pause(db_session: Session, ticket: Ticket, reason: str, now: datetime) -> list[SlaClock]:
    """Pause the ticket's running clocks at ``now``; paused or stopped ones stay as they are."""
    return _switch(db_session, ticket, "paused", reason[:300] or None, now)


def resume(db_session: Session, ticket: Ticket, now: datetime) -> list[SlaClock]:
    """Resume the ticket's paused clocks at ``now``; running or stopped ones stay as they are."""
    return _switch(db_session, ticket, "running", None, now)


def stop(db_session: Session, ticket: Ticket, kind: str, now: datetime) -> SlaClock | None:
    """Stop the ticket's ``kind`` clock at ``now`` (the target was met, or missed: breached_at
    tells). Returns the clock; a stopped clock stays stopped at its first stop."""
    if kind not in CLOCK_KINDS:
        raise ValueError(f"kind must be one of {CLOCK_KINDS}, not {kind!r}")
    clock = next((c for c in clocks_of(db_session, ticket.id) if c.kind == kind), None)
    if clock is None or clock.stopped_at is not None:
        return clock
    _open_interval(clock).ends_at = now
    clock.stopped_at = now
    _settle(clock, now)
    note_change(db_session, ticket.id, (kind,))
    return clock


def recompute(
    db_session: Session,
    ticket: Ticket,
    now: datetime,
    *,
    facts: TicketFacts | None = None,
) -> list[SlaClock]:
    """Bring the ticket's clocks in line with the policy that matches it now (its priority,
    category or the policy itself changed): the new target counts from the original start,
    over the same ledger, so paused intervals stay excluded. Stopped clocks keep their result.
    A ticket with no clocks gets them, started at its creation. When no policy matches any
    more, the clocks keep the policy they have."""
    clocks = clocks_of(db_session, ticket.id)
    if not clocks:
        return start_clocks(db_session, ticket, ticket.created_at or now, facts=facts)
    policy = match_policy(db_session, ticket, facts)
    if policy is None:
        return clocks
    for clock in clocks:
        if clock.stopped_at is not None:
            continue
        target = _target(policy, clock.kind)
        if (clock.policy_id, clock.calendar_id, clock.target_minutes) == (
            policy.id,
            policy.calendar_id,
            target,
        ):
            continue
        clock.policy = policy
        clock.policy_id = policy.id
        clock.calendar_id = policy.calendar_id
        clock.target_minutes = target
        _settle(clock, now)
        note_change(db_session, ticket.id)
    return clocks


def pause_reasons(policy: SlaPolicy | None, status: str, open_tasks: list[tuple[str, str]]) -> str:
    """What of the policy's ``pause_on`` holds now: the ticket's status, or an open user task
    given as (element id, name). Empty when nothing pauses the clocks."""
    if policy is None:
        return ""
    present = {status} | {value for task in open_tasks for value in task}
    return "、".join(item for item in policy.pause_on or [] if item in present)


def _switch(
    db_session: Session, ticket: Ticket, state: str, reason: str | None, now: datetime
) -> list[SlaClock]:
    changed = []
    for clock in clocks_of(db_session, ticket.id):
        if clock.stopped_at is not None:
            continue
        current = _open_interval(clock)
        if current.state == state:
            continue
        current.ends_at = now
        clock.intervals.append(SlaInterval(state=state, starts_at=now, reason=reason))
        _settle(clock, now)
        changed.append(clock)
    if changed:
        note_change(db_session, ticket.id)
    return changed


def note_change(db_session: Session, ticket_id: int, kinds: tuple[str, ...] = CLOCK_KINDS) -> None:
    """Note that the BPMN timers standing for the ticket's ``kinds`` clocks need moving before
    this transaction commits. Only touches ``session.info``: safe inside a flush."""
    db_session.info.setdefault(TIMERS_PENDING, {}).setdefault(ticket_id, set()).update(kinds)


def note_missing_year(db_session: Session, year: int, calendar_id: int) -> None:
    """Note that a deadline needed the official holidays of ``year``, which nobody entered.
    Only touches ``session.info``: safe inside a flush."""
    db_session.info.setdefault(MISSING_YEARS, {}).setdefault(year, calendar_id)


def follow_calendars(
    db_session: Session,
    calendar_ids: list[int] | None,
    since: datetime | None = None,
    now: datetime | None = None,
) -> int:
    """Compute again the deadlines of the clocks still counting on ``calendar_ids`` (None:
    every calendar) after their days or hours changed: those whose deadline is unknown (a year
    without holidays just entered) or not before ``since`` (the first moment the change touches;
    None: all). A clock whose deadline or breach moved notes its ticket, so its BPMN timers and
    task due dates move before the commit. Returns how many moved."""
    now = now or utcnow()
    query = select(SlaClock).where(SlaClock.stopped_at.is_(None))
    if calendar_ids is not None:
        query = query.where(SlaClock.calendar_id.in_(sorted(calendar_ids)))
    if since is not None:
        query = query.where(or_(SlaClock.deadline.is_(None), SlaClock.deadline >= since))
    clocks = db_session.scalars(
        query.options(selectinload(SlaClock.intervals), selectinload(SlaClock.policy)).order_by(
            SlaClock.id
        )
    ).all()
    moved = 0
    calendars: dict[int, object] = {}
    for clock in clocks:
        calendar = calendars.get(clock.calendar_id)
        if calendar is None:
            calendar = calendars[clock.calendar_id] = load_calendar(db_session, clock.calendar_id)
        before = (clock.deadline, clock.breached_at)
        _settle(clock, now, calendar)
        if (clock.deadline, clock.breached_at) != before:
            moved += 1
            note_change(db_session, clock.ticket_id, (clock.kind,))
    return moved


def is_paused(clock: SlaClock) -> bool:
    """Whether the clock is on hold (paused and not stopped)."""
    return clock.stopped_at is None and _open_interval(clock).state == "paused"


def _open_interval(clock: SlaClock) -> SlaInterval:
    return next(interval for interval in reversed(clock.intervals) if interval.ends_at is None)


def _target(policy: SlaPolicy, kind: str) -> int:
    return policy.response_minutes if kind == "response" else policy.resolution_minutes


# ---------------------------------------------------------------- computing


def _calendar_of(clock: SlaClock):
    return load_calendar(object_session(clock), clock.calendar_id)


def _walk(
    clock: SlaClock, calendar, now: datetime, target: float | None = None
) -> tuple[datetime, bool]:
    """(deadline, whether the running time already reached it).

    The deadline is found in the running interval where the running minutes reach the
    target (the clock's, unless ``target`` is given); when the clock is paused or stopped
    short of it, it is projected from the moment the clock would run again (now when paused,
    the stop when stopped). Raises `MissingOfficialYear` when it needs a year without official
    holiday data, except for a deadline reached before that year (it is known)."""
    end_of_time = clock.stopped_at or now
    target = clock.target_minutes if target is None else target
    used = 0.0
    for interval in clock.intervals:
        if interval.state != "running":
            continue
        ends = interval.ends_at or end_of_time
        try:
            minutes = (
                calendar.working_minutes(interval.starts_at, ends)
                if ends > interval.starts_at
                else 0.0
            )
        except MissingOfficialYear:
            # The interval reaches into the unknown year: its minutes cannot be counted, but a
            # deadline before that year can still be found (add() stops at it).
            due = calendar.add(interval.starts_at, target - used)
            if due <= ends:
                return due, True
            raise
        if used + minutes >= target:
            return calendar.add(interval.starts_at, target - used), True
        if interval.ends_at is None and clock.stopped_at is None:
            return calendar.add(interval.starts_at, target - used), False
        used += minutes
    base = clock.stopped_at or max(now, _open_interval(clock).starts_at)
    return calendar.add(base, target - used), False


def deadline_of(clock: SlaClock, now: datetime | None = None, calendar=None) -> datetime:
    """When the clock's running working minutes reach its target, given the ledger so far.

    Paused: the deadline if the clock resumed ``now``. Stopped: the deadline it had."""
    calendar = calendar or _calendar_of(clock)
    return _walk(clock, calendar, now or utcnow())[0]


def timer_due(
    clock: SlaClock, percent: float = 100, now: datetime | None = None, calendar=None
) -> datetime:
    """When a BPMN timer that stands for ``percent`` % of the clock's target should fire: the
    moment the running working minutes reach it. ``NEVER`` while the clock is paused or
    stopped short of that point: a paused clock must not escalate, and a stopped one met it.
    A point already reached gives its (past) moment, so a timer still waiting fires at once.
    A point in a year without holiday data is unknown: ``NEVER`` as well, until it is known."""
    calendar = calendar or _calendar_of(clock)
    target = clock.target_minutes * percent / 100
    try:
        due, reached = _walk(clock, calendar, now or utcnow(), target)
    except MissingOfficialYear:
        return NEVER  # unknown: it must not fire on a guess; follow_calendars moves it later
    if reached:
        return due
    if clock.stopped_at is not None or is_paused(clock):
        return NEVER
    return due


def _settle(clock: SlaClock, now: datetime, calendar=None) -> None:
    """Store the deadline (none while paused short of it: it depends on when work resumes)
    and the breach (the deadline, once the running time reached it). None as well when it
    needs a year without official holiday data: that year is noted, nothing is refused."""
    try:
        deadline, reached = _walk(clock, calendar or _calendar_of(clock), now)
    except MissingOfficialYear as missing:
        clock.deadline = clock.breached_at = None
        note_missing_year(object_session(clock), missing.year, clock.calendar_id)
        return
    clock.deadline = None if is_paused(clock) and not reached else deadline
    clock.breached_at = deadline if reached else None


# ---------------------------------------------------------------- reading


def ledger(db_session: Session, ticket_id: int, now: datetime | None = None) -> list[dict]:
    """The ticket's clocks with their intervals, deadline, working minutes used and left,
    percent used and state (running, paused or stopped), JSON-ready. A clock whose deadline
    needs a year without official holiday data says so (``deadline_unknown`` and
    ``missing_holiday_year``); the working minutes it cannot count are None."""
    now = now or utcnow()
    calendars: dict[int, object] = {}
    result = []
    for clock in clocks_of(db_session, ticket_id):
        calendar = calendars.get(clock.calendar_id)
        if calendar is None:
            calendar = calendars[clock.calendar_id] = load_calendar(db_session, clock.calendar_id)
        state = "stopped" if clock.stopped_at else _open_interval(clock).state
        row = {
            "kind": clock.kind,
            "policy": {"id": clock.policy.id, "name": clock.policy.name} if clock.policy else None,
            "calendar_id": clock.calendar_id,
            "state": state,
            "paused": state == "paused",
            "started_at": _iso(clock.started_at),
            "target_minutes": clock.target_minutes,
            "stopped_at": _iso(clock.stopped_at),
        }
        try:
            row.update(_counted(clock, calendar, now))
        except MissingOfficialYear as missing:
            row.update(_uncounted(clock, missing.year))
        result.append(row)
    return result


def _counted(clock: SlaClock, calendar, now: datetime) -> dict:
    deadline, reached = _walk(clock, calendar, now)
    end_of_time = clock.stopped_at or now
    intervals = []
    running = paused = 0.0
    for interval in clock.intervals:
        ends = interval.ends_at or end_of_time
        minutes = (
            calendar.working_minutes(interval.starts_at, ends) if ends > interval.starts_at else 0.0
        )
        if interval.state == "running":
            running += minutes
        else:
            paused += minutes
        intervals.append(_interval(interval, round(minutes, 1)))
    return {
        # While paused: the deadline if work resumed now.
        "deadline": _iso(deadline),
        "deadline_unknown": False,
        "missing_holiday_year": None,
        "breached": reached,
        "breached_at": _iso(deadline) if reached else None,
        "elapsed_minutes": round(running, 1),
        "paused_minutes": round(paused, 1),
        "remaining_minutes": round(max(clock.target_minutes - running, 0.0), 1),
        "percent_used": round(100 * running / clock.target_minutes, 1),
        "intervals": intervals,
    }


def _uncounted(clock: SlaClock, year: int) -> dict:
    """A clock that reaches a year without holiday data: what is stored, and no minutes."""
    return {
        "deadline": _iso(clock.deadline),
        "deadline_unknown": clock.deadline is None,
        "missing_holiday_year": year,
        "breached": clock.breached_at is not None,
        "breached_at": _iso(clock.breached_at),
        "elapsed_minutes": None,
        "paused_minutes": None,
        "remaining_minutes": None,
        "percent_used": None,
        "intervals": [_interval(interval, None) for interval in clock.intervals],
    }


def _interval(interval: SlaInterval, minutes: float | None) -> dict:
    return {
        "state": interval.state,
        "starts_at": _iso(interval.starts_at),
        "ends_at": _iso(interval.ends_at),
        "reason": interval.reason,
        "working_minutes": minutes,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
