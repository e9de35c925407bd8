"""What a work order's page shows of its progress: the timeline, the SLA clock and the markers
of its diagram, each built only from what the viewer may see."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.attachments.models import Attachment
from app.auth.models import Group, User
from app.engine.models import HumanTask, ProcessDefinition, ProcessEvent, Timer, is_held
from app.i18n import pick
from app.site.models import CheckIn
from app.sla.shown import held_notes
from app.tickets.models import Satisfaction, Ticket, TicketNote
from app.timeutil import utcnow

# Events that mean an element of the diagram is behind the work order.
DONE_EVENTS = ("task_completed", "element_completed", "timer_fired", "message_received")
# The process's own moves (gateways, events, cancelled branches): shown small, so that what
# people did stands out.
MINOR_EVENTS = ("element_completed", "element_cancelled")
# Events the process caused, although a person's step is recorded as their actor.
BY_THE_PROCESS = ("task_created", "process_completed")
# Events that give a task to someone: the history names whom, and why.
HANDED_ON = ("task_transferred", "task_dispatched")


@dataclass
class Entry:
    """One line of the timeline: who did what, when, with what it carried."""

    at: datetime
    kind: str  # event | note | file | checkin | rating
    key: str
    what: str
    who: str | None = None
    details: list[tuple[str, str]] = field(default_factory=list)
    body: str | None = None
    internal: bool = False
    attachment: Attachment | None = None
    minor: bool = False


@dataclass
class Deadline:
    """A due time of the work order: an open task's, or a pending SLA timer's."""

    name: str
    due_at: datetime
    kind: str  # task | timer
    overdue: bool
    remaining: str
    # Shown instead of the due time when the SLA clock holds it (paused, deadline unknown).
    held: str | None = None
    element_id: str | None = None


def display_names(db_session: Session, usernames) -> dict[str, str]:
    """username -> display name, for the people named in a page's rows."""
    wanted = sorted({name for name in usernames if name})
    if not wanted:
        return {}
    rows = db_session.execute(
        select(User.username, User.display_name).where(User.username.in_(wanted))
    )
    return dict(rows.all())


def group_names(db_session: Session, codes) -> dict[str, str]:
    """group code -> its name (lanes and transfers name groups by code)."""
    wanted = sorted({code for code in codes if code})
    if not wanted:
        return {}
    return dict(
        db_session.execute(select(Group.code, Group.name).where(Group.code.in_(wanted))).all()
    )


def list_text(items) -> str:
    """Names or values as the page language lists them: "甲、乙" in Chinese, "a, b" in English."""
    return _(", ").join(items)


def duration_text(delta: timedelta) -> str:
    """A span of time in the page language, to the minute."""
    minutes = max(int(abs(delta).total_seconds()) // 60, 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return _("%(days)d d %(hours)d h", days=days, hours=hours)
    if hours:
        return _("%(hours)d h %(minutes)d min", hours=hours, minutes=minutes)
    return _("%(minutes)d min", minutes=minutes)


# ---------------------------------------------------------------- form labels


def option_label(definition: ProcessDefinition | None, key: str, value) -> str | None:
    """The label a deployed form gives ``value`` of the select field ``key`` (page language)."""
    if definition is None or value in (None, ""):
        return None
    for schema in (definition.forms or {}).values():
        for component in schema.get("components", []):
            if component.get("key") != key:
                continue
            for option in component.get("values") or []:
                if option.get("value") == value:
                    return pick(option.get("label"))
    return None


def _form_rows(schema: dict | None, data: dict | None) -> list[tuple[str, str]]:
    """(label, value) of the data a person submitted with a task form, as the form names it."""
    if not schema or not data:
        return []
    rows = []
    for component in schema.get("components", []):
        key = component.get("key")
        if not key or data.get(key) in (None, ""):
            continue
        options = {str(o.get("value")): o.get("label") for o in component.get("values") or []}
        values = data[key] if isinstance(data[key], list) else [data[key]]
        text = list_text(_value_text(value, options) for value in values)
        rows.append((pick(component.get("label")) or key, text))
    return rows


def _value_text(value, options: dict[str, str]) -> str:
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    return pick(options.get(str(value))) or str(value)


# ---------------------------------------------------------------- timeline


def _element_name(event: ProcessEvent) -> str:
    if event.element_name:
        return pick(event.element_name)
    kind = event.element_type or ""
    if "Gateway" in kind:
        return _("a gateway")
    if "Event" in kind:
        return _("an event")
    return _("a step")


def _event_text(event: ProcessEvent) -> str:
    name = _element_name(event)
    texts = {
        "process_started": lambda: _("Reported the work order"),
        "process_completed": lambda: _("The work order was archived"),
        "task_created": lambda: _("Step %(name)s is waiting", name=name),
        "task_completed": lambda: _("Completed %(name)s", name=name),
        "element_completed": lambda: _("Passed %(name)s", name=name),
        "timer_fired": lambda: _("Timer %(name)s fired", name=name),
        "message_received": lambda: _("Message %(name)s received", name=name),
        "element_cancelled": lambda: _("%(name)s was cancelled", name=name),
        "task_claimed": lambda: _("Took on %(name)s", name=name),
        "task_unclaimed": lambda: _("Gave back %(name)s", name=name),
        "task_transferred": lambda: _("Transferred %(name)s", name=name),
        "task_dispatched": lambda: _("Dispatched %(name)s", name=name),
    }
    text = texts.get(event.event_type)
    return text() if text else f"{event.event_type}: {name}"


def _transfer_rows(
    event: ProcessEvent, names: dict[str, str], groups: dict[str, str]
) -> list[tuple[str, str]]:
    data = event.data or {}
    target = data.get("to") or {}
    rows = []
    if target.get("assignee"):
        rows.append((_("To"), names.get(target["assignee"], target["assignee"])))
    elif target.get("candidate_groups"):
        rows.append((_("To"), list_text(groups.get(g, g) for g in target["candidate_groups"])))
    if data.get("reason"):
        rows.append((_("Reason"), data["reason"]))
    return rows


def timeline(
    *,
    db_session: Session,
    ticket: Ticket,
    definition: ProcessDefinition | None,
    events: list[ProcessEvent],
    notes: list[TicketNote],
    files: list[Attachment],
    checkins: list[CheckIn],
    satisfaction: Satisfaction | None,
) -> list[Entry]:
    """Every visible event, note, file, check-in and the rating, oldest first."""
    checkin_users = dict(
        db_session.execute(
            select(User.id, User.display_name).where(User.id.in_({c.user_id for c in checkins}))
        ).all()
    )
    transfers = [(e.data or {}).get("to") or {} for e in events if e.event_type in HANDED_ON]
    groups = group_names(
        db_session, [g for t in transfers for g in t.get("candidate_groups") or []]
    )
    names = display_names(
        db_session,
        [e.actor for e in events]
        + [f.uploaded_by for f in files]
        + [satisfaction.rated_by if satisfaction else None]
        + [t.get("assignee") for t in transfers],
    )
    forms = (definition.forms or {}) if definition is not None else {}
    form_of_element = dict(
        db_session.execute(
            select(HumanTask.element_id, HumanTask.form_key)
            .where(HumanTask.instance_id == ticket.process_instance_id)
            .distinct()
        ).all()
    )
    entries = []
    for event in events:
        details: list[tuple[str, str]] = []
        if event.event_type == "task_completed":
            schema = forms.get(form_of_element.get(event.element_id) or "")
            details = _form_rows(schema, event.data)
        elif event.event_type in HANDED_ON:
            details = _transfer_rows(event, names, groups)
        entries.append(
            Entry(
                at=event.at,
                kind="event",
                key=f"event-{event.id}",
                what=_event_text(event),
                who=None
                if event.event_type in BY_THE_PROCESS
                else names.get(event.actor, event.actor),
                details=details,
                minor=event.event_type in MINOR_EVENTS,
            )
        )
    for note in notes:
        entries.append(
            Entry(
                at=note.created_at,
                kind="note",
                key=f"note-{note.id}",
                what=_("Internal note") if note.internal else _("Progress note"),
                who=note.author.display_name,
                body=note.body,
                internal=note.internal,
            )
        )
    for attachment in files:
        entries.append(
            Entry(
                at=attachment.created_at,
                kind="file",
                key=f"file-{attachment.id}",
                what=_("Added the file %(name)s", name=attachment.filename),
                who=names.get(attachment.uploaded_by, attachment.uploaded_by),
                attachment=attachment,
            )
        )
    for checkin in checkins:
        entries.append(
            Entry(
                at=checkin.at,
                kind="checkin",
                key=f"checkin-{checkin.id}",
                what=_("Checked in at the device %(device)s", device=checkin.device_no),
                who=checkin_users.get(checkin.user_id),
            )
        )
    if satisfaction is not None:
        entries.append(
            Entry(
                at=satisfaction.rated_at,
                kind="rating",
                key="rating",
                what=_("Rated the service %(rating)d of 5", rating=satisfaction.rating),
                who=names.get(satisfaction.rated_by, satisfaction.rated_by),
                body=satisfaction.comment or None,
            )
        )
    # sorted() is stable: rows of one moment keep the order they were written in.
    return sorted(entries, key=lambda entry: entry.at)


# ---------------------------------------------------------------- SLA clock and diagram


def _deadline(
    name: str, due_at: datetime, kind: str, now: datetime, element_id: str | None = None
) -> Deadline:
    overdue = due_at <= now
    text = duration_text(due_at - now)
    remaining = _("overdue by %(time)s", time=text) if overdue else _("%(time)s left", time=text)
    return Deadline(name, due_at, kind, overdue, remaining, element_id=element_id)


def sla_clock(
    *,
    db_session: Session,
    ticket: Ticket,
    definition: ProcessDefinition | None,
    tasks: list[HumanTask],
    with_timers: bool,
    now: datetime | None = None,
) -> list[Deadline]:
    """Due times of the open tasks shown, and (for staff) of the pending timers, soonest first.
    A due time the SLA clock holds (``NEVER``) carries the note to show instead (``held``)."""
    now = now or utcnow()
    deadlines = [
        _deadline(pick(task.name), task.due_at, "task", now) for task in tasks if task.due_at
    ]
    if with_timers and ticket.process_instance_id is not None:
        elements = (definition.elements or {}) if definition is not None else {}
        for timer in db_session.scalars(
            select(Timer).where(Timer.instance_id == ticket.process_instance_id)
        ):
            name = (elements.get(timer.element_id) or {}).get("name") or timer.element_id
            deadline = _deadline(pick(name), timer.due_at, "timer", now, timer.element_id)
            deadlines.append(deadline)
    held = [deadline for deadline in deadlines if is_held(deadline.due_at)]
    if held:
        notes = held_notes(db_session, ticket.id, definition)
        for deadline in held:
            deadline.overdue = False
            deadline.held = notes.get(deadline.element_id) or notes[None]
    return sorted(deadlines, key=lambda deadline: deadline.due_at)


def diagram_markers(
    *,
    db_session: Session,
    ticket: Ticket,
    events: list[ProcessEvent],
    requester_view: bool,
) -> dict[str, list[str]]:
    """Element ids to mark on the diagram: `done` (behind the work order) and `current` (open
    tasks, pending timers). A requester's markers come from the steps its history shows."""
    instance_id = ticket.process_instance_id
    if instance_id is None:
        return {"done": [], "current": []}
    current = list(
        db_session.scalars(
            select(HumanTask.element_id).where(
                HumanTask.instance_id == instance_id, HumanTask.status == "open"
            )
        )
    )
    if requester_view:
        reached = [e.element_id for e in events if e.event_type in ("task_created", *DONE_EVENTS)]
        done = [element for element in reached if element not in current]
    else:
        current += db_session.scalars(
            select(Timer.element_id).where(Timer.instance_id == instance_id)
        )
        done = [
            e.element_id
            for e in events
            if e.event_type in DONE_EVENTS and e.element_type != "Process"
        ]
    return {
        "done": sorted(set(done) - set(current)),
        "current": sorted(set(current)),
    }
