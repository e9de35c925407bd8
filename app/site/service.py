"""At the site (现场): the device a QR code names, the work orders there, check-ins (扫码签到) with
their distance from the device, and spare-parts requests (备件申领) sent from the phone."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, time

from sqlalchemy import case, select
from sqlalchemy.orm import Session, selectinload

from app.attachments.models import Attachment
from app.audit.models import AuditEntry
from app.audit.service import entries_query, record
from app.auth.access import my_task_condition, ticket_condition
from app.auth.models import User
from app.engine.models import HumanTask
from app.errors import Conflict, InvalidInput, NotAllowed, NotFound
from app.site.models import CheckIn
from app.tickets.models import Device, Ticket, TicketNote
from app.tickets.schemas import LOCAL_TIME
from app.tickets.service import get_visible_ticket
from app.timeutil import utcnow

# Roles that work at a site: they check in, add photos and voice notes, and ask for parts.
SITE_ROLES = ("admin", "dispatcher", "handler", "reviewer")
EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG)
CLOSED_SHOWN = 5
PART_MAX, NOTE_MAX, QUANTITY_MAX = 100, 500, 999
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres (haversine): ample for "is the engineer at the device"."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlambda = phi2 - phi1, math.radians(lng2 - lng1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def coordinate(value: object, name: str, low: float, high: float) -> float | None:
    """A latitude/longitude/accuracy as sent by a phone, or None when it sent none."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or not low <= number <= high:
        raise InvalidInput(
            f"位置字段 {name} 必须是 {low:g} 到 {high:g} 之间的数字（收到：{str(value)[:30]}）",
            f"the position field {name} must be a number from {low:g} to {high:g} "
            f"(got: {str(value)[:30]})",
            errors={name: [f"{low:g} … {high:g}"]},
        )
    return number


def position(source: dict) -> tuple[float | None, float | None]:
    """Latitude and longitude from a form or JSON body: both, or neither."""
    lat = coordinate(source.get("lat"), "lat", -90, 90)
    lng = coordinate(source.get("lng"), "lng", -180, 180)
    if (lat is None) != (lng is None):
        raise InvalidInput("位置要同时包含纬度 lat 和经度 lng", "a position needs both lat and lng")
    return lat, lng


def get_device(*, db_session: Session, device_no: str) -> Device:
    device = db_session.scalar(select(Device).where(Device.device_no == device_no))
    if device is None:
        raise NotFound(f"设备 {device_no} 不存在", f"device {device_no} not found")
    return device


def works_at_site(user: User) -> bool:
    return user.role in SITE_ROLES


@dataclass
class SiteTicket:
    """A work order at the device, with the user's open task on it and their check-in today."""

    ticket: Ticket
    my_task: HumanTask | None = None
    checkin: CheckIn | None = None


def site_tickets(
    *, db_session: Session, user: User, device: Device
) -> tuple[list[SiteTicket], list[Ticket]]:
    """The open work orders on the device that ``user`` may see, the one with the user's own
    open task first, and the latest archived ones."""
    visible = select(Ticket).where(
        Ticket.device_no == device.device_no, ticket_condition(db_session, user)
    )
    open_tickets = list(db_session.scalars(visible.where(Ticket.status != "closed")))
    closed = list(
        db_session.scalars(
            visible.where(Ticket.status == "closed")
            .order_by(Ticket.closed_at.desc(), Ticket.id.desc())
            .limit(CLOSED_SHOWN)
        )
    )
    rows = {ticket.id: SiteTicket(ticket) for ticket in open_tickets}
    if rows:
        for task in db_session.scalars(_my_open_tasks(user, list(rows))):
            rows[task.ticket_id].my_task = rows[task.ticket_id].my_task or task
        for checkin in todays_checkins(db_session=db_session, user=user, ticket_ids=list(rows)):
            rows[checkin.ticket_id].checkin = checkin
    priority = {"P1": 0, "P2": 1, "P3": 2, "P4": 3}
    ordered = sorted(
        rows.values(),
        key=lambda row: (
            row.my_task is None,
            priority.get(row.ticket.priority, 9),
            -row.ticket.id,
        ),
    )
    return ordered, closed


def todays_checkins(*, db_session: Session, user: User, ticket_ids: list[int]) -> list[CheckIn]:
    """The user's check-ins on these tickets since local midnight, oldest first (so the latest
    of each ticket wins when read into a dict): a page reloaded on site does not check in again."""
    midnight = datetime.combine(datetime.now(LOCAL_TIME).date(), time(), LOCAL_TIME)
    return list(
        db_session.scalars(
            select(CheckIn)
            .where(
                CheckIn.ticket_id.in_(ticket_ids),
                CheckIn.user_id == user.id,
                CheckIn.at >= midnight.astimezone(UTC),
            )
            .order_by(CheckIn.at, CheckIn.id)
        )
    )


def site_ticket(*, db_session: Session, user: User, device_no: str, ticket_id: int) -> Ticket:
    """An open work order on this device that ``user`` works on at the site.

    403 for roles that do no site work, 404 for a work order they cannot see or that is not on
    this device, 409 once it is archived.
    """
    if not works_at_site(user):
        raise NotAllowed(
            "只有工程师、复核员、调度员和管理员可以在现场签到和记录",
            "only engineers, reviewers, dispatchers and administrators check in and record "
            "work at the site",
        )
    ticket = get_visible_ticket(db_session=db_session, user=user, ticket_id=ticket_id)
    if ticket.device_no != device_no:
        raise NotFound(
            f"设备 {device_no} 上没有工单 {ticket.number}",
            f"work order {ticket.number} is not on device {device_no}",
        )
    if ticket.status == "closed":
        raise Conflict(
            f"工单 {ticket.number} 已归档，不能再在现场记录",
            f"work order {ticket.number} is archived; nothing more can be recorded at the site",
        )
    return ticket


def _my_open_tasks(user: User, ticket_ids: list[int]):
    """Open tasks on these tickets that are the user's to do, those assigned to them first."""
    return (
        select(HumanTask)
        .where(
            HumanTask.ticket_id.in_(ticket_ids),
            HumanTask.status == "open",
            my_task_condition(user),
        )
        .order_by(case((HumanTask.assignee == user.username, 0), else_=1), HumanTask.created_at)
        .options(selectinload(HumanTask.candidates))
    )


def my_open_task(*, db_session: Session, user: User, ticket: Ticket) -> HumanTask | None:
    """The user's first open task on the ticket: photos taken at the site belong to it."""
    return db_session.scalars(_my_open_tasks(user, [ticket.id]).limit(1)).first()


def check_in(
    *,
    db_session: Session,
    user: User,
    device_no: str,
    ticket_id: int,
    lat: float | None = None,
    lng: float | None = None,
    accuracy_m: float | None = None,
) -> CheckIn:
    """Record that ``user`` is at the device for the work order, where the phone said it was."""
    device = get_device(db_session=db_session, device_no=device_no)
    ticket = site_ticket(db_session=db_session, user=user, device_no=device_no, ticket_id=ticket_id)
    distance = None
    if None not in (lat, lng, device.lat, device.lng):
        distance = round(distance_m(device.lat, device.lng, lat, lng), 1)
    checkin = CheckIn(
        ticket_id=ticket.id,
        device_no=device.device_no,
        user_id=user.id,
        at=utcnow(),
        lat=lat,
        lng=lng,
        accuracy_m=accuracy_m if lat is not None else None,
        distance_m=distance,
    )
    db_session.add(checkin)
    db_session.flush()
    record(
        db_session=db_session,
        action="site.checkin",
        object_type="ticket",
        object_id=ticket.id,
        actor=user.username,
        after={
            "checkin_id": checkin.id,
            "device_no": device.device_no,
            "lat": lat,
            "lng": lng,
            "accuracy_m": checkin.accuracy_m,
            "distance_m": distance,
        },
    )
    return checkin


def _text(value: object, key: str, zh: str, limit: int, *, required: bool) -> str:
    text = str(value or "").strip()
    if (required and not text) or len(text) > limit or _CONTROL.search(text):
        needed_zh, needed_en = ("必填，", "required, ") if required else ("", "")
        raise InvalidInput(
            f"{zh} {key}：{needed_zh}最多 {limit} 个字，不能包含控制字符",
            f"{key}: {needed_en}at most {limit} characters, no control characters",
            errors={key: [f"≤ {limit}"]},
        )
    return text


def request_spare_parts(
    *,
    db_session: Session,
    user: User,
    device_no: str,
    ticket_id: int,
    part: object,
    quantity: object,
    note: object = "",
) -> TicketNote:
    """Ask for spare parts from the site: an internal note on the work order, which the spare
    parts store and the dispatcher read there, and an audit entry the site page lists.

    The shipped repair process decides at dispatch whether parts are needed; a need found on
    site cannot reopen that branch, so the request travels as a note, not as a process step.
    """
    ticket = site_ticket(db_session=db_session, user=user, device_no=device_no, ticket_id=ticket_id)
    part = _text(part, "part", "备件", PART_MAX, required=True)
    note = _text(note, "note", "备注", NOTE_MAX, required=False)
    raw = str(quantity if quantity is not None else "").strip()
    if not raw.isdigit() or not 1 <= int(raw) <= QUANTITY_MAX:
        raise InvalidInput(
            f"数量 quantity 必须是 1 到 {QUANTITY_MAX} 的整数（收到：{raw[:20]}）",
            f"quantity must be a whole number from 1 to {QUANTITY_MAX} (got: {raw[:20]})",
            errors={"quantity": [f"1 … {QUANTITY_MAX}"]},
        )
    count = int(raw)
    body = f"备件申领：{part} × {count}" + (f"（{note}）" if note else "")
    row = TicketNote(ticket_id=ticket.id, author_id=user.id, body=body, internal=True)
    db_session.add(row)
    ticket.updated_at = utcnow()
    db_session.flush()
    record(
        db_session=db_session,
        action="spare_parts.request",
        object_type="ticket",
        object_id=ticket.id,
        actor=user.username,
        after={"part": part, "quantity": count, "note": note, "ticket_note_id": row.id},
    )
    return row


def spare_parts_requests(*, db_session: Session, ticket_id: int) -> list[AuditEntry]:
    """The spare-parts requests made at the site for a work order, newest first."""
    return list(
        db_session.scalars(
            entries_query(
                action="spare_parts.request", object_type="ticket", object_id=str(ticket_id)
            )
        )
    )


def site_records(*, db_session: Session, ticket_ids: list[int]) -> dict[int, dict[str, list]]:
    """The files and spare-parts requests of these work orders (``{ticket_id: {"attachments":
    [...], "parts": [...]}}``), in two queries however many work orders the device has."""
    records: dict[int, dict[str, list]] = {
        ticket_id: {"attachments": [], "parts": []} for ticket_id in ticket_ids
    }
    if not ticket_ids:
        return records
    for attachment in db_session.scalars(
        select(Attachment)
        .where(Attachment.ticket_id.in_(ticket_ids))
        .order_by(Attachment.created_at, Attachment.id)
    ):
        records[attachment.ticket_id]["attachments"].append(attachment)
    parts = entries_query(action="spare_parts.request", object_type="ticket").where(
        AuditEntry.object_id.in_([str(ticket_id) for ticket_id in ticket_ids])
    )
    for entry in db_session.scalars(parts):
        records[int(entry.object_id)]["parts"].append(entry)
    return records


def display_names(*, db_session: Session, user_ids: set[int]) -> dict[int, str]:
    if not user_ids:
        return {}
    return dict(
        db_session.execute(select(User.id, User.display_name).where(User.id.in_(user_ids))).all()
    )
