"""Batch dispatch and the dispatch simulator: optimal, rule-abiding, deterministic, and better
than "nearest available" on a busy day."""

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from app.dispatch.batch import assign_batch, cost_matrix
from app.dispatch.scoring import (
    Candidate,
    Job,
    StraightLineTravel,
    Weights,
    exclusion,
    rank,
    score,
)
from app.dispatch.simulate import DEFAULT_SCENARIO, POLICIES, report, simulate
from app.dispatch.simworld import make_world

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
KM = 1 / 111.195  # one kilometre north, in degrees of latitude
SKILLS = ("network", "printer", "pc", "server", "air_conditioning", "ups", "access_control")


def engineer(username: str, north_km: float = 0.0, **changes) -> Candidate:
    base = Candidate(
        username=username,
        name=username,
        lat=31.2 + north_km * KM,
        lng=121.45,
        position_source="live",
        skills={"pc": 3},
        skill_names={},
        on_shift=True,
        on_leave=False,
        open_jobs={},
        capacity=1,
        minutes_worked_today=0.0,
        devices_fixed=frozenset(),
    )
    return replace(base, **changes)


def job(key: str, north_km: float = 0.0, **changes) -> Job:
    base = Job(
        key=key,
        lat=31.2 + north_km * KM,
        lng=121.45,
        priority="P3",
        required_skills={"pc": 2},
        deadline=NOW + timedelta(hours=8),
    )
    return replace(base, **changes)


def random_case(rng: random.Random, jobs: int, engineers: int):
    candidates = [
        engineer(
            f"e{i:04d}",
            rng.uniform(-15, 15),
            lng=121.3 + rng.random() * 0.35,
            skills={code: rng.randint(1, 5) for code in rng.sample(SKILLS, 3)},
            on_shift=rng.random() > 0.1,
            on_leave=rng.random() < 0.05,
            open_jobs=rng.choice([{}, {"P3": 1}, {"P1": 1}, {"P2": 1, "P4": 1}]),
            capacity=rng.randint(1, 3),
            minutes_worked_today=rng.uniform(0, 300),
            devices_fixed=frozenset({f"D{rng.randint(1, 20)}"}),
        )
        for i in range(engineers)
    ]
    work = [
        job(
            f"j{i:04d}",
            rng.uniform(-15, 15),
            lng=121.3 + rng.random() * 0.35,
            priority=rng.choice(["P1", "P2", "P3", "P4"]),
            required_skills={rng.choice(SKILLS): rng.randint(1, 4)},
            deadline=NOW + timedelta(minutes=rng.uniform(-60, 600)),
            device_no=f"D{rng.randint(1, 20)}",
        )
        for i in range(jobs)
    ]
    return work, candidates


def test_the_cost_matrix_is_the_single_decision_score_and_its_exclusions():
    jobs, candidates = random_case(random.Random(7), 40, 60)
    matrix = cost_matrix(jobs, candidates, now=NOW)
    for i, j in enumerate(jobs):
        for k, c in enumerate(candidates):
            if exclusion(c, j) is None:
                total = score(c, j, now=NOW, weights=Weights(), travel=StraightLineTravel()).total
                assert matrix[i, k] == pytest.approx(total, abs=1e-6)
            else:
                assert matrix[i, k] == np.inf


def test_assign_batch_never_returns_an_excluded_pair_nor_exceeds_capacity():
    jobs, candidates = random_case(random.Random(3), 120, 80)
    plan = assign_batch(jobs, candidates, now=NOW)
    by_key = {j.key: j for j in jobs}
    by_name = {c.username: c for c in candidates}
    assert plan
    for key, username in plan.items():
        assert exclusion(by_name[username], by_key[key]) is None
    for username in set(plan.values()):
        c = by_name[username]
        given = [by_key[k] for k, u in plan.items() if u == username]
        assert len(given) <= c.capacity - sum(c.open_jobs.values())
        if any(j.priority == "P1" for j in given):
            assert {j.priority for j in given} == {"P1"}


def test_batch_beats_one_by_one_greedy_on_total_cost():
    # x sits at 0 km, y at 3 km north. Job 1 (1.4 km north) is a little nearer to x; job 2 is
    # 5 km south. One by one, job 1 takes x and job 2 is left with y's 8 km drive.
    x, y = engineer("x", 0.0), engineer("y", 3.0)
    one, two = job("1", 1.4), job("2", -5.0)
    taken, greedy_total = [], 0.0
    for j in (one, two):
        best = rank([c for c in (x, y) if c.username not in taken], j, now=NOW).ranked[0]
        taken.append(best.username)
        greedy_total += best.total
    assert taken == ["x", "y"]

    plan = assign_batch([one, two], [x, y], now=NOW)
    assert plan == {"1": "y", "2": "x"}
    people = {"x": x, "y": y}
    batch_total = sum(
        score(people[u], j, now=NOW, weights=Weights(), travel=StraightLineTravel()).total
        for j, u in ((one, plan["1"]), (two, plan["2"]))
    )
    assert batch_total < greedy_total - 5


def test_when_engineers_are_scarce_the_urgent_job_and_then_the_one_about_to_breach_win():
    only = engineer("only", 0.0)
    near_p4, far_p1 = job("near", 0.5, priority="P4"), job("far", 12.0, priority="P1")
    assert assign_batch([near_p4, far_p1], [only], now=NOW) == {"far": "only"}

    relaxed = job("relaxed", 1.0)
    due = job("due", 4.0, deadline=NOW + timedelta(minutes=20))
    assert assign_batch([relaxed, due], [only], now=NOW) == {"due": "only"}
    assert assign_batch(
        [relaxed, replace(due, deadline=NOW + timedelta(hours=8))], [only], now=NOW
    ) == {"relaxed": "only"}


def test_free_slots_and_an_urgent_job_in_the_same_batch():
    roomy = engineer("roomy", 0.0, capacity=3, open_jobs={"P3": 1})
    assert assign_batch([job("a", 1.0), job("b", 2.0), job("c", 3.0)], [roomy], now=NOW) == {
        "a": "roomy",
        "b": "roomy",
    }
    # Given a P1, roomy is on an urgent job and may not also take the P3 of the same batch.
    plan = assign_batch([job("p1", 1.0, priority="P1"), job("p3", 1.0)], [roomy], now=NOW)
    assert plan == {"p1": "roomy"}


def test_a_plan_changes_only_for_a_real_gain():
    # a is on the way, 0.8 km from the job; b has just become free 0.5 km from it.
    on_the_way, just_free = engineer("a", 1.8), engineer("b", 0.5)
    work = [job("1", 1.0)]
    assert assign_batch(work, [on_the_way, just_free], now=NOW) == {"1": "b"}
    assert assign_batch(work, [on_the_way, just_free], now=NOW, planned={"1": "a"}) == {"1": "a"}
    far_away = engineer("a", 14.0)
    assert assign_batch(work, [far_away, just_free], now=NOW, planned={"1": "a"}) == {"1": "b"}


def test_a_batch_of_500_jobs_for_1000_engineers_finishes():
    jobs, candidates = random_case(random.Random(11), 500, 1000)
    plan = assign_batch(jobs, candidates, now=NOW)
    assert 400 < len(plan) <= 500


def test_the_simulator_is_deterministic_for_a_seed():
    small = {"engineers": 9, "tickets": 60, "hours": 4.0}
    first = report(**small, seed=5)
    assert report(**small, seed=5) == first
    assert report(**small, seed=6) != first
    assert first.splitlines()[0] == "9 engineers, 60 tickets over 4 h, seed 5"
    assert [line.split()[0] for line in first.splitlines()[3:]] == list(POLICIES)


@pytest.mark.parametrize("seed", [DEFAULT_SCENARIO["seed"], 2, 3])
def test_batch_beats_nearest_available_by_15_percent_on_a_busy_day(seed):
    world = make_world(**{**DEFAULT_SCENARIO, "seed": seed})
    nearest, greedy, batch = simulate(world, ("nearest", "greedy", "batch"))
    assert batch.mean_response <= 0.85 * nearest.mean_response
    assert nearest.breach_percent > 0
    assert batch.breach_percent <= 0.85 * nearest.breach_percent
    assert nearest.mismatches > 0
    assert (greedy.mismatches, batch.mismatches) == (0, 0)


def test_the_command_prints_the_table(app):
    command = app.cli.commands["dispatch-simulate"]
    defaults = {p.name: p.default for p in command.params if p.name != "policy"}
    assert defaults == DEFAULT_SCENARIO
    runner = app.test_cli_runner()
    args = ["dispatch-simulate", "--engineers", "6", "--tickets", "30", "--hours", "3"]
    result = runner.invoke(args=[*args, "--policy", "nearest"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "6 engineers, 30 tickets over 3 h, seed 1"
    assert [cell.strip() for cell in lines[1].split("|")] == [
        "policy",
        "mean response (min)",
        "p90 response (min)",
        "SLA breach %",
        "travel km",
        "load spread (h)",
        "skill mismatches",
    ]
    assert [line.split()[0] for line in lines[3:]] == ["nearest"]
    refused = runner.invoke(args=[*args, "--policy", "fastest"])
    assert refused.exit_code == 2
    assert "choose one of round_robin, nearest, greedy, batch" in refused.output
