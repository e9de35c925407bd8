"""Dispatch scoring: every hard constraint excludes with its reason, and each cost part ranks."""

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from app.dispatch.scoring import (
    Candidate,
    Job,
    StraightLineTravel,
    Weights,
    exclusion,
    haversine_km,
    rank,
    score,
)

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
PEOPLE_SQUARE = (31.2304, 121.4737)


def engineer(username: str, **changes) -> Candidate:
    base = Candidate(
        username=username,
        name=username.title(),
        lat=PEOPLE_SQUARE[0],
        lng=PEOPLE_SQUARE[1],
        position_source="live",
        skills={"air_conditioning": 4, "ups": 2},
        skill_names={"air_conditioning": "空调", "ups": "UPS"},
        on_shift=True,
        on_leave=False,
        open_jobs={},
        capacity=3,
        minutes_worked_today=0.0,
        devices_fixed=frozenset(),
    )
    return replace(base, **changes)


def job(**changes) -> Job:
    base = Job(
        key="42",
        lat=31.2404,
        lng=121.4737,
        priority="P3",
        required_skills={"air_conditioning": 3},
        deadline=NOW + timedelta(hours=8),
        device_no="AC-7",
    )
    return replace(base, **changes)


def test_haversine_and_straight_line_travel():
    assert haversine_km(31.2304, 121.4737, 39.9042, 116.4074) == pytest.approx(1067, abs=5)
    one_km_north = 1 / 111.195
    travel = StraightLineTravel(road_factor=1.5, speed_kmh=30)
    assert travel.minutes(31.0, 121.0, 31.0 + one_km_north, 121.0) == pytest.approx(3.0, rel=1e-3)


@pytest.mark.parametrize(
    ("changes", "code", "zh", "en"),
    [
        ({"on_leave": True}, "on_leave", "正在休假", "on leave"),
        ({"on_shift": False}, "off_shift", "不在班次内", "not on shift"),
        (
            {"skills": {"air_conditioning": 2}},
            "skill",
            "技能不符: 需要 空调 ≥ 3 级（现有 2 级）",
            "skill mismatch: needs 空调 ≥ 3 (has 2)",
        ),
        (
            {"skills": {}},
            "skill",
            "技能不符: 需要 空调 ≥ 3 级（现有 0 级）",
            "skill mismatch: needs 空调 ≥ 3 (has 0)",
        ),
        (
            {"open_jobs": {"P3": 2, "P4": 1}},
            "capacity",
            "已满负荷: 3 个未完成工单，上限 3",
            "at capacity: 3 open jobs, limit 3",
        ),
        (
            {"open_jobs": {"P1": 1}},
            "urgent_job",
            "正在处理紧急工单 (P1)，本单 P3 不更紧急",
            "busy on an urgent job (P1); this P3 job is not more urgent",
        ),
        (
            {"lat": None, "lng": None},
            "no_position",
            "位置未知: 没有实时位置、签到记录或常驻地点",
            "position unknown: no live position, check-in or home base",
        ),
    ],
)
def test_every_hard_constraint_excludes_with_its_reason(changes, code, zh, en):
    reason = exclusion(engineer("e", **changes), job())
    assert (reason.code, reason.zh, reason.en) == (code, zh, en)
    ranking = rank([engineer("e", **changes), engineer("ok")], job(), now=NOW)
    assert [b.username for b in ranking.ranked] == ["ok"]
    assert ranking.excluded == [("e", reason)]


def test_a_busy_urgent_engineer_may_take_an_equally_urgent_job():
    busy = engineer("e", open_jobs={"P1": 1})
    assert exclusion(busy, job(priority="P1")) is None
    assert exclusion(engineer("e", open_jobs={"P2": 2}), job(priority="P4")) is None


def test_several_missing_skills_are_all_named():
    reason = exclusion(engineer("e"), job(required_skills={"air_conditioning": 5, "ups": 3}))
    assert reason.zh == "技能不符: 需要 空调 ≥ 5 级（现有 4 级）、UPS ≥ 3 级（现有 2 级）"
    assert reason.en == "skill mismatch: needs 空调 ≥ 5 (has 4), UPS ≥ 3 (has 2)"


def test_a_job_without_a_location_costs_no_travel():
    breakdown = score(
        engineer("e", lat=None, lng=None),
        job(lat=None, lng=None),
        now=NOW,
        weights=Weights(),
        travel=StraightLineTravel(),
    )
    assert (breakdown.travel_minutes, breakdown.eta) == (0.0, NOW)
    assert exclusion(engineer("e", lat=None, lng=None), job(lat=None, lng=None)) is None


def test_the_nearer_engineer_ranks_first_and_a_change_in_position_changes_the_ranking():
    near = engineer("near")
    far = engineer("far", lat=31.30, lng=121.55)
    assert [b.username for b in rank([far, near], job(), now=NOW).ranked] == ["near", "far"]
    moved = replace(far, lat=31.2405, lng=121.4737)
    assert [b.username for b in rank([moved, near], job(), now=NOW).ranked] == ["far", "near"]


def test_each_part_of_the_score():
    travel = StraightLineTravel()
    candidate = engineer(
        "e",
        open_jobs={"P1": 1, "P3": 2, "P4": 1},
        minutes_worked_today=120,
        devices_fixed=frozenset({"AC-7"}),
    )
    weights = Weights()
    late = job(deadline=NOW + timedelta(minutes=10))
    breakdown = score(candidate, late, now=NOW, weights=weights, travel=travel)
    minutes = travel.minutes(PEOPLE_SQUARE[0], PEOPLE_SQUARE[1], 31.2404, 121.4737)
    assert breakdown.travel_minutes == pytest.approx(minutes)
    assert breakdown.eta == NOW + timedelta(minutes=minutes)
    assert breakdown.parts == pytest.approx(
        {
            "travel": minutes,
            "load": 15.0 * (4 + 2 + 0.5),
            # arrival past deadline - 15 min margin: (minutes - (10 - 15)) minutes late
            "sla_risk": 2.0 * (minutes + 5),
            "fairness": 12.0,
            "familiarity": -20.0,
        }
    )
    assert breakdown.total == pytest.approx(sum(breakdown.parts.values()))


@pytest.mark.parametrize(
    ("worse", "why"),
    [
        ({"open_jobs": {"P2": 1}}, "load"),
        ({"minutes_worked_today": 300}, "fairness"),
    ],
)
def test_load_and_fairness_push_an_engineer_down(worse, why):
    ranking = rank([engineer("a", **worse), engineer("b")], job(), now=NOW)
    assert [b.username for b in ranking.ranked] == ["b", "a"]
    assert ranking.ranked[1].parts[why] > ranking.ranked[0].parts[why]


def test_sla_risk_prefers_the_engineer_who_arrives_in_time():
    # "close" is 3 min away but has a P2 job open; "far" is 25 min away and idle.
    close = engineer("close", open_jobs={"P2": 1})
    far = engineer("far", lat=31.2404 + 25 / 60 * 30 / 1.3 / 111.195, lng=121.4737)
    relaxed = rank([close, far], job(), now=NOW)
    assert [b.username for b in relaxed.ranked] == ["far", "close"]
    tight = rank([close, far], job(deadline=NOW + timedelta(minutes=20)), now=NOW)
    assert [b.username for b in tight.ranked] == ["close", "far"]
    assert tight.ranked[1].parts["sla_risk"] > 0


def test_familiarity_is_a_bonus_and_weights_are_configuration():
    fixed_it = engineer("fixer", lat=31.26, devices_fixed=frozenset({"AC-7"}))
    nearer = engineer("nearer")
    assert rank([nearer, fixed_it], job(), now=NOW).ranked[0].username == "fixer"
    no_memory = Weights(familiarity=0.0)
    ranking = rank([nearer, fixed_it], job(), now=NOW, weights=no_memory)
    assert ranking.ranked[0].username == "nearer"


def test_ties_break_by_username_and_the_ranking_is_json_safe():
    ranking = rank(
        [engineer("b"), engineer("a"), engineer("z", on_leave=True), engineer("c", on_shift=False)],
        job(),
        now=NOW,
    )
    assert [b.username for b in ranking.ranked] == ["a", "b"]
    stored = json.loads(json.dumps(ranking.as_dict()))
    assert [e["username"] for e in stored["excluded"]] == ["c", "z"]
    assert stored["excluded"][1] == {
        "username": "z",
        "code": "on_leave",
        "zh": "正在休假",
        "en": "on leave",
    }
    assert set(stored["ranked"][0]["parts"]) == {
        "travel",
        "load",
        "sla_risk",
        "fairness",
        "familiarity",
    }
    assert datetime.fromisoformat(stored["ranked"][0]["eta"]) == ranking.ranked[0].eta


def test_an_unknown_priority_is_refused():
    with pytest.raises(ValueError, match="P9"):
        job(priority="P9")
