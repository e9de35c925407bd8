"""The requester portal's work: which work-order types can be reported and with which start form,
a person's own reports with what waits for them, and the satisfaction rating (满意度)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from app.audit.service import record
from app.auth.access import my_task_condition
from app.auth.models import User
from app.engine import latest_definition
from app.engine.models import HumanTask, ProcessDefinition, ProcessEvent
from app.engine.parser import CAMUNDA_NS, NS
from app.errors import Conflict, InvalidInput, NotAllowed, NotFound
from app.tickets.models import Satisfaction, Ticket
from app.tickets.service import get_visible_ticket

# Everyone but finance reports faults (finance reads costs only).
REPORTING_ROLES = ("admin", "dispatcher", "handler", "reviewer", "requester")
# Form fields that are columns of the work order; every other field is a custom field.
TICKET_FIELDS = ("title", "description", "priority", "category", "region", "device_no")
COMMENT_MAX = 1000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Stored definitions passed defusedxml at deploy; still no entities and no network here.
_XML = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
# (content hash, process key) -> the start event's form key; versions are immutable.
_START_FORM_KEYS: dict[tuple[str, str], str | None] = {}


@dataclass
class StartForm:
    """A deployed process whose start event has a form: what the portal offers to report."""

    definition: ProcessDefinition
    schema: dict


def start_form_key(definition: ProcessDefinition) -> str | None:
    """The ``camunda:formKey`` of the process's start event.

    SpiffWorkflow's start-event spec drops the attribute, so it is read from the stored BPMN,
    once per definition version.
    """
    cache_key = (definition.content_hash, definition.key)
    if cache_key not in _START_FORM_KEYS:
        root = etree.fromstring(definition.bpmn_xml.encode("utf-8"), _XML)
        found = None
        for process in root.iterfind("bpmn:process", NS):
            if process.get("id") != definition.key:
                continue
            for start in process.iterfind("bpmn:startEvent", NS):
                found = start.get(f"{{{CAMUNDA_NS}}}formKey") or found
        _START_FORM_KEYS[cache_key] = found
    return _START_FORM_KEYS[cache_key]


def _start_form_of(definition: ProcessDefinition) -> StartForm | None:
    key = start_form_key(definition)
    schema = (definition.forms or {}).get(key) if key else None
    return StartForm(definition, schema) if schema else None


def reportable_processes(*, db_session: Session) -> list[StartForm]:
    """The latest version of every deployed process whose start event has a deployed form."""
    newest = (
        select(ProcessDefinition.key, func.max(ProcessDefinition.version).label("version"))
        .group_by(ProcessDefinition.key)
        .subquery()
    )
    definitions = db_session.scalars(
        select(ProcessDefinition)
        .join(
            newest,
            (ProcessDefinition.key == newest.c.key)
            & (ProcessDefinition.version == newest.c.version),
        )
        .order_by(ProcessDefinition.key)
    )
    return [found for definition in definitions if (found := _start_form_of(definition))]


def get_start_form(*, db_session: Session, process_key: str) -> StartForm:
    """The start form of the latest version of ``process_key``; 404 when there is none."""
    definition = latest_definition(db_session=db_session, key=process_key, required=False)
    found = _start_form_of(definition) if definition is not None else None
    if found is None:
        raise NotFound(
            f"没有可以提交的工单类型 {process_key}（流程未部署或开始事件没有表单）",
            f"there is no work-order type {process_key} to report (the process is not "
            "deployed or its start event has no form)",
        )
    return found


def ticket_arguments(values: dict) -> dict:
    """Split validated start-form values into create_ticket's arguments: the work order's own
    fields, and every other field as a custom field."""
    values = dict(values)
    arguments = {
        name: values.pop(name)
        for name in TICKET_FIELDS
        if name in values and values[name] not in (None, "")
    }
    for name in TICKET_FIELDS:
        values.pop(name, None)
    if not str(arguments.get("title", "")).strip():
        # A start form without a required title field still needs one for the work order.
        raise InvalidInput(
            "标题 title：必填", "title: required", errors={"title": ["必填 / required"]}
        )
    arguments["custom_fields"] = values
    return arguments


# ---------------------------------------------------------------- my reports


@dataclass
class Report:
    """One of my work orders, with the task waiting for me on it and whether I should rate it."""

    ticket: Ticket
    my_task: HumanTask | None
    please_rate: bool


def my_reports_query(*, user: User):
    """The work orders ``user`` reported, newest first."""
    return (
        select(Ticket)
        .where(Ticket.requester_id == user.id)
        .order_by(Ticket.created_at.desc(), Ticket.id.desc())
    )


def annotate_reports(*, db_session: Session, user: User, tickets: list[Ticket]) -> list[Report]:
    """Add to each ticket the first open task that is ``user``'s to do and the rating marker."""
    ids = [ticket.id for ticket in tickets]
    my_tasks: dict[int, HumanTask] = {}
    rated: set[int] = set()
    if ids:
        for task in db_session.scalars(
            select(HumanTask)
            .where(
                HumanTask.ticket_id.in_(ids),
                HumanTask.status == "open",
                my_task_condition(user),
            )
            .order_by(HumanTask.created_at)
            .options(selectinload(HumanTask.candidates))
        ):
            my_tasks.setdefault(task.ticket_id, task)
        rated = set(
            db_session.scalars(
                select(Satisfaction.ticket_id).where(Satisfaction.ticket_id.in_(ids))
            )
        )
    return [
        Report(
            ticket=ticket,
            my_task=my_tasks.get(ticket.id),
            please_rate=ticket.status == "closed" and ticket.id not in rated,
        )
        for ticket in tickets
    ]


# ---------------------------------------------------------------- rating


def rating_of(*, db_session: Session, ticket_id: int) -> Satisfaction | None:
    return db_session.get(Satisfaction, ticket_id)


def suggested_rating(*, db_session: Session, ticket: Ticket) -> int | None:
    """The satisfaction score (``csat``) the requester gave when accepting the work, if the
    acceptance form asked for one: the rating form starts from it."""
    if ticket.process_instance_id is None:
        return None
    submitted = db_session.scalars(
        select(ProcessEvent.data)
        .where(
            ProcessEvent.instance_id == ticket.process_instance_id,
            ProcessEvent.event_type == "task_completed",
            ProcessEvent.actor == ticket.requester.username,
        )
        .order_by(ProcessEvent.id.desc())
    )
    for data in submitted:
        value = (data or {}).get("csat")
        if isinstance(value, int | float) and not isinstance(value, bool) and 1 <= value <= 5:
            return int(value)
    return None


def _rating_value(raw: object) -> int:
    text = str(raw if raw is not None else "").strip()
    if not re.fullmatch(r"[1-5]", text):
        raise InvalidInput(
            f"满意度评分 rating 必须是 1 到 5 的整数（收到：{text[:20] or '空'}）",
            f"the rating must be a whole number from 1 to 5 (got: {text[:20] or 'nothing'})",
            errors={"rating": ["1–5"]},
        )
    return int(text)


def rate_ticket(
    *, db_session: Session, user: User, ticket_id: int, rating: object, comment: str = ""
) -> Satisfaction:
    """Record the requester's rating of their archived work order: once, 1 to 5, audited."""
    ticket = get_visible_ticket(db_session=db_session, user=user, ticket_id=ticket_id)
    if ticket.requester_id != user.id:
        raise NotAllowed(
            f"只有报修人可以评价工单 {ticket.number}",
            f"only the person who reported work order {ticket.number} may rate it",
        )
    if ticket.status != "closed":
        raise Conflict(
            f"工单 {ticket.number} 尚未归档，归档后才能评价",
            f"work order {ticket.number} is not archived yet; it can be rated once it is",
        )
    value = _rating_value(rating)
    comment = (comment or "").strip()
    if len(comment) > COMMENT_MAX or _CONTROL.search(comment):
        raise InvalidInput(
            f"评价意见最多 {COMMENT_MAX} 个字，且不能包含控制字符（收到 {len(comment)} 个字）",
            f"the comment may have at most {COMMENT_MAX} characters and no control characters "
            f"({len(comment)} were sent)",
            errors={"comment": [f"≤ {COMMENT_MAX}"]},
        )
    if rating_of(db_session=db_session, ticket_id=ticket.id) is not None:
        raise Conflict(
            f"工单 {ticket.number} 已经评价过，评价不能修改",
            f"work order {ticket.number} has been rated already; a rating cannot be changed",
        )
    satisfaction = Satisfaction(
        ticket_id=ticket.id, rating=value, comment=comment, rated_by=user.username
    )
    db_session.add(satisfaction)
    db_session.flush()
    record(
        db_session=db_session,
        action="ticket.rate",
        object_type="ticket",
        object_id=ticket.id,
        actor=user.username,
        after={"rating": value, "comment": comment},
    )
    return satisfaction
