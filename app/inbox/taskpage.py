"""What the task page shows: the acts a person may take on a task, the form with the data its
fields and texts use, the people and groups a task can be transferred to, its handovers, and
for a dispatch step (a form asking for the engineer) the ranked engineers to choose from."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app import engine
from app.auth.access import event_condition, may_work_on
from app.auth.models import Group, User, group_member
from app.dispatch import stepchoice
from app.engine.models import HumanTask, ProcessEvent, ProcessInstance
from app.forms.localize import localized_schema
from app.inbox.listing import INBOX_ROLES, display_names, group_labels
from app.inbox.service import DISPATCHING_ROLES, is_candidate
from app.tickets.models import Ticket
from app.timeutil import utcnow

EMPTY_FORM = {"type": "default", "components": []}
# Names a form-js template ({{title}}, {{#if done}}) or a FEEL expression (=a > 1) reads.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TEMPLATE = re.compile(r"\{\{(.*?)\}\}", re.S)


@dataclass(frozen=True)
class Acts:
    """What the signed-in person may do with the task, so the page offers nothing that fails."""

    claim: bool
    unclaim: bool
    transfer: bool
    complete: bool


def acts_on(db_session: Session, user: User, task: HumanTask) -> Acts:
    if task.status != "open":
        return Acts(False, False, False, False)
    holds_or_dispatches = task.assignee == user.username or user.role in DISPATCHING_ROLES
    # Only a claim can be given back (inbox.service.unclaim): not the process's own assignment.
    last = engine.last_assignment(db_session=db_session, task=task) if task.assignee else None
    return Acts(
        claim=not task.assignee and is_candidate(user, task),
        unclaim=bool(task.assignee)
        and holds_or_dispatches
        and last is not None
        and last.event_type == "task_claimed",
        transfer=user.role in INBOX_ROLES and holds_or_dispatches,
        complete=may_work_on(user, task),
    )


def task_form_view(
    db_session: Session, task: HumanTask, ticket: Ticket | None, language: str, readonly: bool
) -> tuple[dict, dict]:
    """The task's form in the page language and the values it starts with.

    The browser gets only the variables the form reads (its fields, its texts' templates and
    expressions), not the whole process data; the work order's own texts are the current ones.
    """
    schema = localized_schema(engine.task_form(db_session=db_session, task=task), language)
    schema = schema or copy.deepcopy(EMPTY_FORM)
    variables = engine.instance_data(
        db_session=db_session, instance=db_session.get(ProcessInstance, task.instance_id)
    )
    if ticket is not None:
        variables.update(
            ticket_no=ticket.number, title=ticket.title, description=ticket.description
        )
    used = set()
    for component in _components(schema["components"]):
        if component.get("key") and readonly:
            component["readonly"] = True
        # A field's value, options taken from a variable, a group's or list's data path.
        for name in ("key", "valuesKey", "path"):
            if isinstance(component.get(name), str):
                used.add(component[name].split(".")[0])
        used |= _names_read(component)
    return schema, {name: variables[name] for name in sorted(used) if name in variables}


def _components(components: list[dict]):
    for component in components:
        yield component
        yield from _components(component.get("components") or [])


def _names_read(component: dict) -> set[str]:
    names: set[str] = set()
    for text in _strings(component):
        if text.startswith("="):
            names.update(_NAME.findall(text))
        for inside in _TEMPLATE.findall(text):
            names.update(_NAME.findall(inside))
    return names


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, inner in value.items():
            if key != "components":
                yield from _strings(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _strings(inner)


@dataclass(frozen=True)
class Choice:
    value: str  # user:<username> or group:<code>
    label: str


def transfer_choices(
    db_session: Session, user: User, task: HumanTask
) -> tuple[list[Choice], list[Choice]]:
    """People and groups the task can go to. People: members of its candidate groups, and for
    dispatchers and admins every active handler too. Groups: those with active members."""
    offered = task.candidate_groups
    in_task_groups = select(group_member.c.user_id).join(Group, Group.id == group_member.c.group_id)
    in_task_groups = in_task_groups.where(or_(Group.code.in_(offered), Group.name.in_(offered)))
    wanted = User.id.in_(in_task_groups)
    if user.role in DISPATCHING_ROLES:
        wanted = or_(wanted, User.role == "handler")
    people = db_session.scalars(
        select(User)
        .where(
            wanted,
            User.is_active_account.is_(True),
            User.kind == "person",
            User.role != "finance",
            User.username.not_in([user.username, task.assignee or ""]),
        )
        .order_by(User.display_name, User.username)
    )
    groups = db_session.scalars(
        select(Group)
        .where(
            Group.id.in_(
                select(group_member.c.group_id)
                .join(User, User.id == group_member.c.user_id)
                .where(User.is_active_account.is_(True), User.kind == "person")
            )
        )
        .order_by(Group.name)
    )
    # A task waiting in one group only cannot be transferred to that same group.
    only_group = set(offered) if not task.assignee and not task.candidate_users else set()
    return (
        [Choice(f"user:{p.username}", f"{p.display_name} ({p.username})") for p in people],
        [
            Choice(f"group:{g.code}", g.name)
            for g in groups
            if not (only_group and only_group <= {g.code, g.name})
        ],
    )


@dataclass(frozen=True)
class Handover:
    """A claim, give-back or transfer of the task, with names as people read them."""

    at: datetime
    event_type: str
    actor: str | None  # None: dispatched by the system
    target: str | None  # whom a transfer or dispatch gave it to: a person, or groups
    reason: str | None


def handovers(db_session: Session, user: User, task: HumanTask) -> list[Handover]:
    """Claims, give-backs and transfers of this task (with reasons), as far as ``user`` may
    read the history (app.auth.access.event_condition)."""
    events = db_session.scalars(
        select(ProcessEvent)
        .where(
            ProcessEvent.instance_id == task.instance_id,
            ProcessEvent.element_id == task.element_id,
            ProcessEvent.event_type.in_(engine.ASSIGNMENT_EVENTS),
            event_condition(user),
        )
        .order_by(ProcessEvent.id)
    )
    # One element opens several tasks over time (rework loops); the task id is in the data.
    mine = [event for event in events if (event.data or {}).get("task_id") == task.id]
    people = display_names(
        db_session, {e.actor for e in mine} | {e.data["to"]["assignee"] for e in mine}
    )
    groups = group_labels(db_session, {g for e in mine for g in e.data["to"]["candidate_groups"]})
    found = []
    for event in mine:
        to = event.data["to"]
        target = None
        if event.event_type in ("task_transferred", "task_dispatched"):
            target = people.get(to["assignee"], to["assignee"]) or ", ".join(
                groups.get(g, g) for g in to["candidate_groups"]
            )
        found.append(
            Handover(
                at=event.at,
                event_type=event.event_type,
                actor=people.get(event.actor, event.actor),
                target=target,
                reason=event.data.get("reason"),
            )
        )
    return found


# Who sees a dispatch step's ranking (the explanation's staff, without the engineers ranked).
STEP_RANKING_ROLES = ("admin", "dispatcher", "reviewer")


@dataclass(frozen=True)
class DispatchStep:
    """A dispatch step's ranked list as the task page shows it (stepchoice.rank_step): rows
    as a decision stores them, the excluded with their reason in the page language."""

    ranked: list[dict]
    excluded: list[dict]
    top: str | None
    selected: str | None
    deadline: datetime | None


def dispatch_step_view(
    db_session: Session,
    user: User,
    task: HumanTask,
    ticket: Ticket | None,
    *,
    may_complete: bool,
    language: str,
    wanted: str | None = None,
) -> tuple[DispatchStep | None, list[dict]]:
    """For a task whose form asks for the engineer: the ranking (for dispatchers, admins and
    reviewers) and the options of the form's engineer select, best first with the reason of
    each exclusion. Others who may complete it get the engineers by name, no ranking; those
    who may not, nothing. ``wanted``: the engineer a button chose, selected if offered."""
    if not may_complete or ticket is None or task.status != "open":
        return None, []
    if not stepchoice.is_dispatch_step(db_session, task):
        return None, []
    rec = stepchoice.rank_step(db_session, ticket, now=utcnow())
    if rec is None:
        return None, []
    stored = rec.stored()
    ranked, excluded = stored["ranked"], stored["excluded"]
    for row in excluded:
        row["reason"] = row["zh"] if language == "zh" else row["en"]
    top = ranked[0]["username"] if ranked else None
    if user.role not in STEP_RANKING_ROLES:
        people = sorted(ranked + excluded, key=lambda row: (row["name"], row["username"]))
        return None, [_option(row["name"], row["username"]) for row in people]
    options = [
        _option(row["name"], row["username"], _("recommended") if row["username"] == top else "")
        for row in ranked
    ]
    options += [
        _option(row["name"], row["username"], _("not eligible: %(reason)s", reason=row["reason"]))
        for row in excluded
    ]
    offered = {option["value"] for option in options}
    deadline = rec.job.deadline
    return (
        DispatchStep(
            ranked, excluded, top, wanted if wanted in offered else top, deadline=deadline
        ),
        options,
    )


def _option(name: str, username: str, note: str = "") -> dict:
    label = f"{name} ({username})" if name and name != username else username
    return {"value": username, "label": f"{label} · {note}" if note else label}


def offer_engineers(
    schema: dict, data: dict, step: DispatchStep | None, options: list[dict], *, wanted: str | None
) -> None:
    """Put a dispatch step's engineers into the form's data: the options of the engineer
    select (under its valuesKey; a text field of an older form gets none), and the value: the
    engineer a ranking button chose, else the best one unless the form already has a value."""
    if not options:
        return
    field = next(
        (c for c in _components(schema["components"]) if c.get("key") == stepchoice.ENGINEER_FIELD),
        None,
    )
    if field is None:
        return
    if isinstance(field.get("valuesKey"), str):
        data[field["valuesKey"]] = options
    if step is not None and step.selected and (wanted or not data.get(field["key"])):
        data[field["key"]] = step.selected
