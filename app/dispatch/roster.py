"""The roster: a snapshot of every engineer dispatch may choose from, kept in the process, so
that a decision among thousands of engineers does not read thousands of rows.

What changes rarely (who is an engineer, groups, skills, home base, capacity, shifts, leave) is
loaded again whenever the token of ``dispatch_roster`` differs from the one it was loaded at:
every flush that changes those tables writes a new token in its own transaction (``watch``;
bulk writes call ``changed``). What changes all day is brought up to date by reading only what
is new: the tasks of the instances with new process events (open jobs, minutes worked today),
new check-ins (both by id, asking again for ids skipped in the last OVERLAP), live positions
reported since the last look (by time, with OVERLAP), and everything again every FULL_EVERY.
The open jobs of the engineer a decision chooses are counted exactly (``verify``).

A look gives the same CandidateTable people.load_candidates reads from the tables (tests compare
the two after every kind of change). A snapshot belongs to one database bind: the engine in
production, the test's connection in tests. docs/architecture.md, "Dispatch", says what may be
stale and for how long.
"""

from __future__ import annotations

import threading
import uuid
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import and_, bindparam, event, func, inspect, or_, select, update
from sqlalchemy.orm import Session, scoped_session

from app.auth.models import Group, Skill, User, UserSkill, group_member
from app.dispatch.models import (
    DEFAULT_CAPACITY,
    EngineerProfile,
    GroupDispatchConfig,
    Leave,
    RosterVersion,
    WorkShift,
)
from app.dispatch.people import (
    LOCAL,
    PRIORITIES,
    USERS,
    CandidateTable,
    fixed_by,
    local_day_start,
    members_of,
    open_jobs_by_name,
    stale_minutes,
)
from app.engine.models import HumanTask, ProcessEvent
from app.site.models import CheckIn
from app.tickets.models import Ticket
from app.timeutil import UTCDateTime

OVERLAP = timedelta(seconds=5)
_SOURCE_NAMES = np.array(["none", "live", "checkin", "home"], dtype=object)
MAX_GAPS = 10_000
# Positions and check-ins say where engineers are, already minutes old by nature (phones
# report every 2 minutes): decisions within 10 s of each other share one look at them, so a
# position another process wrote is used within 10 s (one this process wrote, at once). At a
# second, the look (two statements) fell on one decision in 70 at full speed: on the p99.
PLACES_EVERY = timedelta(seconds=10)
FULL_EVERY = timedelta(minutes=5)
_POSITION_FIELDS = {"pos_lat", "pos_lng", "pos_accuracy_m", "pos_at"}
_USER_FIELDS = {"username", "display_name", "role", "is_active_account", "kind", "groups", "skills"}
_tasks = HumanTask.__table__
_tickets = Ticket.__table__


def changed(db_session: Session) -> None:
    """Mark the roster changed in this transaction (for writes the flush hook cannot see:
    bulk deletes and inserts)."""
    db_session.execute(
        update(RosterVersion).where(RosterVersion.id == 1).values(token=uuid.uuid4().hex)
    )
    snapshot = _snapshots.get(db_session.get_bind())
    if snapshot is not None:
        # Written in this transaction: group_configs may no longer answer from the snapshot.
        snapshot.checked_in = None


def _touches_roster(session: Session) -> bool:
    for obj in (*session.new, *session.deleted):
        if isinstance(obj, User | Group | UserSkill | EngineerProfile | WorkShift | Leave):
            return True
        if isinstance(obj, GroupDispatchConfig):
            return True
    for obj in session.dirty:
        if isinstance(obj, Group | UserSkill | WorkShift | Leave | GroupDispatchConfig):
            return True
        if isinstance(obj, User | EngineerProfile):
            watched = _USER_FIELDS if isinstance(obj, User) else None
            state = inspect(obj)
            for attr in state.attrs:
                if not attr.history.has_changes():
                    continue
                if watched is not None and attr.key in watched:
                    return True
                if watched is None and attr.key not in _POSITION_FIELDS:
                    return True
    return False


def _before_flush(session: Session, _context, _instances) -> None:
    if _touches_places(session):
        # Written here: this process's next look reads them, whatever PLACES_EVERY says.
        snapshot = _snapshots.get(session.get_bind())
        if snapshot is not None:
            snapshot.places_stale = True
    if _touches_roster(session):
        changed(session)


def _touches_places(session: Session) -> bool:
    if any(isinstance(obj, CheckIn) for obj in session.new):
        return True
    return any(
        isinstance(obj, EngineerProfile)
        and any(inspect(obj).attrs[name].history.has_changes() for name in _POSITION_FIELDS)
        for obj in session.dirty
    )


def watch() -> None:
    """Change the roster token in every flush that changes what the roster holds, in every
    session of the process (called by the app factory)."""
    if not event.contains(Session, "before_flush", _before_flush):
        event.listen(Session, "before_flush", _before_flush)


def _seconds(value: datetime | None) -> float:
    return np.nan if value is None else value.timestamp()


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


@dataclass
class Watermark:
    """Rows of a table with a growing id, each read once: the ids above the last one seen,
    and for OVERLAP the ids skipped below it (a transaction that took them may commit late;
    one rolled back never does)."""

    last: int = 0
    gaps: dict[int, datetime] = field(default_factory=dict)

    def start(self, last: int | None) -> None:
        self.last, self.gaps = last or 0, {}

    def condition(self, column):
        """Rows of ``column`` to read: those of ``params``, with or without the gaps."""
        if self.gaps:
            return or_(column > bindparam("last"), column.in_(bindparam("gaps", expanding=True)))
        return column > bindparam("last")

    def params(self) -> dict:
        return {"last": self.last, "gaps": sorted(self.gaps)} if self.gaps else {"last": self.last}

    def saw(self, ids: list[int], now: datetime) -> None:
        found = set(ids)
        for found_id in found:
            self.gaps.pop(found_id, None)
        top = max(found, default=self.last)
        if self.last < top <= self.last + MAX_GAPS:
            for skipped in range(self.last + 1, top):
                if skipped not in found:
                    self.gaps[skipped] = now
        self.last = max(self.last, top)
        self.gaps = {gap: at for gap, at in self.gaps.items() if now - at < OVERLAP}


@dataclass(frozen=True)
class GroupConfig:
    """A group's dispatch config as the snapshot keeps it (GroupDispatchConfig's values)."""

    mode: str
    weights: dict
    pool_wait_minutes: int


@dataclass
class Roster:
    token: str
    user_ids: np.ndarray  # of int, sorted by username like every array here
    usernames: np.ndarray  # of str
    names: np.ndarray  # of str
    by_id: dict[int, int]
    by_name: dict[str, int]
    groups: dict[str, np.ndarray]  # group code and group name -> member mask
    skills: dict[str, np.ndarray]  # skill code -> level per engineer
    skill_names: dict[str, str]
    home_lat: np.ndarray
    home_lng: np.ndarray
    capacity: np.ndarray
    staffed: np.ndarray  # has any shift (without one: on shift at any time)
    shifts: np.ndarray  # (k, 4): row, weekday, start minute, end minute
    leave: np.ndarray  # (k, 3): row, start, end (epoch seconds)
    # Every group's dispatch config: (code, name, config), by code.
    configs: list[tuple[str, str, GroupConfig]] = field(default_factory=list)
    # The transaction whose token matched this snapshot last (see group_configs).
    checked_in: weakref.ref | None = None
    # What changes all day, brought up to date by Roster.refresh.
    pos: np.ndarray = field(init=False)  # (n, 3): lat, lng, at
    checkin: np.ndarray = field(init=False)  # (n, 4): lat, lng, at, id of today's latest
    worked: dict[str, tuple[int, float]] = field(init=False)  # task id -> (row, minutes)
    worked_minutes: np.ndarray = field(init=False)
    open_tasks: dict[str, tuple[int, int]] = field(init=False)  # task id -> (row, priority)
    open_jobs: np.ndarray = field(init=False)  # (n, len(PRIORITIES)) open tasks by priority
    events: Watermark = field(init=False)
    checkins: Watermark = field(init=False)
    day: datetime | None = None
    seen_until: datetime | None = None
    places_at: datetime | None = None  # positions and check-ins read up to
    places_stale: bool = False  # this process wrote one since
    full_at: datetime | None = None
    # Derived from what changes rarely, kept for the snapshot's life (see _members, _on_shift).
    members: dict = field(default_factory=dict)
    shift_minute: tuple | None = None

    def __post_init__(self) -> None:
        self._reset()

    def __len__(self) -> int:
        return len(self.usernames)

    def _reset(self) -> None:
        n = len(self)
        self.pos = np.full((n, 3), np.nan)
        self.checkin = np.full((n, 4), np.nan)
        self.worked = {}
        self.worked_minutes = np.zeros(n)
        self.open_tasks = {}
        self.open_jobs = np.zeros((n, len(PRIORITIES)), dtype=np.int64)
        self.events = Watermark()
        self.checkins = Watermark()

    # ------------------------------------------------------------ what changes all day

    def refresh(self, db_session: Session, now: datetime, events: Changes | None = None) -> None:
        """Read what changed since the last look; everything when the day turned, the clock
        went back (tests travel in time) or FULL_EVERY passed. ``events``: the new process
        events and the tasks of their instances, when the caller read them already."""
        day = local_day_start(now)
        connection = db_session.connection()
        if (
            self.seen_until is None
            or day != self.day
            or now < self.seen_until
            or now - self.full_at >= FULL_EVERY
        ):
            self._reset()
            self.day, self.full_at = day, now
            self._read_all(connection, now)
            self.places_at = now
        else:
            if self.places_stale or not timedelta(0) <= now - self.places_at < PLACES_EVERY:
                self._positions(connection, now, self.places_at - OVERLAP)
                self._new_checkins(connection, now)
                self.places_at, self.places_stale = now, False
            self._new_events(connection, now, events)
        self.seen_until = now

    def reload_open(self, db_session: Session) -> None:
        """Read every open task again (a decision found a count the events did not bring)."""
        self.open_tasks = {}
        self.open_jobs[:] = 0
        self._tasks(db_session.connection())

    def _read_all(self, connection, now: datetime) -> None:
        # The watermarks first: what is written meanwhile is read again by the next look.
        self.events.start(connection.scalar(select(func.max(ProcessEvent.id))))
        self.checkins.start(connection.scalar(select(func.max(CheckIn.id))))
        self._positions(connection, now, None)
        checkin = CheckIn.__table__.c
        self._take_checkins(connection, checkin.at >= self.day)
        self._tasks(connection)

    def _positions(self, connection, now: datetime, since: datetime | None) -> None:
        """Live positions: all still fresh, or those reported since ``since`` (a time, as a
        profile keeps only its latest; re-reading a few seconds costs a few rows)."""
        profile = EngineerProfile.__table__.c
        query = select(profile.user_id, profile.pos_lat, profile.pos_lng, profile.pos_at).where(
            profile.pos_lat.is_not(None), profile.pos_lng.is_not(None)
        )
        if since is None:
            # Only positions still fresh now can ever be used by this snapshot.
            query = query.where(profile.pos_at >= now - timedelta(minutes=stale_minutes()))
        else:
            query = query.where(profile.pos_at > since)
        for user_id, lat, lng, at in connection.execute(query):
            i = self.by_id.get(user_id)
            if i is not None:
                self.pos[i] = (lat, lng, at.timestamp())

    def _new_checkins(self, connection, now: datetime) -> None:
        condition = self.checkins.condition(CheckIn.__table__.c.id)
        seen = self._take_checkins(connection, condition, self.checkins.params())
        self.checkins.saw(seen, now)

    def _take_checkins(self, connection, condition, params: dict | None = None) -> list[int]:
        checkin = CheckIn.__table__.c
        seen = []
        for user_id, lat, lng, at, checkin_id in connection.execute(
            select(checkin.user_id, checkin.lat, checkin.lng, checkin.at, checkin.id).where(
                condition, checkin.lat.is_not(None), checkin.lng.is_not(None)
            ),
            params or {},
        ):
            seen.append(checkin_id)
            i = self.by_id.get(user_id)
            if i is None or at < self.day:
                continue
            mine, stamp = self.checkin[i], at.timestamp()
            if np.isnan(mine[2]) or (stamp, checkin_id) >= (mine[2], mine[3]):
                self.checkin[i] = (lat, lng, stamp, checkin_id)
        return seen

    def _new_events(self, connection, now: datetime, found: Changes | None) -> None:
        """Every change of a task (opened, given, taken, finished, cancelled) is a step or an
        assignment that writes a process event on its instance: the tasks of the instances
        with new events are read again."""
        if found is None:
            event = ProcessEvent.__table__.c
            rows = connection.execute(
                select(event.id, event.instance_id).where(self.events.condition(event.id)),
                self.events.params(),
            ).all()
            found = Changes([row[0] for row in rows], None)
            if rows:
                instances = sorted({row[1] for row in rows})
                found.tasks = connection.execute(_TASKS_OF, {"instances": instances}).all()
        self.events.saw(found.event_ids, now)
        if found.tasks:
            self._take_tasks(found.tasks)

    def _tasks(self, connection) -> None:
        """Open tasks by holder and priority, and minutes of work finished today, of every
        task."""
        self._take_tasks(connection.execute(_ALL_TASKS, {"day": self.day}))

    def _take_tasks(self, found) -> None:
        """Rows of _tasks_query, each a task's latest state (a task given twice is counted
        once)."""
        for task_id, who, status, level, done_by, created, ended in found:
            held = self.open_tasks.pop(task_id, None)
            if held is not None:
                self.open_jobs[held] -= 1
            i = self.by_name.get(who)
            if status == "open" and i is not None and level in PRIORITIES:
                held = (i, PRIORITIES.index(level))
                self.open_tasks[task_id] = held
                self.open_jobs[held] += 1
            doer = self.by_name.get(done_by)
            counted = task_id in self.worked
            if doer is not None and ended is not None and ended >= self.day and not counted:
                began = created if created > self.day else self.day
                minutes = (ended - began).total_seconds() / 60.0
                self.worked[task_id] = (doer, minutes)
                self.worked_minutes[doer] += minutes

    # ------------------------------------------------------------ one decision's look

    def table(
        self,
        *,
        now: datetime,
        group_codes: list[str] | None,
        skill_codes: list[str] | None,
        device_no: str | None,
        fixed: set[str],
    ) -> CandidateTable:
        n = len(self)
        rows, user_ids, usernames, names = self._members(group_codes)
        lat, lng, sources = self._where(now, rows)
        codes = list(self.skills) if skill_codes is None else list(skill_codes)
        skills = {}
        for code in codes:
            levels = self.skills.get(code)
            skills[code] = levels[rows] if levels is not None else np.zeros(len(rows), np.int64)
        if skill_codes is None:
            skills = {code: levels for code, levels in skills.items() if levels.any()}
        familiar = np.zeros(n, dtype=bool)
        familiar[[self.by_name[name] for name in fixed if name in self.by_name]] = True
        return CandidateTable(
            user_ids=user_ids,
            usernames=usernames,
            names=names,
            lat=lat,
            lng=lng,
            sources=sources,
            skills=skills,
            skill_names={
                code: self.skill_names[code] for code in skills if code in self.skill_names
            },
            on_shift=self._on_shift(now)[rows],
            on_leave=self._on_leave(now)[rows],
            open_jobs=self.open_jobs.take(rows, axis=0),
            capacity=self.capacity[rows],
            minutes_today=self.worked_minutes[rows],
            device_no=device_no,
            fixed_device=familiar[rows],
        )

    def _members(self, group_codes: list[str] | None) -> tuple[np.ndarray, list, list, list]:
        """Rows of the members of ``group_codes`` (everyone: None), with their user ids,
        usernames and names as lists; kept for the snapshot's life (groups change its token).
        The lists are shared by every table made of them: nobody changes a table's lists."""
        key = None if group_codes is None else tuple(sorted(group_codes))
        found = self.members.get(key)
        if found is None:
            if group_codes is None:
                rows = np.arange(len(self))
            else:
                mask = np.zeros(len(self), dtype=bool)
                for code in group_codes:
                    held = self.groups.get(code)
                    if held is not None:
                        mask |= held
                rows = np.flatnonzero(mask)
            found = (
                rows,
                self.user_ids[rows].tolist(),
                self.usernames[rows].tolist(),
                self.names[rows].tolist(),
            )
            if len(self.members) >= 256:
                self.members.clear()
            self.members[key] = found
        return found

    def _where(self, now: datetime, rows: np.ndarray):
        stamp = now.timestamp()
        # take(): NumPy's fancy indexing of a 2-D array by rows costs four times as much.
        pos, checkin = self.pos.take(rows, axis=0), self.checkin.take(rows, axis=0)
        live = pos[:, 2] >= stamp - stale_minutes() * 60.0
        checked = ~live & (checkin[:, 2] <= stamp)
        home_lat, home_lng = self.home_lat[rows], self.home_lng[rows]
        home = ~live & ~checked & ~np.isnan(home_lat) & ~np.isnan(home_lng)
        lat = np.where(live, pos[:, 0], np.where(checked, checkin[:, 0], _home(home, home_lat)))
        lng = np.where(live, pos[:, 1], np.where(checked, checkin[:, 1], _home(home, home_lng)))
        source = live * 1 + checked * 2 + home * 3
        return lat, lng, _SOURCE_NAMES.take(source)

    def _on_shift(self, now: datetime) -> np.ndarray:
        """Who is on shift at ``now`` (shifts are whole minutes: kept for the minute)."""
        local = now.astimezone(LOCAL)
        weekday, clock = local.weekday(), local.hour * 60 + local.minute
        if self.shift_minute is not None and self.shift_minute[0] == (weekday, clock):
            return self.shift_minute[1]
        on = self._shifts_at(weekday, clock)
        self.shift_minute = ((weekday, clock), on)
        return on

    def _shifts_at(self, weekday: int, clock: int) -> np.ndarray:
        row, day, start, end = (self.shifts[:, k] for k in range(4))
        overnight = end <= start
        covers = (
            ((day == weekday) & ~overnight & (start <= clock) & (end > clock))
            | ((day == weekday) & overnight & (start <= clock))
            | ((day == (weekday - 1) % 7) & overnight & (end > clock))
        )
        on = ~self.staffed
        on[row[covers]] = True
        return on

    def _on_leave(self, now: datetime) -> np.ndarray:
        stamp = now.timestamp()
        away = np.zeros(len(self), dtype=bool)
        row, start, end = self.leave[:, 0], self.leave[:, 1], self.leave[:, 2]
        away[row[(start <= stamp) & (end > stamp)].astype(np.int64)] = True
        return away


def _home(home: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.where(home, values, np.nan)


def _load(db_session: Session, token: str, now: datetime) -> Roster:
    """Every active engineer with what changes rarely."""
    connection = db_session.connection()
    rows = sorted(
        connection.execute(
            select(USERS.c.id, USERS.c.username, USERS.c.display_name).where(
                USERS.c.id.in_(members_of(None, None))
            )
        ).all(),
        key=lambda row: row[1],
    )
    n = len(rows)
    user_ids = [row[0] for row in rows]
    by_id = {user_id: i for i, user_id in enumerate(user_ids)}
    groups: dict[str, np.ndarray] = {}
    for user_id, code, name in connection.execute(
        select(group_member.c.user_id, Group.code, Group.name).join(
            Group.__table__, Group.__table__.c.id == group_member.c.group_id
        )
    ):
        i = by_id.get(user_id)
        if i is None:
            continue
        for key in {code, name}:
            groups.setdefault(key, np.zeros(n, dtype=bool))[i] = True
    skills: dict[str, np.ndarray] = {}
    for user_id, code, level in connection.execute(
        select(UserSkill.user_id, Skill.code, UserSkill.level).join(
            Skill, Skill.id == UserSkill.skill_id
        )
    ):
        i = by_id.get(user_id)
        if i is not None:
            skills.setdefault(code, np.zeros(n, dtype=np.int64))[i] = level
    home_lat, home_lng = np.full(n, np.nan), np.full(n, np.nan)
    capacity = np.full(n, DEFAULT_CAPACITY, dtype=np.int64)
    profile = EngineerProfile.__table__.c
    for user_id, lat, lng, cap in connection.execute(
        select(profile.user_id, profile.home_lat, profile.home_lng, profile.capacity)
    ):
        i = by_id.get(user_id)
        if i is not None:
            home_lat[i] = np.nan if lat is None else lat
            home_lng[i] = np.nan if lng is None else lng
            capacity[i] = DEFAULT_CAPACITY if cap is None else cap
    shift = WorkShift.__table__.c
    shifts = [
        (by_id[user_id], weekday, _minutes(start), _minutes(end))
        for user_id, weekday, start, end in connection.execute(
            select(shift.user_id, shift.weekday, shift.start_time, shift.end_time)
        )
        if user_id in by_id
    ]
    staffed = np.zeros(n, dtype=bool)
    shift_array = np.array(shifts, dtype=np.int64).reshape(len(shifts), 4)
    staffed[shift_array[:, 0]] = True
    leave_table = Leave.__table__.c
    leave = [
        (by_id[user_id], _seconds(starts), _seconds(ends))
        for user_id, starts, ends in connection.execute(
            # Leave over before now is of no use to a snapshot that only looks later.
            select(leave_table.user_id, leave_table.starts_at, leave_table.ends_at).where(
                leave_table.ends_at > now - FULL_EVERY
            )
        )
        if user_id in by_id
    ]
    names = dict(connection.execute(select(Skill.code, Skill.name)).all())
    config = GroupDispatchConfig.__table__.c
    configs = [
        (code, name, GroupConfig(mode, dict(weights or {}), wait))
        for code, name, mode, weights, wait in connection.execute(
            select(Group.code, Group.name, config.mode, config.weights, config.pool_wait_minutes)
            .join(Group.__table__, Group.__table__.c.id == config.group_id)
            .order_by(Group.code)
        )
    ]
    return Roster(
        token=token,
        user_ids=np.array(user_ids, dtype=np.int64),
        usernames=np.array([row[1] for row in rows], dtype=object),
        names=np.array([row[2] for row in rows], dtype=object),
        by_id=by_id,
        by_name={row[1]: i for i, row in enumerate(rows)},
        groups=groups,
        skills=skills,
        skill_names=names,
        home_lat=home_lat,
        home_lng=home_lng,
        capacity=capacity,
        staffed=staffed,
        shifts=shift_array,
        leave=np.array(leave, dtype=float).reshape(len(leave), 3),
        configs=configs,
    )


_snapshots: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def candidate_table(
    *,
    db_session: Session,
    now: datetime,
    group_codes: list[str] | None,
    skill_codes: list[str] | None = None,
    device_no: str | None = None,
    reload_open: bool = False,
) -> CandidateTable:
    """people.load_candidates, from the roster snapshot. ``reload_open``: read every open
    task again first (see verify)."""
    fixed = fixed_by(db_session.connection(), device_no)
    bind = db_session.get_bind()
    with _lock:
        roster = _snapshots.get(bind)
        # The token, the new process events and their tasks in one statement.
        token, events = _token_and_events(db_session, roster.events if roster else None)
        went_back = roster is not None and roster.seen_until is not None and now < roster.seen_until
        if roster is None or roster.token != token or went_back:
            roster = _load(db_session, token, now)
            _snapshots[bind] = roster
            events = None
        roster.checked_in = weakref.ref(_transaction(db_session))
        roster.refresh(db_session, now, events)
        if reload_open:
            roster.reload_open(db_session)
        return roster.table(
            now=now,
            group_codes=group_codes,
            skill_codes=skill_codes,
            device_no=device_no,
            fixed=fixed,
        )


def group_configs(db_session: Session, names: list[str]) -> list[tuple[str, GroupConfig]] | None:
    """(group code, config) of the named groups (by code or name) that have one, by code, as
    work.group_configs reads them, from the snapshot when a look in this same transaction found
    its token current; None when none did (the caller reads the table)."""
    roster = _snapshots.get(db_session.get_bind())
    transaction = _transaction(db_session)
    if roster is None or transaction is None or roster.checked_in is None:
        return None
    if roster.checked_in() is not transaction:
        return None
    wanted = set(names)
    return [(code, cfg) for code, name, cfg in roster.configs if code in wanted or name in wanted]


def _transaction(db_session: Session | scoped_session):
    session = db_session() if isinstance(db_session, scoped_session) else db_session
    return session.get_transaction()


@dataclass
class Changes:
    """New process events (ids), and the tasks of their instances (rows of _tasks_query;
    None: not read yet)."""

    event_ids: list[int]
    tasks: list | None


def _token_and_events(db_session: Session, events: Watermark | None) -> tuple[str, Changes]:
    """The roster token, the process events above ``events`` (none without one) and the
    tasks of their instances, in one statement: one round trip, one snapshot."""
    if events is None:
        return db_session.scalar(_TOKEN), Changes([], [])
    query = _TOKEN_AND_EVENTS_GAPS if events.gaps else _TOKEN_AND_EVENTS
    rows = db_session.execute(query, events.params()).all()
    event_ids = sorted({row[1] for row in rows if row[1] is not None})
    # An instance with several new events brings its tasks once per event.
    tasks = {row[2]: row[2:] for row in rows if row[2] is not None}
    return rows[0][0], Changes(event_ids, list(tasks.values()))


def _token_and_events_query(with_gaps: bool):
    event = ProcessEvent.__table__
    newer = event.c.id > bindparam("last")
    if with_gaps:
        newer = or_(newer, event.c.id.in_(bindparam("gaps", expanding=True)))
    return (
        select(RosterVersion.token, event.c.id, *_task_columns())
        .select_from(RosterVersion)
        .outerjoin(event, newer)
        .outerjoin(_tasks, _tasks.c.instance_id == event.c.instance_id)
        .outerjoin(_tickets, _tickets.c.id == _tasks.c.ticket_id)
        .where(RosterVersion.id == 1)
    )


def _task_columns() -> tuple:
    return (
        _tasks.c.id,
        _tasks.c.assignee,
        _tasks.c.status,
        func.coalesce(_tickets.c.priority, "P3"),
        _tasks.c.completed_by,
        _tasks.c.created_at,
        _tasks.c.ended_at,
    )


def _tasks_query():
    return select(*_task_columns()).select_from(
        _tasks.outerjoin(_tickets, _tickets.c.id == _tasks.c.ticket_id)
    )


# Statements of every decision, built once (building costs more than running them).
_TOKEN = select(RosterVersion.token).where(RosterVersion.id == 1)
_TOKEN_AND_EVENTS = _token_and_events_query(with_gaps=False)
_TOKEN_AND_EVENTS_GAPS = _token_and_events_query(with_gaps=True)
_TASKS_OF = _tasks_query().where(_tasks.c.instance_id.in_(bindparam("instances", expanding=True)))
_ALL_TASKS = _tasks_query().where(
    or_(
        and_(_tasks.c.status == "open", _tasks.c.assignee.is_not(None)),
        and_(
            _tasks.c.ended_at >= bindparam("day", type_=UTCDateTime),
            _tasks.c.completed_by.is_not(None),
        ),
    )
)


def verify(db_session: Session, table: CandidateTable, usernames: list[str]) -> bool:
    """Whether the open jobs of ``usernames`` (those a decision shows or chooses) in ``table``
    are what the tasks say now. The hard constraints of whoever is chosen are thus checked on
    exact counts, whatever the snapshot missed."""
    exact = open_jobs_by_name(db_session.connection(), usernames=usernames)
    for username in usernames:
        i = table.index(username)
        if i is not None and tuple(table.open_jobs[i]) != tuple(exact.get(username, (0,) * 4)):
            return False
    return True
