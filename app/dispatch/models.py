"""Dispatch tables: the people side (profile, shifts, leave), per-group settings, decisions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.timeutil import UTCDateTime, utcnow

BigId = BigInteger().with_variant(Integer(), "sqlite")

MODES = ("auto", "pool", "dispatcher")
DEFAULT_CAPACITY = 5
DEFAULT_POOL_WAIT_MINUTES = 30


class EngineerProfile(db.Model):
    """An engineer's home base, how many open jobs they take at once, and the live position
    their phone last reported (with its time: old positions are not trusted)."""

    __tablename__ = "engineer_profile"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True
    )
    home_lat: Mapped[float | None]
    home_lng: Mapped[float | None]
    capacity: Mapped[int] = mapped_column(Integer, default=DEFAULT_CAPACITY)
    pos_lat: Mapped[float | None]
    pos_lng: Mapped[float | None]
    pos_accuracy_m: Mapped[float | None]
    # Indexed: dispatch's roster reads the positions reported since its last look.
    pos_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class WorkShift(db.Model):
    """One weekly shift in Asia/Shanghai time: weekday 0 (Monday) to 6, "HH:MM" to "HH:MM".

    An end at or before the start runs past midnight into the next day.
    """

    __tablename__ = "work_shift"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    weekday: Mapped[int] = mapped_column(SmallInteger)
    start_time: Mapped[str] = mapped_column(String(5))
    end_time: Mapped[str] = mapped_column(String(5))


class Leave(db.Model):
    """Time off (休假): the engineer is not dispatched between starts_at and ends_at."""

    __tablename__ = "engineer_leave"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(String(200), default="")


class GroupDispatchConfig(db.Model):
    """How a group's work is dispatched: mode, scoring weights, and how long the pool waits
    before automatic assignment takes over. A group without a row is dispatched by a person
    from the ranked list, with the default weights."""

    __tablename__ = "group_dispatch_config"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("user_group.id", ondelete="CASCADE"), primary_key=True
    )
    mode: Mapped[str] = mapped_column(String(20), default="dispatcher")
    weights: Mapped[dict] = mapped_column(JSON, default=dict)
    pool_wait_minutes: Mapped[int] = mapped_column(Integer, default=DEFAULT_POOL_WAIT_MINUTES)


class DispatchDecision(db.Model):
    """One assignment made by dispatch, with the ranking it was made from (chosen breakdown,
    runner-ups, excluded engineers with their reasons), so that it can be explained later."""

    __tablename__ = "dispatch_decision"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id"), index=True)
    task_id: Mapped[str] = mapped_column(String(36), index=True)
    # auto | pool | dispatcher | batch
    mode: Mapped[str] = mapped_column(String(20))
    chosen: Mapped[str] = mapped_column(String(100))
    # None: the system decided (automatic, batch, pool fallback).
    decided_by: Mapped[str | None] = mapped_column(String(100))
    # Why a dispatcher overrode the recommendation.
    reason: Mapped[str | None] = mapped_column(Text)
    ranking: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RosterVersion(db.Model):
    """One row whose token changes, in the same transaction, with anything dispatch's roster
    snapshot holds (engineers, groups, skills, profiles, shifts, leave): app.dispatch.roster
    reloads when it differs. A random token, not a counter: a rolled-back change leaves the
    old token, and a snapshot read inside that transaction holds the new one, so it reloads."""

    __tablename__ = "dispatch_roster"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(32))
