"""scoring.rank over a CandidateTable, on whole arrays: one decision among thousands of
engineers in a few milliseconds.

The hard constraints and the cost are those of app.dispatch.scoring, written once more with
numpy (tests hold the two to the same answers). The breakdowns that are shown or stored and
the reasons of excluded engineers still come from scoring.score and scoring.exclusion, so
their numbers and words are exactly the single-decision ones.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from app.dispatch.people import PRIORITIES, CandidateTable
from app.dispatch.scoring import (
    EARTH_RADIUS_KM,
    LOAD_FACTOR,
    PRIORITY_RANK,
    URGENT_RANK,
    Job,
    Ranking,
    StraightLineTravel,
    TravelModel,
    Weights,
    exclusion,
    rank,
    score,
)

# How many of each list a decision keeps (pages show the chosen and five runner-ups): a
# larger group keeps its best and a sample of the excluded, always with the chosen engineer
# and the counts of every reason. Each kept row costs a Breakdown or a Reason and JSON.
KEEP_RANKED = 20
KEEP_EXCLUDED = 20

# Reason codes in the order scoring.exclusion checks them.
_CODES = ("on_leave", "off_shift", "skill", "capacity", "urgent_job", "no_position")
_LOAD = np.array([LOAD_FACTOR[p] for p in PRIORITIES])
_RANKS = np.array([PRIORITY_RANK[p] for p in PRIORITIES])
DEFAULT_WEIGHTS = Weights()
DEFAULT_TRAVEL = StraightLineTravel()


@dataclass
class TableRanking:
    """A Ranking cut to the kept rows, with what was cut: how many were eligible, and how
    many were excluded for each reason."""

    ranking: Ranking
    eligible: int
    excluded_counts: dict[str, int]

    def as_dict(self) -> dict:
        return {
            **self.ranking.as_dict(),
            "eligible": self.eligible,
            "excluded_counts": self.excluded_counts,
        }


def reason_codes(table: CandidateTable, job: Job) -> np.ndarray:
    """Per engineer, the index in _CODES of the first constraint broken, or -1 (eligible)."""
    n = len(table)
    broken = {}
    broken["on_leave"] = table.on_leave
    broken["off_shift"] = ~table.on_shift
    skill_ok = np.ones(n, dtype=bool)
    for code, level in job.required_skills.items():
        held = table.skills.get(code)
        if held is None:
            skill_ok[:] = False
        else:
            skill_ok &= held >= level
    broken["skill"] = ~skill_ok
    broken["capacity"] = table.open_jobs.sum(axis=1) >= table.capacity
    # Busy on an urgent job more urgent than this one: an open job of such a priority.
    rank = PRIORITY_RANK[job.priority]
    more_urgent = [k for k, r in enumerate(_RANKS) if r <= URGENT_RANK and r < rank]
    if more_urgent:
        broken["urgent_job"] = table.open_jobs[:, more_urgent].any(axis=1)
    if job.lat is not None and job.lng is not None:
        broken["no_position"] = np.isnan(table.lat)
    codes = np.full(n, -1, dtype=np.int64)
    # The last constraint first: each earlier one broken overwrites it, so the first wins.
    for k in range(len(_CODES) - 1, -1, -1):
        found = broken.get(_CODES[k])
        if found is not None:
            codes[found] = k
    return codes


def travel_minutes(
    table: CandidateTable, job: Job, travel: StraightLineTravel, rows: np.ndarray
) -> np.ndarray:
    """scoring.StraightLineTravel.minutes from the engineers of ``rows`` to the job (0 without
    a job location; NaN for engineers without a position)."""
    if job.lat is None or job.lng is None:
        return np.zeros(len(rows))
    phi1, phi2 = np.radians(table.lat[rows]), np.radians(job.lat)
    dphi = phi2 - phi1
    dlmb = np.radians(job.lng - table.lng[rows])
    a = np.sin(dphi / 2) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(dlmb / 2) ** 2
    km = 2 * EARTH_RADIUS_KM * np.arcsin(np.minimum(1.0, np.sqrt(a))) * travel.road_factor
    return km / travel.speed_kmh * 60.0


def totals(
    table: CandidateTable,
    job: Job,
    rows: np.ndarray,
    *,
    now: datetime,
    weights: Weights,
    travel: StraightLineTravel,
) -> np.ndarray:
    """scoring.score(...).total for the engineers of ``rows`` (meaningful where eligible)."""
    minutes = travel_minutes(table, job, travel, rows)
    load_units = table.open_jobs[rows] @ _LOAD
    late = np.zeros(len(rows))
    if job.deadline is not None:
        slack = (job.deadline - now).total_seconds() / 60.0 - weights.sla_margin_minutes
        late = np.maximum(0.0, minutes - slack)
    cost = (
        weights.travel * minutes
        + weights.load * load_units
        + weights.sla_risk * late
        + weights.fairness * table.minutes_today[rows]
    )
    if job.device_no is not None and job.device_no == table.device_no:
        cost = cost + np.where(table.fixed_device[rows], weights.familiarity, 0.0)
    return cost


def best_first(rows: np.ndarray, cost: np.ndarray, keep: int) -> np.ndarray:
    """The ``keep`` rows of least cost in order, ties in row order (as a stable sort of all
    would give them), without sorting all: every row tied with the keep-th is sorted too."""
    if len(rows) > keep > 0:
        limit = np.partition(cost, keep - 1)[keep - 1]
        close = np.flatnonzero(cost <= limit)
        rows, cost = rows[close], cost[close]
    return rows[np.argsort(cost, kind="stable")][:keep]


def rank_table(
    table: CandidateTable,
    job: Job,
    *,
    now: datetime,
    weights: Weights = DEFAULT_WEIGHTS,
    travel: TravelModel = DEFAULT_TRAVEL,
    keep_ranked: int = KEEP_RANKED,
    keep_excluded: int = KEEP_EXCLUDED,
    always: str | None = None,
) -> TableRanking:
    """The ranking of scoring.rank, computed on arrays and cut to the rows kept. ``always``
    names an engineer kept in the lists wherever they stand (the one a dispatcher chose)."""
    if not isinstance(travel, StraightLineTravel):
        # Another travel provider is asked one engineer at a time, as scoring does.
        full = rank(table.candidates(), job, now=now, weights=weights, travel=travel)
        counts = Counter(reason.code for _name, reason in full.excluded)
        return TableRanking(
            Ranking(full.ranked[:keep_ranked], full.excluded[:keep_excluded]),
            len(full.ranked),
            dict(sorted(counts.items())),
        )
    codes = reason_codes(table, job)
    eligible = np.flatnonzero(codes < 0)
    cost = totals(table, job, eligible, now=now, weights=weights, travel=travel)
    # Rows are sorted by username, so ties in row order are ties by username as scoring has them.
    shown = list(best_first(eligible, cost, keep_ranked))
    excluded = np.flatnonzero(codes >= 0)
    listed = list(excluded[:keep_excluded])
    chosen = table.index(always) if always is not None else None
    if chosen is not None and codes[chosen] < 0 and chosen not in shown:
        shown.append(chosen)
    if chosen is not None and codes[chosen] >= 0 and chosen not in listed:
        listed.append(chosen)
        listed.sort()
    ranked = [
        score(table.candidate(i), job, now=now, weights=weights, travel=travel) for i in shown
    ]
    reasons = []
    for i in listed:
        reason = exclusion(table.candidate(i), job)
        reasons.append((table.usernames[i], reason))
    found = np.bincount(codes[excluded], minlength=len(_CODES))
    counts = {code: int(n) for code, n in zip(_CODES, found, strict=True) if n}
    return TableRanking(Ranking(ranked, reasons), len(eligible), dict(sorted(counts.items())))
