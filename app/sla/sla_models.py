"""SLA policies and the SLA clock ledger: one clock per ticket and kind, made of running and
paused intervals, so that a deadline can always be recomputed from the original start."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.timeutil import UTCDateTime, utcnow

BigId = BigInteger().with_variant(Integer(), "sqlite")

CLOCK_KINDS = ("response", "resolution")
# What stops the response clock: the first action of staff on the ticket (a claim, a
# transfer, a completed task), or the engineer's check-in at the site (field repair).
RESPONSE_EVENTS = ("first_action", "checkin")


class SlaPolicy(db.Model):
    """Targets for the tickets it matches; policies are tried by position, the first active
    match wins. An empty match field matches everything."""

    __tablename__ = "sla_policy"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    position: Mapped[int] = mapped_column(Integer, index=True)
    process_key: Mapped[str | None] = mapped_column(String(100))
    category: Mapped[str | None] = mapped_column(String(40))
    priority: Mapped[str | None] = mapped_column(String(4))
    # Matches the ticket's department and every department below it.
    department_code: Mapped[str | None] = mapped_column(String(50))
    # Working minutes on the policy's calendar.
    response_minutes: Mapped[int] = mapped_column(Integer)
    resolution_minutes: Mapped[int] = mapped_column(Integer)
    response_event: Mapped[str] = mapped_column(String(20), default="first_action")
    calendar_id: Mapped[int] = mapped_column(ForeignKey("business_calendar.id"), index=True)
    # Ticket statuses and open user tasks (element id or name) that pause the clocks.
    pause_on: Mapped[list] = mapped_column(JSON, default=list)
    # [{"percent": 50, "notify": ["assignee"]}, ...], ascending percent.
    escalation_levels: Mapped[list] = mapped_column(JSON, default=list)
    reminder_percent: Mapped[int] = mapped_column(Integer, default=75)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SlaClock(db.Model):
    """One SLA target of one ticket. ``started_at`` never moves; ``deadline`` is derived from
    the intervals and the calendar (None while paused: it depends on when work resumes)."""

    __tablename__ = "sla_clock"
    __table_args__ = (Index("ix_sla_clock_ticket_id_kind", "ticket_id", "kind", unique=True),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"))
    kind: Mapped[str] = mapped_column(String(20))
    policy_id: Mapped[int | None] = mapped_column(ForeignKey("sla_policy.id"), index=True)
    # The calendar the minutes are counted on (the policy's, when the clock was last computed).
    calendar_id: Mapped[int] = mapped_column(ForeignKey("business_calendar.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    target_minutes: Mapped[int] = mapped_column(Integer)
    # Indexed: reminders and escalations look for clocks about to run out.
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The moment the deadline passed with the clock still running (its deadline then).
    breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    policy: Mapped[SlaPolicy | None] = relationship()
    intervals: Mapped[list[SlaInterval]] = relationship(
        cascade="all, delete-orphan",
        order_by="SlaInterval.starts_at, SlaInterval.id",
        back_populates="clock",
    )


class SlaInterval(db.Model):
    """A stretch of a clock's life, running or paused; the open one has no end."""

    __tablename__ = "sla_interval"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    clock_id: Mapped[int] = mapped_column(ForeignKey("sla_clock.id"), index=True)
    state: Mapped[str] = mapped_column(String(10))  # running | paused
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(String(300))

    clock: Mapped[SlaClock] = relationship(back_populates="intervals")
