"""The people side of dispatch, read from the database in a few set-wise queries: who may be
sent (engineers of the candidate groups), what they can do, whether they work now, how busy
they are, and where they are.

The result is columnar (numpy arrays, one row per engineer), because a decision among
thousands of engineers must cost milliseconds: building one Candidate object per engineer is
left to the few that are shown (app.dispatch.fastrank) or to callers that want them all.
"""

from __future__ import annotations

from bisect import bisect_left
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
USERS = User.__table__
PROFILES = EngineerProfile.__table__
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
    sources: np.ndarray  # of str: live | checkin | home | none
    skills: dict[str, np.ndarray]  # skill code -> level per engineer (0 = none)
    skill_names: dict[str, str]
    on_shift: np.ndarray
    on_leave: np.ndarray
    open_jobs: np.ndarray  # (n, 4): open jobs by priority P1..P4
    capacity: np.ndarray
    minutes_today: np.ndarray
    device_no: str | None = None
    fixed_device: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def __len__(self) -> int:
        return len(self.usernames)

    def index(self, username: str) -> int | None:
        # Rows are sorted by username: a search, not a dict of thousands built per decision.
        i = bisect_left(self.usernames, username)
        return i if i < len(self.usernames) and self.usernames[i] == username else None

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


def members_of(group_codes: list[str] | None, usernames: list[str] | None):
    """Ids of active engineers (role handler) of the groups (by code or name: lanes use names),
    optionally only the named ones."""
    query = select(USERS.c.id).where(
        USERS.c.role == "handler",
        USERS.c.is_active_account.is_(True),
        USERS.c.kind == "person",
    )
    if group_codes is not None:
        in_groups = (
            select(group_member.c.user_id)
            .join(Group.__table__, Group.__table__.c.id == group_member.c.group_id)
            .where(or_(Group.code.in_(group_codes), Group.name.in_(group_codes)))
        )
        query = query.where(USERS.c.id.in_(in_groups))
    if usernames is not None:
        query = query.where(USERS.c.username.in_(usernames))
    return query


def on_shift_condition(now: datetime):
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


def minutes_between(db_session: Session, start, end):
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

    One query reads a row per engineer (profile, fresh live position, the levels of
    ``skill_codes``; None: every skill, read separately); small aggregates grouped in SQL add
    shifts covering ``now``, leave, open jobs by priority, minutes worked today, today's
    check-ins and who fixed ``device_no`` before, merged by row. Measured on SQLite and
    PostgreSQL, this is faster than joining the aggregates into the one query. Engineers with no
    shift defined are on shift at any time: the calendar is opt-in.
    """
    members = members_of(group_codes, usernames)
    fresh_after = bindparam(
        "dispatch_fresh", now - timedelta(minutes=stale_minutes()), type_=UTCDateTime
    )
    columns = [
        USERS.c.id,
        USERS.c.username,
        USERS.c.display_name,
        PROFILES.c.home_lat,
        PROFILES.c.home_lng,
        PROFILES.c.capacity,
        case((PROFILES.c.pos_at >= fresh_after, PROFILES.c.pos_lat)),
        case((PROFILES.c.pos_at >= fresh_after, PROFILES.c.pos_lng)),
    ]
    source = USERS.outerjoin(PROFILES, PROFILES.c.user_id == USERS.c.id)
    levels = list(skill_codes or ())
    skill_ids = dict(
        db_session.execute(select(Skill.code, Skill.id).where(Skill.code.in_(levels))).all()
    )
    for k, code in enumerate(levels):
        held = UserSkill.__table__.alias(f"required_{k}")
        source = source.outerjoin(
            held, and_(held.c.user_id == USERS.c.id, held.c.skill_id == skill_ids.get(code, -1))
        )
        columns.append(held.c.level)
    # Core, not the ORM: thousands of rows of numbers need no ORM row processing.
    connection = db_session.connection()
    rows = connection.execute(
        select(*columns).select_from(source).where(USERS.c.id.in_(members))
    ).all()
    rows.sort(key=lambda row: row[1])
    n = len(rows)
    cols = list(zip(*rows, strict=True)) if rows else [()] * len(columns)

    def floats(k: int) -> np.ndarray:
        return np.array(cols[k], dtype=float) if n else np.zeros(0)

    ids, names = list(cols[0]), list(cols[1])
    by_id = dict(zip(ids, range(n), strict=True))
    by_name = dict(zip(names, range(n), strict=True))
    lat, lng = floats(6), floats(7)
    sources = np.full(n, "none", dtype=object)
    sources[~np.isnan(lat)] = "live"
    if n and (sources == "none").any():
        _checkins(connection, now, by_id, lat, lng, sources)
    home_lat, home_lng = floats(3), floats(4)
    home = np.isnan(lat) & ~np.isnan(home_lat)
    lat[home], lng[home], sources[home] = home_lat[home], home_lng[home], "home"
    capacity = floats(5)
    skills = {code: np.nan_to_num(floats(8 + k)).astype(np.int64) for k, code in enumerate(levels)}
    if skill_codes is None:
        skills = _all_skills(db_session, members, by_id, n)
    skill_names = dict(
        db_session.execute(select(Skill.code, Skill.name).where(Skill.code.in_(list(skills)))).all()
    )
    return CandidateTable(
        user_ids=ids,
        usernames=names,
        names=list(cols[2]),
        lat=lat,
        lng=lng,
        sources=sources,
        skills=skills,
        skill_names=skill_names,
        on_shift=_on_shift(connection, now, by_id, n),
        on_leave=_on_leave(connection, now, by_id, n),
        open_jobs=_open_jobs(connection, by_name, n),
        capacity=np.where(np.isnan(capacity), DEFAULT_CAPACITY, capacity).astype(np.int64),
        minutes_today=_minutes_today(db_session, connection, now, by_name, n),
        device_no=device_no,
        fixed_device=_fixed(connection, device_no, by_name, n),
    )


def _rows_of(found: list, at: dict) -> tuple[np.ndarray, list]:
    """Row numbers of the engineers in ``found`` (first column), and their rows; the others
    (outside the group) are dropped."""
    kept = [(at[row[0]], row) for row in found if row[0] in at]
    return np.array([i for i, _ in kept], dtype=np.int64), [row for _, row in kept]


def _on_shift(connection, now: datetime, by_id: dict, n: int) -> np.ndarray:
    shift = WorkShift.__table__.c
    on = np.ones(n, dtype=bool)
    weekday = now.astimezone(LOCAL).weekday()
    staffed, _ = _rows_of(connection.execute(select(shift.user_id).distinct()).all(), by_id)
    on[staffed] = False
    # Only today's shifts and yesterday's (a night shift runs into today) can cover now.
    covered, _ = _rows_of(
        connection.execute(
            select(shift.user_id)
            .where(shift.weekday.in_((weekday, (weekday - 1) % 7)), on_shift_condition(now))
            .distinct()
        ).all(),
        by_id,
    )
    on[covered] = True
    return on


def _on_leave(connection, now: datetime, by_id: dict, n: int) -> np.ndarray:
    away = np.zeros(n, dtype=bool)
    rows, _ = _rows_of(
        connection.execute(
            select(Leave.user_id).where(Leave.starts_at <= now, Leave.ends_at > now).distinct()
        ).all(),
        by_id,
    )
    away[rows] = True
    return away


def _open_jobs_query():
    ticket = Ticket.__table__.c
    priority = func.coalesce(ticket.priority, "P3")
    return (
        select(
            _tasks.c.assignee,
            *(func.sum(case((priority == p, 1), else_=0)) for p in PRIORITIES),
        )
        .select_from(_tasks.outerjoin(Ticket.__table__, ticket.id == _tasks.c.ticket_id))
        .where(_tasks.c.status == "open", _tasks.c.assignee.is_not(None))
        .group_by(_tasks.c.assignee)
    )


# Built once: a decision runs them every time, and building costs more than running.
_OPEN_JOBS = _open_jobs_query()
_OPEN_JOBS_OF = _OPEN_JOBS.where(_tasks.c.assignee.in_(bindparam("names", expanding=True)))


def open_jobs_by_name(connection, usernames: list[str] | None = None) -> dict[str, tuple]:
    """Open tasks held by each engineer (by username; only ``usernames`` if given), by their
    work order's priority in the order of PRIORITIES (none: as P3)."""
    if usernames is None:
        found = connection.execute(_OPEN_JOBS).all()
    else:
        found = connection.execute(_OPEN_JOBS_OF, {"names": list(usernames)}).all()
    return {row[0]: tuple(row[1:]) for row in found}


def _open_jobs(connection, by_name: dict, n: int) -> np.ndarray:
    jobs = np.zeros((n, len(PRIORITIES)), dtype=np.int64)
    for username, counts in open_jobs_by_name(connection).items():
        i = by_name.get(username)
        if i is not None:
            jobs[i] = counts
    return jobs


def _minutes_today(db_session: Session, connection, now, by_name: dict, n: int) -> np.ndarray:
    """Minutes spent today on tasks finished today, from when each opened (or midnight) to
    its completion. Fairness needs who carried more of the day, not a timesheet."""
    start = bindparam("dispatch_day", local_day_start(now), type_=UTCDateTime)
    began = case((_tasks.c.created_at > start, _tasks.c.created_at), else_=start)
    minutes = minutes_between(db_session, began, _tasks.c.ended_at)
    found = connection.execute(
        select(_tasks.c.completed_by, func.sum(minutes))
        # completed_by is set on completion only; without a status test the ended_at index
        # (today's rows) is used rather than every completed task ever.
        .where(_tasks.c.ended_at >= start, _tasks.c.completed_by.is_not(None))
        .group_by(_tasks.c.completed_by)
    ).all()
    worked = np.zeros(n)
    rows, kept = _rows_of(found, by_name)
    if kept:
        worked[rows] = [float(row[1] or 0) for row in kept]
    return worked


def fixed_by(connection, device_no: str | None) -> set[str]:
    """Usernames of those who completed work on the device before."""
    if not device_no:
        return set()
    ticket = Ticket.__table__.c
    # From the device's tickets (indexed), not from every completed task.
    return set(
        connection.scalars(
            select(_tasks.c.completed_by)
            .select_from(Ticket.__table__)
            .join(_tasks, _tasks.c.ticket_id == ticket.id)
            .where(ticket.device_no == device_no, _tasks.c.completed_by.is_not(None))
            .distinct()
        )
    )


def _fixed(connection, device_no: str | None, by_name: dict, n: int) -> np.ndarray:
    fixed = np.zeros(n, dtype=bool)
    fixed[[by_name[name] for name in fixed_by(connection, device_no) if name in by_name]] = True
    return fixed


def _checkins(connection, now: datetime, by_id: dict, lat, lng, sources) -> None:
    """Today's latest check-in for the engineers without a live position; an older one says
    less about where they are than their home base."""
    found = connection.execute(
        select(CheckIn.user_id, CheckIn.lat, CheckIn.lng)
        .where(
            CheckIn.at >= local_day_start(now),
            CheckIn.at <= now,
            CheckIn.lat.is_not(None),
            CheckIn.lng.is_not(None),
        )
        .order_by(CheckIn.at, CheckIn.id)
    ).all()
    for user_id, clat, clng in found:
        i = by_id.get(user_id)
        if i is not None and sources[i] != "live":
            lat[i], lng[i], sources[i] = clat, clng, "checkin"


def _all_skills(db_session: Session, members, by_id: dict, n: int) -> dict[str, np.ndarray]:
    skills: dict[str, np.ndarray] = {}
    for user_id, code, level in db_session.execute(
        select(UserSkill.user_id, Skill.code, UserSkill.level)
        .join(Skill, Skill.id == UserSkill.skill_id)
        .where(UserSkill.user_id.in_(members))
    ):
        skills.setdefault(code, np.zeros(n, dtype=np.int64))[by_id[user_id]] = level
    return skills


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
