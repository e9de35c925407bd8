"""Work orders: creating, finding, changing them, and keeping their status in step with their
process. Who sees which tickets is app.auth.access's rule; who may change which field is here."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, exists, or_, select
from sqlalchemy.orm import Session, joinedload, selectinload

from app import engine
from app.audit.service import changes, record
from app.auth.access import (
    event_condition,
    my_task_condition,
    task_condition,
    ticket_condition,
)
from app.auth.models import Group, User
from app.engine.models import HumanTask, HumanTaskCandidate, ProcessEvent
from app.engine.runtime import expire_loaded
from app.engine.signals import instance_stepped, task_reassigned
from app.errors import Conflict, InvalidInput, NotAllowed, NotFound
from app.tickets.models import PRIORITIES, REGIONS, Device, Ticket
from app.timeutil import utcnow

# Work-order number prefix per process: IT-20261126-00042.
NUMBER_PREFIX = {"it_service": "IT", "equipment_repair": "RP"}
MAX_ID = 2**31 - 1  # ticket.id is a 32-bit integer
# What other systems may send instead of a process key.
TICKET_TYPES = {"it": "it_service", "repair": "equipment_repair"}
# Process variables the ticket itself sets; custom fields may not take these names.
RESERVED_VARIABLES = frozenset(
    {
        "ticket_id",
        "ticket_no",
        "title",
        "description",
        "requester",
        "category",
        "priority",
        "region",
        "device_no",
    }
)

# Fields a PATCH may change, by role. Handlers and reviewers only on a ticket where an open
# task is theirs to work on; requesters only on their own ticket while nobody has started it.
STAFF_FIELDS = frozenset(
    {"title", "description", "priority", "category", "internal_note", "location", "contact"}
)
COST_FIELDS = frozenset({"parts_cost", "labour_cost"})
EDITABLE_FIELDS: dict[str, frozenset[str]] = {
    "admin": STAFF_FIELDS | COST_FIELDS,
    "dispatcher": STAFF_FIELDS | COST_FIELDS,
    "handler": STAFF_FIELDS | COST_FIELDS,
    "reviewer": STAFF_FIELDS,
    "requester": frozenset({"title", "description", "contact"}),
    "finance": frozenset(),
}
WORKS_ON_TASKS = {"handler", "reviewer"}


def create_ticket(
    *,
    db_session: Session,
    requester: User,
    title: str,
    process_key: str,
    description: str = "",
    priority: str = "P3",
    category: str = "",
    region: str = "beijing",
    device_no: str | None = None,
    location: dict | None = None,
    contact: dict | None = None,
    custom_fields: dict | None = None,
) -> Ticket:
    """Create a work order in the requester's department and start its process, in the
    caller's transaction."""
    if priority not in PRIORITIES:
        raise InvalidInput(
            f"优先级 {priority} 无效（可选：{', '.join(PRIORITIES)}）",
            f"priority {priority} is not valid (choose from {', '.join(PRIORITIES)})",
        )
    if region not in REGIONS:
        raise InvalidInput(
            f"区域 {region} 无效（可选：{', '.join(REGIONS)}）",
            f"region {region} is not valid (choose from {', '.join(REGIONS)})",
        )
    if (
        device_no
        and db_session.scalar(select(Device.id).where(Device.device_no == device_no)) is None
    ):
        raise InvalidInput(
            f"设备编号 {device_no} 不存在", f"device number {device_no} does not exist"
        )
    ticket = Ticket(
        process_key=process_key,
        title=title.strip(),
        description=description or "",
        priority=priority,
        category=category or "",
        region=region,
        device_no=device_no or None,
        custom_fields=custom_fields or {},
        requester=requester,
        requester_id=requester.id,
        department_id=requester.department_id,
    )
    _set_location(ticket, location)
    _set_contact(ticket, contact)
    db_session.add(ticket)
    db_session.flush()
    prefix = NUMBER_PREFIX.get(process_key, "WO")
    ticket.number = f"{prefix}-{ticket.created_at:%Y%m%d}-{ticket.id:05d}"
    instance = engine.start(
        db_session=db_session,
        process_key=process_key,
        data=process_variables(ticket),
        business_key=ticket.number,
        ticket_id=ticket.id,
        actor=requester.username,
    )
    ticket.process_instance_id = instance.id
    record(
        db_session=db_session,
        action="ticket.create",
        object_type="ticket",
        object_id=ticket.id,
        actor=requester.username,
        after={
            "number": ticket.number,
            "process_key": process_key,
            "title": ticket.title,
            "priority": priority,
            "category": ticket.category,
            "region": region,
            "device_no": ticket.device_no,
            "department_id": ticket.department_id,
        },
    )
    return ticket


def process_variables(ticket: Ticket) -> dict:
    return {
        **ticket.custom_fields,
        "ticket_id": ticket.id,
        "ticket_no": ticket.number,
        "title": ticket.title,
        "description": ticket.description,
        "requester": ticket.requester.username,
        "category": ticket.category,
        "priority": ticket.priority,
        "region": ticket.region,
        "device_no": ticket.device_no or "",
    }


# ---------------------------------------------------------------- reading


def get_visible_ticket(*, db_session: Session, user: User, ticket_id: int) -> Ticket:
    """The work order, if ``user`` may see it; otherwise 404 (ids cannot be probed)."""
    ticket = None
    # An id past the column's range exists nowhere (and PostgreSQL refuses to compare it).
    if 0 < ticket_id <= MAX_ID:
        ticket = db_session.scalar(
            select(Ticket).where(Ticket.id == ticket_id, ticket_condition(db_session, user))
        )
    if ticket is None:
        raise NotFound(f"工单 {ticket_id} 不存在", f"work order {ticket_id} not found")
    return ticket


def visible_tickets_query(
    *,
    db_session: Session,
    user: User,
    status: str | None = None,
    priority: str | None = None,
    category: str | None = None,
    assignee: str | None = None,
    group: str | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    q: str | None = None,
):
    """Work orders ``user`` may see, newest first, narrowed by the filters given.

    Every filter only narrows ``ticket_condition``: a search never reaches past visibility.
    ``assignee``: a username with an open task assigned; ``group``: a group (by code) with an
    open unclaimed task offered; ``created_to`` is exclusive; ``q`` is a substring of the
    number, title or description, in any letter case.
    """
    query = (
        select(Ticket)
        .where(ticket_condition(db_session, user))
        .options(joinedload(Ticket.requester))
        .order_by(Ticket.id.desc())
    )
    if status:
        query = query.where(Ticket.status == status)
    if priority:
        query = query.where(Ticket.priority == priority)
    if category:
        query = query.where(Ticket.category == category)
    if assignee:
        query = query.where(
            exists().where(
                HumanTask.ticket_id == Ticket.id,
                HumanTask.status == "open",
                HumanTask.assignee == assignee,
            )
        )
    if group:
        # Lanes may name a group by its name instead of its code.
        names = {group, *db_session.scalars(select(Group.name).where(Group.code == group))}
        query = query.where(
            exists().where(
                HumanTask.ticket_id == Ticket.id,
                HumanTask.status == "open",
                HumanTask.assignee.is_(None),
                HumanTaskCandidate.task_id == HumanTask.id,
                HumanTaskCandidate.kind == "group",
                HumanTaskCandidate.value.in_(sorted(names)),
            )
        )
    if created_from:
        query = query.where(Ticket.created_at >= created_from)
    if created_to:
        query = query.where(Ticket.created_at < created_to)
    if q:
        query = query.where(
            or_(
                Ticket.number.icontains(q, autoescape=True),
                Ticket.title.icontains(q, autoescape=True),
                Ticket.description.icontains(q, autoescape=True),
            )
        )
    return query


def visible_open_tasks(*, db_session: Session, user: User, ticket: Ticket) -> list[HumanTask]:
    """The ticket's open tasks that ``user`` may see (the rule of the task inbox)."""
    return list(
        db_session.scalars(
            select(HumanTask)
            .where(
                HumanTask.instance_id == ticket.process_instance_id,
                HumanTask.status == "open",
                task_condition(db_session, user),
            )
            .order_by(HumanTask.created_at)
            .options(selectinload(HumanTask.candidates))
        )
    )


def visible_history(*, db_session: Session, user: User, ticket: Ticket) -> list[ProcessEvent]:
    """The ticket's process events that ``user`` may see: all for staff, for a requester what
    is meant for them (see app.auth.access.event_condition)."""
    query = (
        select(ProcessEvent)
        .where(ProcessEvent.instance_id == ticket.process_instance_id, event_condition(user))
        .order_by(ProcessEvent.id)
    )
    return list(db_session.scalars(query))


# ---------------------------------------------------------------- changing


def update_ticket(*, db_session: Session, user: User, ticket_id: int, values: dict) -> Ticket:
    """Change the fields in ``values`` that ``user``'s role may change, with one audit row
    holding the before and after of what actually changed."""
    ticket = get_visible_ticket(db_session=db_session, user=user, ticket_id=ticket_id)
    if not EDITABLE_FIELDS.get(user.role):
        raise NotAllowed(
            f"角色 {user.role} 不能修改工单", f"the role {user.role} may not change work orders"
        )
    if not values:
        allowed = ", ".join(sorted(EDITABLE_FIELDS.get(user.role, ()))) or "-"
        raise InvalidInput(
            f"请求中没有要修改的字段（你可以修改：{allowed}）",
            f"the request changes no field (you may change: {allowed})",
        )
    allowed = EDITABLE_FIELDS.get(user.role, frozenset())
    forbidden = sorted(set(values) - allowed)
    if forbidden:
        names = ", ".join(forbidden)
        raise InvalidInput(
            f"角色 {user.role} 不能修改工单的 {names}",
            f"the role {user.role} may not change {names} of a work order",
            errors={"json": {name: [f"not changeable by {user.role}"] for name in forbidden}},
        )
    if user.role in WORKS_ON_TASKS and not _has_open_task(db_session, user, ticket):
        raise NotAllowed(
            f"工单 {ticket.number} 上没有你的待办任务；只有正在处理它的人可以修改",
            f"work order {ticket.number} has no open task of yours; only the people working "
            "on it may change it",
        )
    if user.role == "requester" and ticket.status != "open":
        raise Conflict(
            f"工单 {ticket.number} 已开始处理，不能再修改；请联系服务台",
            f"work order {ticket.number} is already being worked on and can no longer be "
            "changed; contact the service desk",
        )
    values = {name: _normalized(name, value) for name, value in values.items()}
    before, after = changes(editable_values(ticket), values)
    if not after:
        return ticket
    for name, value in after.items():
        if name == "location":
            _set_location(ticket, value)
        elif name == "contact":
            _set_contact(ticket, value)
        else:
            setattr(ticket, name, value)
    ticket.updated_at = utcnow()
    record(
        db_session=db_session,
        action="ticket.update",
        object_type="ticket",
        object_id=ticket.id,
        actor=user.username,
        before=before,
        after=after,
    )
    return ticket


def editable_values(ticket: Ticket) -> dict:
    """The current values of the fields a PATCH can send, in the shape it sends them."""
    return {
        "title": ticket.title,
        "description": ticket.description,
        "priority": ticket.priority,
        "category": ticket.category,
        "internal_note": ticket.internal_note,
        "location": location_of(ticket),
        "contact": contact_of(ticket),
        "parts_cost": ticket.parts_cost,
        "labour_cost": ticket.labour_cost,
    }


def _has_open_task(db_session: Session, user: User, ticket: Ticket) -> bool:
    return bool(
        db_session.scalar(
            select(
                exists().where(
                    HumanTask.ticket_id == ticket.id,
                    HumanTask.status == "open",
                    my_task_condition(user),
                )
            )
        )
    )


def _normalized(name: str, value):
    """A sent value in the form it is stored, so that an unchanged value compares equal."""
    if name == "title":
        return value.strip()
    if name in {"location", "contact"} and value is not None:
        value = {key: item if item != "" else None for key, item in value.items()}
        return value if any(item is not None for item in value.values()) else None
    return value


def location_of(ticket: Ticket) -> dict | None:
    if ticket.location_lat is None and not ticket.location_address:
        return None
    return {
        "lat": ticket.location_lat,
        "lng": ticket.location_lng,
        "address": ticket.location_address,
    }


def contact_of(ticket: Ticket) -> dict | None:
    if not ticket.contact_name and not ticket.contact_phone:
        return None
    return {"name": ticket.contact_name, "phone": ticket.contact_phone}


def _set_location(ticket: Ticket, location: dict | None) -> None:
    location = location or {}
    ticket.location_lat = location.get("lat")
    ticket.location_lng = location.get("lng")
    ticket.location_address = location.get("address") or None


def _set_contact(ticket: Ticket, contact: dict | None) -> None:
    contact = contact or {}
    ticket.contact_name = contact.get("name") or None
    ticket.contact_phone = contact.get("phone") or None


# ---------------------------------------------------------------- following the process


@instance_stepped.connect
def follow_process(
    instance, *, db_session: Session, waiting_on: list[str], completed: int, **_
) -> None:
    """Keep the ticket's status and current step in step with its process instance.

    One UPDATE per engine step, without loading the ticket: this runs on every step.
    """
    if instance.ticket_id is None:
        return
    now = utcnow()
    values: dict = {"updated_at": now}
    if instance.status == "completed":
        values.update(status="closed", closed_at=now, current_step=None)
    else:
        values["current_step"] = "、".join(dict.fromkeys(waiting_on))[:300] or None
        if completed:
            values["status"] = case(
                (Ticket.__table__.c.status == "open", "in_progress"),
                else_=Ticket.__table__.c.status,
            )
    table = Ticket.__table__
    db_session.execute(table.update().where(table.c.id == instance.ticket_id).values(**values))
    expire_loaded(db_session, Ticket, [instance.ticket_id])


@task_reassigned.connect
def follow_reassignment(task, *, db_session: Session, **_) -> None:
    """A claim, give-back or transfer is news on the work order: it was updated now."""
    if task.ticket_id is None:
        return
    table = Ticket.__table__
    db_session.execute(
        table.update().where(table.c.id == task.ticket_id).values(updated_at=utcnow())
    )
    expire_loaded(db_session, Ticket, [task.ticket_id])
