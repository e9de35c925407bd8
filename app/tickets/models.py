"""Work orders and the devices they are about."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, Numeric, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.auth.models import User
from app.extensions import db
from app.timeutil import UTCDateTime, utcnow

PRIORITIES = ("P1", "P2", "P3", "P4")
REGIONS = {"beijing": "北京", "shanghai": "上海", "shenzhen": "深圳"}
STATUSES = {
    "open": ("待处理", "open"),
    "in_progress": ("处理中", "in progress"),
    "closed": ("已归档", "archived"),
}


class Device(db.Model):
    """A device or asset (设备) that field work orders refer to by its number."""

    __tablename__ = "device"

    id: Mapped[int] = mapped_column(primary_key=True)
    device_no: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    model: Mapped[str | None] = mapped_column(String(100))
    region: Mapped[str] = mapped_column(String(20))
    address: Mapped[str] = mapped_column(String(300))
    lat: Mapped[float | None]
    lng: Mapped[float | None]


class Ticket(db.Model):
    __tablename__ = "ticket"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str | None] = mapped_column(String(40), unique=True)
    process_key: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="open", index=True)
    priority: Mapped[str] = mapped_column(String(4), default="P3")
    category: Mapped[str] = mapped_column(String(40), default="")
    region: Mapped[str] = mapped_column(String(20))
    # Indexed: the site page and dispatch (who fixed this device before) look tickets up by it.
    device_no: Mapped[str | None] = mapped_column(String(60), index=True)
    # Names of the open tasks, so lists show where a ticket stands without a join.
    current_step: Mapped[str | None] = mapped_column(String(300))
    custom_fields: Mapped[dict] = mapped_column(JSON, default=dict)
    location_address: Mapped[str | None] = mapped_column(String(300))
    location_lat: Mapped[float | None]
    location_lng: Mapped[float | None]
    contact_name: Mapped[str | None] = mapped_column(String(100))
    contact_phone: Mapped[str | None] = mapped_column(String(40))
    # Seen by staff, never by the requester.
    internal_note: Mapped[str | None] = mapped_column(Text)
    # Cost information (the one thing finance sees), in yuan.
    parts_cost: Mapped[Decimal] = mapped_column(
        Numeric(12, 2), default=Decimal("0"), server_default="0"
    )
    labour_cost: Mapped[Decimal] = mapped_column(
        Numeric(12, 2), default=Decimal("0"), server_default="0"
    )
    # The requester's department when reported: dispatchers see their departments' tickets.
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"), index=True)
    requester_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    process_instance_id: Mapped[int | None] = mapped_column(
        ForeignKey("process_instance.id"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    requester: Mapped[User] = relationship()

    @property
    def total_cost(self) -> Decimal:
        return (self.parts_cost or Decimal("0")) + (self.labour_cost or Decimal("0"))


BigId = BigInteger().with_variant(Integer(), "sqlite")


class TicketNote(db.Model):
    """A progress note (处理记录) written on the work-order page."""

    __tablename__ = "ticket_note"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    body: Mapped[str] = mapped_column(Text)
    # Internal notes are for staff; the requester never sees them.
    internal: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    author: Mapped[User] = relationship(lazy="joined")


class Satisfaction(db.Model):
    """The requester's rating (满意度, 1–5) of a finished work order: one per ticket."""

    __tablename__ = "satisfaction"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), primary_key=True)
    rating: Mapped[int] = mapped_column(SmallInteger)
    comment: Mapped[str] = mapped_column(Text, default="")
    rated_by: Mapped[str] = mapped_column(String(100))
    rated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
