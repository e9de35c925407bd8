"""The people side of dispatch, read from the database in a few set-wise queries: who may be
sent (engineers of the candidate groups), what they can do, whether they work now, how busy
they are, and where they are.

The result is columnar (numpy arrays, one row per engineer), because a decision among
thousands of engineers must cost milliseconds: building one Candidate object per engineer is
left to the few that are shown (app.dispatch.fastrank) or to callers that want them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from flask import current_app, has_app_context
from sqlalchemy import and_, bindparam, case, func, or_, select
from sqlalchemy.orm import Session

from app.auth.models import Group, Skill, User, UserSkill, group_member
from app.dispatch.models import DEFAULT_CAPACITY, EngineerProfile, Leave, WorkShift
from app.dispatch.scoring import PRIORITY_RANK, Candidate
from app.engine.models import HumanTask
from app.site.models import CheckIn
from app.tickets.models import Ticket
from app.timeutil import UTCDateTime

LOCAL = ZoneInfo("Asia/Shanghai")
PRIORITIES = tuple(PRIORITY_RANK)  # column order of CandidateTable.open_jobs
DEFAULT_STALE_MINUTES = 30
_users = User.__table__
_profiles = EngineerProfile.__table__
_tasks = HumanTask.__table__


@dataclass(frozen=True)
class Position:
    """Where an engineer is taken to be, and from what: "live" (the phone, recently), "checkin"
    (the last check-in today) or "home" (the home base)."""

    lat: float
    lng: float
    source: str
    at: datetime | None


@dataclass
class CandidateTable:
    """Engineers as columns; row i of every array is usernames[i]. Sorted by username."""

    user_ids: list[int]
    usernames: list[str]
    names: list[str]
    lat: np.ndarray  # NaN where no position is known
    lng: np.ndarray
    sources: list[str]  # live | checkin | home | none
    skills: dict[str, np.ndarray]  # skill code -> level per engineer (0 = none)
    skill_names: dict[str, str]
    on_shift: np.ndarray
    on_leave: np.ndarray
    open_jobs: np.ndarray  # (n, 4): open jobs by priority P1..P4
    capacity: np.ndarray
    minutes_today: np.ndarray
    device_no: str | None = None
    fixed_device: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def __post_init__(self) -> None:
        self._rows = {username: i for i, username in enumerate(self.usernames)}

    def __len__(self) -> int:
        return len(self.usernames)

    def index(self, username: str) -> int | None:
        return self._rows.get(username)

    def candidate(self, i: int) -> Candidate:
        lat, lng = float(self.lat[i]), float(self.lng[i])
        known = not np.isnan(lat)
        return Candidate(
            username=self.usernames[i],
            name=self.names[i],
            lat=lat if known else None,
            lng=lng if known else None,
            position_source=self.sources[i],
            skills={code: int(levels[i]) for code, levels in self.skills.items() if levels[i]},
            skill_names=self.skill_names,
            on_shift=bool(self.on_shift[i]),
            on_leave=bool(self.on_leave[i]),
            open_jobs={p: int(n) for p, n in zip(PRIORITIES, self.open_jobs[i], strict=True) if n},
            capacity=int(self.capacity[i]),
            minutes_worked_today=float(self.minutes_today[i]),
            devices_fixed=frozenset({self.device_no}) if self.fixed_device[i] else frozenset(),
        )

    def candidates(self) -> list[Candidate]:
        return [self.candidate(i) for i in range(len(self))]


def stale_minutes() -> int:
    if has_app_context():
        return int(current_app.config.get("POSITION_STALE_MINUTES", DEFAULT_STALE_MINUTES))
    return DEFAULT_STALE_MINUTES


def local_day_start(now: datetime) -> datetime:
    """Midnight of ``now``'s day in Asia/Shanghai, as an aware datetime."""
    return datetime.combine(now.astimezone(LOCAL).date(), time(), LOCAL)


def _members(group_codes: list[str] | None, usernames: list[str] | None):
    """Ids of active engineers (role handler) of the groups (by code or name: lanes use names),
    optionally only the named ones."""
    query = select(_users.c.id).where(
        _users.c.role == "handler",
        _users.c.is_active_account.is_(True),
        _users.c.kind == "person",
    )
    if group_codes is not None:
        in_groups = (
            select(group_member.c.user_id)
            .join(Group.__table__, Group.__table__.c.id == group_member.c.group_id)
            .where(or_(Group.code.in_(group_codes), Group.name.in_(group_codes)))
        )
        query = query.where(_users.c.id.in_(in_groups))
    if usernames is not None:
        query = query.where(_users.c.username.in_(usernames))
    return query


def _on_shift_condition(now: datetime):
    """A shift covers ``now`` (local time): a day shift on today's weekday, or a night shift
    (end at or before start) that began today or yesterday."""
    local = now.astimezone(LOCAL)
    weekday, clock = local.weekday(), local.strftime("%H:%M")
    shift = WorkShift.__table__.c
    overnight = shift.end_time <= shift.start_time
    return or_(
        and_(
            shift.weekday == weekday,
            ~overnight,
            shift.start_time <= clock,
            shift.end_time > clock,
        ),
        and_(shift.weekday == weekday, overnight, shift.start_time <= clock),
        and_(shift.weekday == (weekday - 1) % 7, overnight, shift.end_time > clock),
    )


def _minutes_between(db_session: Session, start, end):
    """SQL for the minutes from ``start`` to ``end`` (two timestamps), on either database."""
    if db_session.get_bind().dialect.name == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 1440.0
    return func.extract("epoch", end - start) / 60.0


def load_candidates(
    *,
    db_session: Session,
    now: datetime,
    group_codes: list[str] | None,
    skill_codes: list[str] | None = None,
    device_no: str | None = None,
    usernames: list[str] | None = None,
) -> CandidateTable:
    """Every engineer of ``group_codes`` (or the named ones), as a CandidateTable.

    One query, one row per engineer: the profile, the levels of ``skill_codes`` (None: every
    skill, read separately), whether a shift covers ``now``, leave, open jobs by priority,
    minutes worked today, and whether they fixed ``device_no`` before; the aggregates are
    grouped in SQL so that no timestamps cross into Python. Engineers with no shift defined
    are on shift at any time: the calendar is opt-in.
    """
    members = _members(group_codes, usernames)
    start = local_day_start(now)
    at_now = bindparam("dispatch_now", now, type_=UTCDateTime)
    day_start = bindparam("dispatch_day", start, type_=UTCDateTime)
    fresh_after = bindparam(
        "dispatch_fresh", now - timedelta(minutes=stale_minutes()), type_=UTCDateTime
    )
    shift = WorkShift.__table__.c
    ticket = Ticket.__table__.c
    member_names = select(_users.c.username).where(_users.c.id.in_(members))

    shifts = (
        select(
            shift.user_id, func.max(case((_on_shift_condition(now), 1), else_=0)).label("covered")
        )
        .where(shift.user_id.in_(members))
        .group_by(shift.user_id)
        .subquery()
    )
    away = (
        select(Leave.user_id)
        .where(Leave.user_id.in_(members), Leave.starts_at <= at_now, Leave.ends_at > at_now)
        .distinct()
        .subquery()
    )
    priority = func.coalesce(ticket.priority, "P3")
    busy = (
        select(
            _tasks.c.assignee,
            *(func.sum(case((priority == p, 1), else_=0)).label(p) for p in PRIORITIES),
        )
        .select_from(_tasks.outerjoin(Ticket.__table__, ticket.id == _tasks.c.ticket_id))
        .where(_tasks.c.status == "open", _tasks.c.assignee.in_(member_names))
        .group_by(_tasks.c.assignee)
        .subquery()
    )
    began = case((_tasks.c.created_at > day_start, _tasks.c.created_at), else_=day_start)
    worked = (
        select(
            _tasks.c.completed_by,
            func.sum(_minutes_between(db_session, began, _tasks.c.ended_at)).label("minutes"),
        )
        .where(
            _tasks.c.status == "completed",
            _tasks.c.ended_at >= day_start,
            _tasks.c.completed_by.in_(member_names),
        )
        .group_by(_tasks.c.completed_by)
        .subquery()
    )
    columns = [
        _users.c.id,
        _users.c.username,
        _users.c.display_name,
        _profiles.c.home_lat,
        _profiles.c.home_lng,
        _profiles.c.capacity,
        case((_profiles.c.pos_at >= fresh_after, _profiles.c.pos_lat)),
        case((_profiles.c.pos_at >= fresh_after, _profiles.c.pos_lng)),
        shifts.c.covered,
        away.c.user_id,
        *(busy.c[p] for p in PRIORITIES),
        worked.c.minutes,
    ]
    source = (
        _users.outerjoin(_profiles, _profiles.c.user_id == _users.c.id)
        .outerjoin(shifts, shifts.c.user_id == _users.c.id)
        .outerjoin(away, away.c.user_id == _users.c.id)
        .outerjoin(busy, busy.c.assignee == _users.c.username)
        .outerjoin(worked, worked.c.completed_by == _users.c.username)
    )
    levels = list(skill_codes or ())
    skill_ids = dict(
        db_session.execute(select(Skill.code, Skill.id).where(Skill.code.in_(levels))).all()
    )
    for code in levels:
        held = UserSkill.__table__.alias(f"skill_{len(columns)}")
        source = source.outerjoin(
            held, and_(held.c.user_id == _users.c.id, held.c.skill_id == skill_ids.get(code, -1))
        )
        columns.append(held.c.level)
    if device_no:
        fixed = (
            select(_tasks.c.completed_by)
            .join(Ticket.__table__, ticket.id == _tasks.c.ticket_id)
            .where(ticket.device_no == device_no, _tasks.c.status == "completed")
            .distinct()
            .subquery()
        )
        source = source.outerjoin(fixed, fixed.c.completed_by == _users.c.username)
        columns.append(fixed.c.completed_by)
    rows = db_session.execute(
        select(*columns).select_from(source).where(_users.c.id.in_(members))
    ).all()
    rows.sort(key=lambda row: row[1])
    n = len(rows)
    cols = list(zip(*rows, strict=True)) if rows else [()] * len(columns)

    def floats(k: int) -> np.ndarray:
        return np.array(cols[k], dtype=float) if n else np.zeros(0)

    def counts(k: int) -> np.ndarray:
        return np.nan_to_num(floats(k)).astype(np.int64)

    ids, usernames_found = list(cols[0]), list(cols[1])
    lat, lng = floats(6), floats(7)
    sources = ["live" if not np.isnan(x) else "none" for x in lat]
    checkin_position(db_session, members, now, ids, lat, lng, sources)
    home_lat, home_lng = floats(3), floats(4)
    for i in np.flatnonzero(np.isnan(lat) & ~np.isnan(home_lat)):
        lat[i], lng[i], sources[i] = home_lat[i], home_lng[i], "home"
    capacity = floats(5)
    covered = floats(8)
    skills = {code: counts(15 + k) for k, code in enumerate(levels)}
    if skill_codes is None:
        skills = _all_skills(db_session, members, ids)
    skill_names = dict(
        db_session.execute(select(Skill.code, Skill.name).where(Skill.code.in_(list(skills)))).all()
    )
    return CandidateTable(
        user_ids=ids,
        usernames=usernames_found,
        names=list(cols[2]),
        lat=lat,
        lng=lng,
        sources=sources,
        skills=skills,
        skill_names=skill_names,
        # NaN: no shift defined, so available at any time
        on_shift=np.isnan(covered) | (covered > 0),
        on_leave=np.array([user_id is not None for user_id in cols[9]], dtype=bool),
        open_jobs=np.stack([counts(10 + k) for k in range(len(PRIORITIES))], axis=1)
        if n
        else np.zeros((0, len(PRIORITIES)), dtype=np.int64),
        capacity=np.where(np.isnan(capacity), DEFAULT_CAPACITY, capacity).astype(np.int64),
        minutes_today=np.nan_to_num(floats(14)),
        device_no=device_no,
        fixed_device=np.array([name is not None for name in cols[-1]], dtype=bool)
        if device_no
        else np.zeros(n, dtype=bool),
    )


def checkin_position(db_session: Session, members, now, ids, lat, lng, sources) -> None:
    """Today's latest check-in for the engineers without a live position; an older one says
    less about where they are than their home base."""
    missing = {user_id: i for i, user_id in enumerate(ids) if sources[i] == "none"}
    if not missing:
        return
    checkins = db_session.execute(
        select(CheckIn.user_id, CheckIn.lat, CheckIn.lng)
        .where(
            CheckIn.at >= local_day_start(now),
            CheckIn.at <= now,
            CheckIn.user_id.in_(members),
            CheckIn.lat.is_not(None),
            CheckIn.lng.is_not(None),
        )
        .order_by(CheckIn.at, CheckIn.id)
    ).all()
    for user_id, clat, clng in checkins:
        i = missing.get(user_id)
        if i is not None:
            lat[i], lng[i], sources[i] = clat, clng, "checkin"


def _all_skills(db_session: Session, members, ids: list[int]) -> dict[str, np.ndarray]:
    at = {user_id: i for i, user_id in enumerate(ids)}
    skills: dict[str, np.ndarray] = {}
    for user_id, code, level in db_session.execute(
        select(UserSkill.user_id, Skill.code, UserSkill.level)
        .join(Skill, Skill.id == UserSkill.skill_id)
        .where(UserSkill.user_id.in_(members))
    ):
        skills.setdefault(code, np.zeros(len(ids), dtype=np.int64))[at[user_id]] = level
    return skills


def devices_fixed(
    db_session: Session, usernames: list[str], device_nos: list[str]
) -> dict[str, frozenset[str]]:
    """Which of ``device_nos`` each engineer completed work on before (for batches, whose
    jobs concern several devices)."""
    if not usernames or not device_nos:
        return {}
    ticket = Ticket.__table__.c
    found: dict[str, set[str]] = {}
    for username, device in db_session.execute(
        select(_tasks.c.completed_by, ticket.device_no)
        .join(Ticket.__table__, ticket.id == _tasks.c.ticket_id)
        .where(
            ticket.device_no.in_(device_nos),
            _tasks.c.status == "completed",
            _tasks.c.completed_by.in_(usernames),
        )
        .distinct()
    ):
        found.setdefault(username, set()).add(device)
    return {username: frozenset(devices) for username, devices in found.items()}


def position_of(*, db_session: Session, user: User, now: datetime) -> Position | None:
    """Where dispatch takes ``user`` to be: live if recent, else today's last check-in, else
    the home base; None when nothing is known."""
    profile = db_session.get(EngineerProfile, user.id)
    fresh_after = now - timedelta(minutes=stale_minutes())
    if (
        profile is not None
        and profile.pos_at is not None
        and profile.pos_lat is not None
        and profile.pos_lng is not None
        and profile.pos_at >= fresh_after
    ):
        return Position(profile.pos_lat, profile.pos_lng, "live", profile.pos_at)
    checkin = db_session.execute(
        select(CheckIn.lat, CheckIn.lng, CheckIn.at)
        .where(
            CheckIn.user_id == user.id,
            CheckIn.at >= local_day_start(now),
            CheckIn.at <= now,
            CheckIn.lat.is_not(None),
            CheckIn.lng.is_not(None),
        )
        .order_by(CheckIn.at.desc(), CheckIn.id.desc())
        .limit(1)
    ).first()
    if checkin is not None:
        return Position(checkin.lat, checkin.lng, "checkin", checkin.at)
    if profile is not None and profile.home_lat is not None and profile.home_lng is not None:
        return Position(profile.home_lat, profile.home_lng, "home", None)
    return None
