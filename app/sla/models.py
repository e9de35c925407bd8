"""Business calendars and their days: official holidays and adjusted workdays shared by all
calendars (no calendar), and one calendar's own closures."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.timeutil import UTCDateTime, utcnow


class BusinessCalendar(db.Model):
    """Working hours per weekday in one time zone; SLA targets are counted on it."""

    __tablename__ = "business_calendar"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    time_zone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    # {"0": [["09:00", "12:00"], ["13:00", "18:00"]], ...}: Monday is "0"; a missing day rests.
    working_hours: Mapped[dict] = mapped_column(JSON, default=dict)
    # Chinese public holidays rest and adjusted workdays (调休) work.
    use_official_holidays: Mapped[bool] = mapped_column(default=True)
    is_24x7: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CalendarDay(db.Model):
    """A day off or on: without a calendar, an official holiday or adjusted workday for every
    calendar (admins enter the years chinese-calendar does not know); with one, a closure of
    that calendar. One row per calendar (or the official table) and date."""

    __tablename__ = "calendar_day"
    __table_args__ = (
        CheckConstraint("kind in ('holiday', 'workday', 'closure')", name="kind"),
        CheckConstraint(
            "(calendar_id is null and kind <> 'closure') "
            "or (calendar_id is not null and kind = 'closure')",
            name="scope",
        ),
        UniqueConstraint("calendar_id", "date"),
        # Unique constraints let NULLs repeat: the official table needs its own partial index.
        Index(
            "uq_calendar_day_official_date",
            "date",
            unique=True,
            sqlite_where=text("calendar_id is null"),
            postgresql_where=text("calendar_id is null"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_id: Mapped[int | None] = mapped_column(
        ForeignKey("business_calendar.id", ondelete="CASCADE"), index=True
    )
    date: Mapped[dt.date] = mapped_column(Date, index=True)
    kind: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(100), default="")
