"""Dispatch scoring: which engineers may take a job (hard rules) and how well each fits (cost).

Pure Python, no Flask and no database: the dispatch service, the batch optimiser and the
simulator call the same functions, so what the simulator measures is what production does.
Costs are in "minutes-equivalent" and lower is better.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

PRIORITY_RANK = {"P1": 1, "P2": 2, "P3": 3, "P4": 4}  # 1 = most urgent

# An open P1 weighs as much as four P3s when judging how busy an engineer is.
LOAD_FACTOR = {"P1": 4.0, "P2": 2.0, "P3": 1.0, "P4": 0.5}

# Only a P1 job protects its engineer from being sent elsewhere.
URGENT_RANK = PRIORITY_RANK["P1"]

EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True)
class Reason:
    """Why an engineer is excluded from a job, in both languages."""

    code: str  # "skill" | "off_shift" | "on_leave" | "capacity" | "urgent_job" | "no_position"
    zh: str
    en: str


@dataclass(frozen=True)
class Job:
    key: str  # ticket id as text, or a simulator id
    lat: float | None
    lng: float | None
    priority: str  # P1..P4
    required_skills: dict[str, int]  # skill code -> minimum level
    deadline: datetime | None  # SLA deadline (aware UTC)
    device_no: str | None = None

    def __post_init__(self) -> None:
        if self.priority not in PRIORITY_RANK:
            raise ValueError(f"job {self.key}: priority {self.priority!r} is not one of P1..P4")


@dataclass(frozen=True)
class Candidate:
    username: str
    name: str
    lat: float | None  # current position (live, else last check-in, else home)
    lng: float | None
    position_source: str  # "live" | "checkin" | "home"
    skills: dict[str, int]  # skill code -> level
    skill_names: dict[str, str]  # skill code -> display name (for reasons)
    on_shift: bool
    on_leave: bool
    open_jobs: dict[str, int]  # open jobs by priority, e.g. {"P1": 1, "P3": 2}
    capacity: int
    minutes_worked_today: float  # fairness over the day
    devices_fixed: frozenset[str]  # device numbers this engineer fixed before


@dataclass(frozen=True)
class Weights:
    """Configuration per group; every weight converts its part into minutes-equivalent."""

    travel: float = 1.0  # per minute of travel
    load: float = 15.0  # per open job, weighted by LOAD_FACTOR
    sla_risk: float = 2.0  # per minute the arrival estimate is past (deadline - margin)
    fairness: float = 0.1  # per minute worked today
    familiarity: float = -20.0  # bonus (negative cost) when the engineer fixed this device before
    sla_margin_minutes: float = 15.0  # arriving later than this before the deadline is a risk


class TravelModel(Protocol):
    def minutes(self, from_lat: float, from_lng: float, to_lat: float, to_lng: float) -> float: ...


def haversine_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in kilometres."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lng2 - lng1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True)
class StraightLineTravel:
    """Default travel-time provider: straight line x road factor at a constant speed."""

    road_factor: float = 1.3
    speed_kmh: float = 30.0

    def km(self, from_lat: float, from_lng: float, to_lat: float, to_lng: float) -> float:
        return haversine_km(from_lat, from_lng, to_lat, to_lng) * self.road_factor

    def minutes(self, from_lat: float, from_lng: float, to_lat: float, to_lng: float) -> float:
        return self.km(from_lat, from_lng, to_lat, to_lng) / self.speed_kmh * 60.0


@dataclass(frozen=True)
class Breakdown:
    username: str
    total: float  # lower is better
    parts: dict[str, float]  # travel, load, sla_risk, fairness, familiarity
    travel_minutes: float
    eta: datetime

    def as_dict(self) -> dict:
        return {
            "username": self.username,
            "total": round(self.total, 2),
            "parts": {name: round(value, 2) for name, value in self.parts.items()},
            "travel_minutes": round(self.travel_minutes, 1),
            "eta": self.eta.isoformat(),
        }


@dataclass(frozen=True)
class Ranking:
    ranked: list[Breakdown]  # best first
    excluded: list[tuple[str, Reason]]  # (username, reason)

    def as_dict(self) -> dict:
        return {
            "ranked": [b.as_dict() for b in self.ranked],
            "excluded": [
                {"username": username, "code": r.code, "zh": r.zh, "en": r.en}
                for username, r in self.excluded
            ],
        }


def _most_urgent_open_rank(candidate: Candidate) -> int | None:
    ranks = [PRIORITY_RANK[p] for p, n in candidate.open_jobs.items() if n > 0]
    return min(ranks) if ranks else None


def _skill_reason(candidate: Candidate, job: Job) -> Reason | None:
    missing = [
        (code, level)
        for code, level in sorted(job.required_skills.items())
        if candidate.skills.get(code, 0) < level
    ]
    if not missing:
        return None
    zh_parts, en_parts = [], []
    for code, level in missing:
        name = candidate.skill_names.get(code, code)
        has = candidate.skills.get(code, 0)
        zh_parts.append(f"{name} ≥ {level} 级（现有 {has} 级）")
        en_parts.append(f"{name} ≥ {level} (has {has})")
    return Reason(
        "skill",
        "技能不符: 需要 " + "、".join(zh_parts),
        "skill mismatch: needs " + ", ".join(en_parts),
    )


def exclusion(candidate: Candidate, job: Job) -> Reason | None:
    """The first hard constraint the candidate breaks for this job, or None if eligible."""
    if candidate.on_leave:
        return Reason("on_leave", "正在休假", "on leave")
    if not candidate.on_shift:
        return Reason("off_shift", "不在班次内", "not on shift")
    skill = _skill_reason(candidate, job)
    if skill is not None:
        return skill
    open_total = sum(candidate.open_jobs.values())
    if open_total >= candidate.capacity:
        return Reason(
            "capacity",
            f"已满负荷: {open_total} 个未完成工单，上限 {candidate.capacity}",
            f"at capacity: {open_total} open jobs, limit {candidate.capacity}",
        )
    most_urgent = _most_urgent_open_rank(candidate)
    if (
        most_urgent is not None
        and most_urgent <= URGENT_RANK
        and PRIORITY_RANK[job.priority] > most_urgent
    ):
        return Reason(
            "urgent_job",
            f"正在处理紧急工单 (P{most_urgent})，本单 {job.priority} 不更紧急",
            f"busy on an urgent job (P{most_urgent}); this {job.priority} job is not more urgent",
        )
    if (
        job.lat is not None
        and job.lng is not None
        and (candidate.lat is None or candidate.lng is None)
    ):
        return Reason(
            "no_position",
            "位置未知: 没有实时位置、签到记录或常驻地点",
            "position unknown: no live position, check-in or home base",
        )
    return None


def score(
    candidate: Candidate,
    job: Job,
    *,
    now: datetime,
    weights: Weights,
    travel: TravelModel,
) -> Breakdown:
    """The cost of sending this (eligible) candidate to this job, part by part."""
    if None in (job.lat, job.lng, candidate.lat, candidate.lng):
        # A job without a location costs no travel for anyone: the ranking rests on the rest.
        travel_minutes = 0.0
    else:
        travel_minutes = travel.minutes(candidate.lat, candidate.lng, job.lat, job.lng)
    eta = now + timedelta(minutes=travel_minutes)
    load_units = sum(LOAD_FACTOR[p] * n for p, n in candidate.open_jobs.items())
    late_minutes = 0.0
    if job.deadline is not None:
        latest_safe = job.deadline - timedelta(minutes=weights.sla_margin_minutes)
        late_minutes = max(0.0, (eta - latest_safe).total_seconds() / 60.0)
    familiar = job.device_no is not None and job.device_no in candidate.devices_fixed
    parts = {
        "travel": weights.travel * travel_minutes,
        "load": weights.load * load_units,
        "sla_risk": weights.sla_risk * late_minutes,
        "fairness": weights.fairness * candidate.minutes_worked_today,
        "familiarity": weights.familiarity if familiar else 0.0,
    }
    return Breakdown(
        username=candidate.username,
        total=sum(parts.values()),
        parts=parts,
        travel_minutes=travel_minutes,
        eta=eta,
    )


def rank(
    candidates: Iterable[Candidate],
    job: Job,
    *,
    now: datetime,
    weights: Weights = Weights(),
    travel: TravelModel = StraightLineTravel(),
) -> Ranking:
    """Every eligible candidate scored, best first; every other one with its reason."""
    ranked: list[Breakdown] = []
    excluded: list[tuple[str, Reason]] = []
    for candidate in candidates:
        reason = exclusion(candidate, job)
        if reason is None:
            ranked.append(score(candidate, job, now=now, weights=weights, travel=travel))
        else:
            excluded.append((candidate.username, reason))
    # The username breaks ties so that equal scores always rank the same way.
    ranked.sort(key=lambda b: (b.total, b.username))
    excluded.sort(key=lambda pair: pair[0])
    return Ranking(ranked=ranked, excluded=excluded)
