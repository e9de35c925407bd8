"""Batch dispatch: assign many waiting jobs at once by minimum total cost (assignment problem).

One by one, the first job takes the best engineer even when a second job needed that engineer
more; solved together, the total travel and SLA risk is minimal. The costs are the ones
app.dispatch.scoring computes for a single decision, built as a matrix with numpy so that
500 jobs x 1,000 engineers stay well under a second.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import numpy as np
from scipy.optimize import linear_sum_assignment

from app.dispatch.scoring import (
    LOAD_FACTOR,
    PRIORITY_RANK,
    URGENT_RANK,
    Candidate,
    Job,
    StraightLineTravel,
    TravelModel,
    Weights,
)

_NO_OPEN_JOB = len(PRIORITY_RANK) + 1  # a rank less urgent than any priority

# How much later a job left out of this round is assumed to be reached: about the time until
# the next engineer frees up on a busy day.
DEFER_MINUTES = 30.0

# What changing a plan costs (a call, a U-turn, a confused customer), in minutes-equivalent.
REPLAN_MINUTES = 10.0

DEFAULT_WEIGHTS = Weights()
DEFAULT_TRAVEL = StraightLineTravel()


def _travel_minutes(
    jobs: list[Job], candidates: list[Candidate], eligible: np.ndarray, travel: TravelModel
) -> np.ndarray:
    """Minutes from every candidate to every job; 0 where either position is unknown."""
    minutes = np.zeros(eligible.shape)
    job_at = np.array([j.lat is not None and j.lng is not None for j in jobs], dtype=bool)
    cand_at = np.array([c.lat is not None and c.lng is not None for c in candidates], dtype=bool)
    known = eligible & job_at[:, None] & cand_at[None, :]
    if not known.any():
        return minutes
    if isinstance(travel, StraightLineTravel):
        # The same haversine as scoring.haversine_km, on whole arrays.
        jlat = np.radians([j.lat if j.lat is not None else 0.0 for j in jobs])[:, None]
        jlng = np.radians([j.lng if j.lng is not None else 0.0 for j in jobs])[:, None]
        clat = np.radians([c.lat if c.lat is not None else 0.0 for c in candidates])[None, :]
        clng = np.radians([c.lng if c.lng is not None else 0.0 for c in candidates])[None, :]
        a = (
            np.sin((jlat - clat) / 2) ** 2
            + np.cos(clat) * np.cos(jlat) * np.sin((jlng - clng) / 2) ** 2
        )
        km = 2 * 6371.0088 * np.arcsin(np.minimum(1.0, np.sqrt(a)))
        all_minutes = km * travel.road_factor / travel.speed_kmh * 60.0
        minutes[known] = all_minutes[known]
        return minutes
    # Another provider (a routing service) is asked only for the pairs that matter.
    for i, k in zip(*np.nonzero(known), strict=True):
        c, j = candidates[k], jobs[i]
        minutes[i, k] = travel.minutes(c.lat, c.lng, j.lat, j.lng)
    return minutes


def _pair_costs(
    jobs: list[Job],
    candidates: list[Candidate],
    *,
    now: datetime,
    weights: Weights,
    travel: TravelModel,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(costs, travel minutes, minutes of slack before each job's latest safe arrival)."""
    n, m = len(jobs), len(candidates)
    open_totals = np.array([sum(c.open_jobs.values()) for c in candidates])
    capacities = np.array([c.capacity for c in candidates])
    available = np.array([c.on_shift and not c.on_leave for c in candidates], dtype=bool)
    eligible = np.broadcast_to(available & (open_totals < capacities), (n, m)).copy()

    for code in sorted({code for j in jobs for code in j.required_skills}):
        needed = np.array([j.required_skills.get(code, 0) for j in jobs])
        level = np.array([c.skills.get(code, 0) for c in candidates])
        eligible &= level[None, :] >= needed[:, None]

    job_rank = np.array([PRIORITY_RANK[j.priority] for j in jobs])
    most_urgent = np.array(
        [
            min((PRIORITY_RANK[p] for p, k in c.open_jobs.items() if k > 0), default=_NO_OPEN_JOB)
            for c in candidates
        ]
    )
    eligible &= ~((most_urgent[None, :] <= URGENT_RANK) & (job_rank[:, None] > most_urgent))

    job_at = np.array([j.lat is not None and j.lng is not None for j in jobs], dtype=bool)
    cand_at = np.array([c.lat is not None and c.lng is not None for c in candidates], dtype=bool)
    eligible &= ~(job_at[:, None] & ~cand_at[None, :])

    minutes = _travel_minutes(jobs, candidates, eligible, travel)
    load = np.array([sum(LOAD_FACTOR[p] * k for p, k in c.open_jobs.items()) for c in candidates])
    worked = np.array([c.minutes_worked_today for c in candidates], dtype=float)
    # Minutes from now until the latest safe arrival; a job without a deadline never runs late.
    slack = np.array(
        [
            np.inf
            if j.deadline is None
            else (j.deadline - now).total_seconds() / 60.0 - weights.sla_margin_minutes
            for j in jobs
        ]
    )
    late = np.maximum(0.0, minutes - slack[:, None])

    costs = (
        weights.travel * minutes
        + weights.load * load[None, :]
        + weights.sla_risk * late
        + weights.fairness * worked[None, :]
    )
    fixed_by: dict[str, list[int]] = {}
    for k, c in enumerate(candidates):
        for device in c.devices_fixed:
            fixed_by.setdefault(device, []).append(k)
    for i, j in enumerate(jobs):
        if j.device_no is not None and j.device_no in fixed_by:
            costs[i, fixed_by[j.device_no]] += weights.familiarity
    costs[~eligible] = np.inf
    minutes[~eligible] = np.inf
    return costs, minutes, slack


def cost_matrix(
    jobs: list[Job],
    candidates: list[Candidate],
    *,
    now: datetime,
    weights: Weights = DEFAULT_WEIGHTS,
    travel: TravelModel = DEFAULT_TRAVEL,
) -> np.ndarray:
    """jobs x candidates: scoring.score(...).total where scoring.exclusion(...) is None, else inf."""
    return _pair_costs(jobs, candidates, now=now, weights=weights, travel=travel)[0]


def _deferral(minutes: np.ndarray, slack: np.ndarray, weights: Weights) -> np.ndarray:
    """What leaving each job for a later round costs: the SLA risk of arriving DEFER_MINUTES
    after its earliest possible arrival now. A job with slack waits at no cost; a job at risk
    does not, so scarce engineers go to the jobs about to breach rather than the cheap ones."""
    earliest = minutes.min(axis=1, initial=np.inf)
    reachable = np.isfinite(earliest)
    deferral = np.zeros(len(earliest))
    late = earliest[reachable] + DEFER_MINUTES - slack[reachable]
    deferral[reachable] = weights.sla_risk * np.maximum(0.0, late)
    return deferral


def _solve(costs: np.ndarray, deferral: np.ndarray, ranks: np.ndarray) -> dict[int, int]:
    """Optimal job row -> slot column, with one "wait" column per job costing its deferral.

    Every assignment also earns a bonus by priority tier, larger than any difference in cost:
    a job is assigned whenever a slot it may take is free, and an urgent job left waiting never
    sees an engineer it could take serving a less urgent job.
    """
    n, slots = costs.shape
    finite = np.isfinite(costs)
    if not finite.any():
        return {}
    tier = float(max(costs[finite].max(), costs[finite].max() - costs[finite].min()))
    tier += float(deferral.max()) + 1.0
    bonus = tier * (len(PRIORITY_RANK) + 1 - ranks)
    waiting = np.full((n, n), np.inf)
    np.fill_diagonal(waiting, deferral)
    rows, cols = linear_sum_assignment(np.hstack([costs - bonus[:, None], waiting]))
    return {int(r): int(c) for r, c in zip(rows, cols, strict=True) if c < slots}


def assign_batch(
    jobs: list[Job],
    candidates: list[Candidate],
    *,
    now: datetime,
    weights: Weights = DEFAULT_WEIGHTS,
    travel: TravelModel = DEFAULT_TRAVEL,
    planned: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """job key -> username, minimising the total cost.

    When re-planning, planned maps the jobs already given (and not started) to their engineer:
    taking such a job away from its engineer costs REPLAN_MINUTES more, so plans change only
    for a real gain, not to shave a minute.

    An engineer with k free slots appears k times; each further slot costs one more P3-sized
    load, since the other jobs it will carry are not known when the matrix is built. Excluded
    pairs cost inf and are never returned. More urgent jobs win when engineers are scarce (see
    _solve). Jobs that cannot be assigned are absent from the result.
    """
    if not jobs or not candidates:
        return {}
    per_pair, minutes, slack = _pair_costs(
        jobs, candidates, now=now, weights=weights, travel=travel
    )
    free = [max(0, c.capacity - sum(c.open_jobs.values())) for c in candidates]
    slot_owner = np.array(
        [k for k, f in enumerate(free) for _ in range(min(f, len(jobs)))], dtype=int
    )
    if slot_owner.size == 0:
        return {}
    slot_index = np.array([s for f in free for s in range(min(f, len(jobs)))], dtype=float)
    costs = per_pair[:, slot_owner] + weights.load * LOAD_FACTOR["P3"] * slot_index[None, :]
    ranks = np.array([PRIORITY_RANK[j.priority] for j in jobs])
    deferral = _deferral(minutes, slack, weights)
    if planned:
        owner_of = {c.username: k for k, c in enumerate(candidates)}
        for i, j in enumerate(jobs):
            keeper = owner_of.get(planned.get(j.key, ""))
            if keeper is not None:
                costs[i, slot_owner != keeper] += REPLAN_MINUTES
                deferral[i] += REPLAN_MINUTES

    # An engineer given a P1 in this batch is on an urgent job: they may not also take a less
    # urgent one from the same batch. Forbid such pairs and solve again (rare: needs 2+ slots).
    while True:
        chosen = _solve(costs, deferral, ranks)
        best_rank: dict[int, int] = {}
        for row, col in chosen.items():
            owner = int(slot_owner[col])
            best_rank[owner] = min(best_rank.get(owner, _NO_OPEN_JOB), int(ranks[row]))
        clashes = [
            (row, int(slot_owner[col]))
            for row, col in chosen.items()
            if best_rank[int(slot_owner[col])] <= URGENT_RANK
            and ranks[row] > best_rank[int(slot_owner[col])]
        ]
        if not clashes:
            break
        for row, owner in clashes:
            costs[row, slot_owner == owner] = np.inf
    return {
        jobs[row].key: candidates[int(slot_owner[chosen[row]])].username
        for row in range(len(jobs))
        if row in chosen
    }
