"""Creating work orders and keeping their status in step with their process."""

from __future__ import annotations

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from app import engine
from app.auth.access import ticket_condition
from app.auth.models import User
from app.engine.runtime import expire_loaded
from app.engine.signals import instance_stepped
from app.errors import InvalidInput, NotFound
from app.tickets.models import PRIORITIES, REGIONS, Device, Ticket
from app.timeutil import utcnow

# Work-order number prefix per process: IT-20261126-00042.
NUMBER_PREFIX = {"it_service": "IT", "equipment_repair": "RP"}


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
    custom_fields: dict | None = None,
) -> Ticket:
    """Create a work order and start its process, in the caller's transaction."""
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


def get_visible_ticket(*, db_session: Session, user: User, ticket_id: int) -> Ticket:
    """The work order, if ``user`` may see it; otherwise 404 (ids cannot be probed)."""
    ticket = db_session.scalar(
        select(Ticket).where(Ticket.id == ticket_id, ticket_condition(db_session, user))
    )
    if ticket is None:
        raise NotFound(f"工单 {ticket_id} 不存在", f"work order {ticket_id} not found")
    return ticket


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
