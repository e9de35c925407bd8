"""The synthetic city the dispatch simulator replays: engineers, tickets, one working day.

Drawn once per seed with a numpy Generator; every policy then replays the same world.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from app.dispatch.scoring import StraightLineTravel

CENTRE = (31.2304, 121.4737)  # People's Square, Shanghai
CITY_KM = 30.0
KM_PER_DEGREE_LAT = 111.195
# Business districts where most calls come from: Lujiazui, People's Square, Xujiahui, Zhangjiang,
# Hongqiao; the rest come from anywhere in the city.
HOTSPOTS = ((31.2397, 121.4998), (31.2304, 121.4737), (31.1950, 121.4365), (31.2040, 121.5900),
            (31.1979, 121.3270))  # fmt: skip
HOTSPOT_SHARE, HOTSPOT_KM = 0.6, 1.5

# category = required skill: share of calls, median work minutes (log-normal, sigma 0.5)
CATEGORIES = {
    "pc": (0.22, 20.0),
    "network": (0.20, 25.0),
    "printer": (0.14, 20.0),
    "server": (0.08, 40.0),
    "air_conditioning": (0.14, 35.0),
    "ups": (0.08, 30.0),
    "access_control": (0.14, 25.0),
}
WORK_SIGMA = 0.5
REQUIRED_LEVELS = ((1, 0.30), (2, 0.35), (3, 0.25), (4, 0.10))
# priority: share, SLA response target in minutes (report -> arrival on site)
PRIORITIES = {"P1": (0.10, 120.0), "P2": (0.25, 240.0), "P3": (0.45, 480.0), "P4": (0.20, 1440.0)}
# Teams (engineers take turns) and the level range of each skill; the first two of a team are
# seniors at the top of every range.
TEAMS = (
    {"network": (3, 5), "server": (2, 4), "pc": (2, 3)},
    {"pc": (3, 5), "printer": (3, 5), "server": (1, 3)},
    {"air_conditioning": (3, 5), "ups": (2, 4), "access_control": (2, 5)},
)
SHIFT_STARTS_H = (0.0, 0.5, 1.0, 2.0)
SHIFT_HOURS = 10.0
DAY = 24 * 60.0
# Each level missing makes the work take this much longer (and counts as a mismatch).
MISMATCH_SLOWDOWN_PER_LEVEL = 0.3
TRAVEL = StraightLineTravel(road_factor=1.3, speed_kmh=30.0)


@dataclass(frozen=True)
class Engineer:
    username: str
    home: tuple[float, float]
    skills: dict[str, int]
    shift: tuple[float, float]  # start, end in minutes of each day

    def on_shift(self, t: float) -> bool:
        return self.shift[0] <= t % DAY < self.shift[1]


@dataclass(frozen=True)
class Ticket:
    key: str
    reported: float
    at: tuple[float, float]
    skill: str
    level: int
    priority: str
    work_minutes: float  # for an engineer with the skill at the level

    @property
    def deadline(self) -> float:
        return self.reported + PRIORITIES[self.priority][1]


@dataclass(frozen=True)
class World:
    engineers: tuple[Engineer, ...]
    tickets: tuple[Ticket, ...]


def _offset(centre: tuple[float, float], dy_km: float, dx_km: float) -> tuple[float, float]:
    """The point dy km north and dx km east of centre, kept inside the city square."""
    half = CITY_KM / 2
    lat_deg, lng_deg = KM_PER_DEGREE_LAT, KM_PER_DEGREE_LAT * math.cos(math.radians(CENTRE[0]))
    north = min(max((centre[0] - CENTRE[0]) * lat_deg + dy_km, -half), half)
    east = min(max((centre[1] - CENTRE[1]) * lng_deg + dx_km, -half), half)
    return (CENTRE[0] + north / lat_deg, CENTRE[1] + east / lng_deg)


def _anywhere(rng: np.random.Generator) -> tuple[float, float]:
    dy, dx = rng.uniform(-CITY_KM / 2, CITY_KM / 2, size=2)
    return _offset(CENTRE, float(dy), float(dx))


def make_world(*, engineers: int, tickets: int, hours: float, seed: int) -> World:
    if engineers < len(TEAMS) or tickets < 1 or hours <= 0:
        # With fewer engineers than teams some skill has nobody, and its calls would wait forever.
        raise ValueError(f"need at least {len(TEAMS)} engineers, 1 ticket and some hours")
    rng = np.random.default_rng(seed)
    people: list[Engineer] = []
    seen_in_team = [0] * len(TEAMS)
    for i in range(engineers):
        team = i % len(TEAMS)
        turn = seen_in_team[team]
        seen_in_team[team] += 1
        skills = {
            code: hi if turn < 2 else int(rng.integers(lo, hi + 1))
            for code, (lo, hi) in TEAMS[team].items()
        }
        # Each team's engineers take the shifts in turn, so every team is covered all day.
        start = SHIFT_STARTS_H[turn % len(SHIFT_STARTS_H)] * 60
        people.append(
            Engineer(f"E{i + 1:02d}", _anywhere(rng), skills, (start, start + SHIFT_HOURS * 60))
        )
    # A Poisson process with a known count: arrival times are sorted uniform draws.
    times = np.sort(rng.uniform(0, hours * 60, size=tickets))
    skills = list(CATEGORIES)
    calls: list[Ticket] = []
    for n, t in enumerate(times):
        skill = skills[rng.choice(len(skills), p=[CATEGORIES[s][0] for s in skills])]
        if rng.random() < HOTSPOT_SHARE:
            dy, dx = rng.normal(0, HOTSPOT_KM, size=2)
            at = _offset(HOTSPOTS[rng.integers(len(HOTSPOTS))], float(dy), float(dx))
        else:
            at = _anywhere(rng)
        level = REQUIRED_LEVELS[rng.choice(4, p=[p for _, p in REQUIRED_LEVELS])][0]
        priority = list(PRIORITIES)[rng.choice(4, p=[s for s, _ in PRIORITIES.values()])]
        work = float(rng.lognormal(math.log(CATEGORIES[skill][1]), WORK_SIGMA))
        calls.append(Ticket(f"T{n + 1:04d}", float(t), at, skill, level, priority, work))
    return World(tuple(people), tuple(calls))
