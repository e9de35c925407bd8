"""Dispatch settings an admin keeps: each group's mode, weights and pool wait, and each
engineer's home base, capacity, weekly shifts and leave. Changes are audited."""

from __future__ import annotations

import math
import re
from dataclasses import asdict
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.audit.service import record
from app.auth.models import Group, User
from app.dispatch.models import (
    DEFAULT_CAPACITY,
    DEFAULT_POOL_WAIT_MINUTES,
    MODES,
    EngineerProfile,
    GroupDispatchConfig,
    Leave,
    WorkShift,
)
from app.dispatch.people import position_of
from app.dispatch.roster import changed as roster_changed
from app.dispatch.work import WEIGHT_NAMES, weights_from
from app.errors import InvalidInput, NotFound
from app.timeutil import utcnow

CAPACITY_MAX = 50
POOL_WAIT_MAX = 24 * 60
_START = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_END = re.compile(r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$")
WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")


# ---------------------------------------------------------------- groups


def _group(db_session: Session, code: str) -> Group:
    group = db_session.scalar(select(Group).where(Group.code == code))
    if group is None:
        raise NotFound(f"组 {code} 不存在", f"group {code} not found")
    return group


def group_config(*, db_session: Session, code: str) -> dict:
    """The group's dispatch settings; a group without its own row shows the defaults."""
    group = _group(db_session, code)
    config = db_session.get(GroupDispatchConfig, group.id)
    return {
        "group": group.code,
        "configured": config is not None,
        "mode": config.mode if config is not None else "dispatcher",
        "weights": asdict(weights_from(config.weights if config is not None else None)),
        "pool_wait_minutes": config.pool_wait_minutes
        if config is not None
        else DEFAULT_POOL_WAIT_MINUTES,
    }


def set_group_config(
    *,
    db_session: Session,
    code: str,
    mode: str,
    weights: dict | None = None,
    pool_wait_minutes: int | None = None,
    actor: str | None = None,
) -> dict:
    """Set how the group's work is dispatched. Weights not named keep their defaults."""
    group = _group(db_session, code)
    if mode not in MODES:
        raise InvalidInput(
            f"派单方式 {mode} 无效（可选：{', '.join(MODES)}）",
            f"dispatch mode {mode} is not valid (choose from {', '.join(MODES)})",
            errors={"mode": [f"one of {', '.join(MODES)}"]},
        )
    weights = dict(weights or {})
    unknown = sorted(set(weights) - set(WEIGHT_NAMES))
    bad = [n for n, v in weights.items() if not isinstance(v, int | float) or not math.isfinite(v)]
    if unknown or bad:
        names = ", ".join(unknown + bad)
        raise InvalidInput(
            f"权重 {names} 无效（可用：{', '.join(WEIGHT_NAMES)}，取值为数字）",
            f"weights {names} are not valid (known: {', '.join(WEIGHT_NAMES)}; numbers only)",
            errors={"weights": [names]},
        )
    wait = DEFAULT_POOL_WAIT_MINUTES if pool_wait_minutes is None else pool_wait_minutes
    if not 0 <= wait <= POOL_WAIT_MAX:
        raise InvalidInput(
            f"抢单等待时间必须在 0 到 {POOL_WAIT_MAX} 分钟之间（收到 {wait}）",
            f"the pool wait must be 0 to {POOL_WAIT_MAX} minutes ({wait} was sent)",
            errors={"pool_wait_minutes": [f"0..{POOL_WAIT_MAX}"]},
        )
    before = group_config(db_session=db_session, code=code)
    config = db_session.get(GroupDispatchConfig, group.id)
    if config is None:
        config = GroupDispatchConfig(group_id=group.id)
        db_session.add(config)
    config.mode = mode
    config.weights = {name: float(value) for name, value in weights.items()}
    config.pool_wait_minutes = wait
    db_session.flush()
    after = group_config(db_session=db_session, code=code)
    record(
        db_session=db_session,
        action="group.dispatch_config",
        object_type="group",
        object_id=group.id,
        before=before,
        after=after,
        actor=actor,
    )
    return after


# ---------------------------------------------------------------- engineers


def _engineer(db_session: Session, username: str) -> User:
    user = db_session.scalar(select(User).where(User.username == username))
    if user is None or user.role != "handler":
        raise NotFound(f"工程师 {username} 不存在", f"engineer {username} not found")
    return user


def profile(*, db_session: Session, username: str, now: datetime | None = None) -> dict:
    """An engineer as dispatch sees them: skills, home base, capacity, shifts, leave, and the
    position a ranking would start from now."""
    user = _engineer(db_session, username)
    row = db_session.get(EngineerProfile, user.id)
    here = position_of(db_session=db_session, user=user, now=now or utcnow())
    shifts = db_session.scalars(
        select(WorkShift)
        .where(WorkShift.user_id == user.id)
        .order_by(WorkShift.weekday, WorkShift.start_time)
    )
    leave = db_session.scalars(
        select(Leave).where(Leave.user_id == user.id).order_by(Leave.starts_at)
    )
    home = None
    if row is not None and row.home_lat is not None and row.home_lng is not None:
        home = {"lat": row.home_lat, "lng": row.home_lng}
    return {
        "username": user.username,
        "name": user.display_name,
        "groups": sorted(g.code for g in user.groups),
        "skills": {s.skill.code: s.level for s in user.skills},
        "home": home,
        "capacity": row.capacity if row is not None else DEFAULT_CAPACITY,
        "position": None
        if here is None
        else {"lat": here.lat, "lng": here.lng, "source": here.source, "at": here.at},
        "shifts": [
            {"weekday": s.weekday, "start": s.start_time, "end": s.end_time} for s in shifts
        ],
        "leave": [
            {"starts_at": v.starts_at, "ends_at": v.ends_at, "reason": v.reason} for v in leave
        ],
    }


def _check_shift(shift: dict) -> tuple[int, str, str]:
    weekday, start, end = shift.get("weekday"), shift.get("start"), shift.get("end")
    if not isinstance(weekday, int) or not 0 <= weekday <= 6:
        raise InvalidInput(
            f"班次的星期 weekday 必须是 0（周一）到 6（周日）（收到 {weekday}）",
            f"a shift's weekday must be 0 (Monday) to 6 (Sunday) ({weekday} was sent)",
            errors={"shifts": ["weekday 0..6"]},
        )
    if not (isinstance(start, str) and _START.match(start)) or not (
        isinstance(end, str) and _END.match(end)
    ):
        raise InvalidInput(
            f"{WEEKDAYS[weekday]}的班次时间须为 HH:MM（结束可为 24:00），收到 {start}–{end}",
            f"shift times are HH:MM (an end may be 24:00); {start}–{end} was sent",
            errors={"shifts": ["HH:MM"]},
        )
    if start == end:
        raise InvalidInput(
            f"{WEEKDAYS[weekday]}的班次开始与结束相同（{start}），请给出时长",
            f"a shift on weekday {weekday} starts and ends at {start}; give it a length",
            errors={"shifts": ["start == end"]},
        )
    return weekday, start, end


def set_profile(
    *,
    db_session: Session,
    username: str,
    actor: str | None = None,
    **changes: object,
) -> dict:
    """Change what is given of: home ({lat, lng} or None), capacity, shifts (the whole week,
    replaced), leave (every period, replaced)."""
    user = _engineer(db_session, username)
    before = profile(db_session=db_session, username=username)
    row = db_session.get(EngineerProfile, user.id)
    if row is None:
        row = EngineerProfile(user_id=user.id, capacity=DEFAULT_CAPACITY)
        db_session.add(row)
    if "home" in changes:
        home = changes["home"] or {}
        row.home_lat, row.home_lng = home.get("lat"), home.get("lng")
    if "capacity" in changes:
        capacity = changes["capacity"]
        if not isinstance(capacity, int) or not 1 <= capacity <= CAPACITY_MAX:
            raise InvalidInput(
                f"容量 capacity 必须在 1 到 {CAPACITY_MAX} 之间（收到 {capacity}）",
                f"capacity must be 1 to {CAPACITY_MAX} ({capacity} was sent)",
                errors={"capacity": [f"1..{CAPACITY_MAX}"]},
            )
        row.capacity = capacity
    if "shifts" in changes:
        shifts = [_check_shift(s) for s in changes["shifts"] or []]
        db_session.execute(delete(WorkShift).where(WorkShift.user_id == user.id))
        roster_changed(db_session)  # a bulk delete: the flush hook does not see it
        db_session.add_all(
            WorkShift(user_id=user.id, weekday=w, start_time=s, end_time=e) for w, s, e in shifts
        )
    if "leave" in changes:
        periods = changes["leave"] or []
        for period in periods:
            if not period["starts_at"] < period["ends_at"]:
                raise InvalidInput(
                    f"休假的开始 {period['starts_at']:%Y-%m-%d %H:%M} 必须早于结束",
                    f"a leave must start ({period['starts_at']:%Y-%m-%d %H:%M}) before it ends",
                    errors={"leave": ["starts_at < ends_at"]},
                )
        db_session.execute(delete(Leave).where(Leave.user_id == user.id))
        roster_changed(db_session)
        db_session.add_all(
            Leave(
                user_id=user.id,
                starts_at=p["starts_at"],
                ends_at=p["ends_at"],
                reason=p.get("reason") or "",
            )
            for p in periods
        )
    db_session.flush()
    after = profile(db_session=db_session, username=username)
    record(
        db_session=db_session,
        action="engineer.profile",
        object_type="user",
        object_id=user.id,
        before={k: before[k] for k in ("home", "capacity", "shifts", "leave")},
        after={k: after[k] for k in ("home", "capacity", "shifts", "leave")},
        actor=actor,
    )
    return after
