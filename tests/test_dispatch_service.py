"""The dispatch service on real work orders: hard constraints exclude with their reasons,
positions change rankings, overrides need a reason, auto mode assigns as the task opens,
the pool and its fallback, batches and re-plans that never take work in progress away."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np
import pytest
import time_machine
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.auth.models import Group
from app.auth.org_service import create_skill
from app.auth.service import create_user, find_user
from app.dispatch import service
from app.dispatch.fastrank import rank_table
from app.dispatch.jobs import assign_waiting_tasks
from app.dispatch.models import DispatchDecision, GroupDispatchConfig
from app.dispatch.people import PRIORITIES, CandidateTable
from app.dispatch.planning import assign_waiting
from app.dispatch.scoring import Candidate, Job, Weights, rank
from app.dispatch.settings import set_profile
from app.engine.models import ProcessEvent
from app.errors import Conflict, InvalidInput, NotAllowed
from app.inbox.service import claim
from app.site.service import check_in
from tests.conftest import PASSWORD, SHANGHAI
from tests.flows import Flow

# A Monday morning in Shanghai, and places around People's Square.
MONDAY_10 = datetime(2026, 11, 30, 10, 0, tzinfo=SHANGHAI)
SITE = {"lat": 31.2304, "lng": 121.4737, "address": "上海市黄浦区人民广场"}
NEAR = (31.2350, 121.4800)  # ~0.8 km
FAR = (31.3000, 121.6000)  # ~14 km
FORWARD = {"resolution": "forward", "triage_note": "已确认"}


def skills(db_session) -> None:
    create_skill(db_session=db_session, code="network", name="网络")
    create_skill(db_session=db_session, code="air_conditioning", name="空调")
    create_skill(db_session=db_session, code="pc", name="电脑终端")


def engineer(db_session, username, group, levels, *, at=None, home=None, **profile):
    """A handler of ``group`` with skill ``levels``, a home base and a live position."""
    user = create_user(
        db_session=db_session,
        username=username,
        password=PASSWORD,
        role="handler",
        group_codes=[group],
        skills=levels,
    )
    set_profile(
        db_session=db_session,
        username=username,
        home={"lat": home[0], "lng": home[1]} if home else None,
        **profile,
    )
    if at is not None:
        service.report_position(
            db_session=db_session, user=user, lat=at[0], lng=at[1], accuracy_m=10
        )
    return user


def work_order(db_session, category, priority, requester="alice", **fields):
    """An IT work order triaged to ``category`` with ``priority``: its task_handle waits."""
    fields = {"location": SITE, **fields}
    flow = Flow(
        db_session,
        requester,
        "it_service",
        title=f"{category} {priority}",
        priority=priority,
        region="shanghai",
        **fields,
    )
    flow.do(
        "task_triage",
        "desk",
        category=category,
        priority=priority,
        region="shanghai",
        **FORWARD,
    )
    return flow


def configure(db_session, group, mode, wait=30):
    group_id = db_session.scalar(select(Group.id).where(Group.code == group))
    db_session.add(GroupDispatchConfig(group_id=group_id, mode=mode, pool_wait_minutes=wait))
    db_session.flush()


def user(db_session, username):
    return find_user(db_session=db_session, username=username)


def recommend(db_session, flow, as_user="desk"):
    return service.recommend(
        db_session=db_session, user=user(db_session, as_user), ticket_id=flow.ticket.id
    )


def excluded(ranking) -> dict:
    return {username: reason for username, reason in ranking.excluded}


# ---------------------------------------------------------------- hard constraints


def test_every_hard_constraint_excludes_with_its_reason(db_session):
    skills(db_session)
    with time_machine.travel(MONDAY_10, tick=False):
        engineer(db_session, "f_ok", "facilities", {"air_conditioning": 4}, at=NEAR)
        engineer(db_session, "f_novice", "facilities", {"air_conditioning": 2}, at=NEAR)
        engineer(
            db_session,
            "f_night",
            "facilities",
            {"air_conditioning": 4},
            at=NEAR,
            shifts=[{"weekday": 0, "start": "20:00", "end": "08:00"}],
        )
        engineer(
            db_session,
            "f_away",
            "facilities",
            {"air_conditioning": 4},
            at=NEAR,
            leave=[
                {
                    "starts_at": MONDAY_10 - timedelta(days=1),
                    "ends_at": MONDAY_10 + timedelta(days=2),
                    "reason": "年假",
                }
            ],
        )
        engineer(db_session, "f_full", "facilities", {"air_conditioning": 4}, at=NEAR, capacity=1)
        engineer(db_session, "f_urgent", "facilities", {"air_conditioning": 4}, at=NEAR)
        engineer(db_session, "f_nowhere", "facilities", {"air_conditioning": 4})
        db_session.commit()
        # f_full holds one P3 job (capacity 1); f_urgent works on a P1.
        busy = work_order(db_session, "facilities", "P3")
        claim(
            db_session=db_session,
            user=user(db_session, "f_full"),
            task_id=busy.task("task_handle").id,
        )
        urgent = work_order(db_session, "facilities", "P1")
        claim(
            db_session=db_session,
            user=user(db_session, "f_urgent"),
            task_id=urgent.task("task_handle").id,
        )
        db_session.commit()

        flow = work_order(db_session, "facilities", "P2")
        ranking = recommend(db_session, flow)

    reasons = excluded(ranking)
    assert [b.username for b in ranking.ranked][:1] == ["f_ok"]
    assert {name: r.code for name, r in reasons.items()} == {
        "f_novice": "skill",
        "f_night": "off_shift",
        "f_away": "on_leave",
        "f_full": "capacity",
        "f_urgent": "urgent_job",
        "f_nowhere": "no_position",
        # the test organisation's own facilities engineers hold no skill at all
        "fac1": "skill",
        "fac_lead": "skill",
    }
    assert reasons["f_novice"].zh.startswith("技能不符: 需要 空调 ≥ 3 级")
    assert "air" not in reasons["f_novice"].zh and "空调 ≥ 3" in reasons["f_novice"].en
    assert reasons["f_night"].zh == "不在班次内" and reasons["f_away"].en == "on leave"
    assert "上限 1" in reasons["f_full"].zh
    assert "P1" in reasons["f_urgent"].zh

    # The same P1 engineer may take a job as urgent as the one they are on.
    with time_machine.travel(MONDAY_10, tick=False):
        other = work_order(db_session, "facilities", "P1")
        names = [b.username for b in recommend(db_session, other).ranked]
    assert "f_urgent" in names and "f_full" not in names


def test_a_night_shift_covers_the_small_hours_of_the_next_day(db_session):
    skills(db_session)
    night = [{"weekday": 0, "start": "22:00", "end": "06:00"}]
    engineer(db_session, "f_night", "facilities", {"air_conditioning": 4}, home=NEAR, shifts=night)
    flow = work_order(db_session, "facilities", "P3")
    for moment, on in [
        (datetime(2026, 12, 1, 5, 0, tzinfo=SHANGHAI), True),  # Tuesday 05:00
        (datetime(2026, 12, 1, 7, 0, tzinfo=SHANGHAI), False),
        (datetime(2026, 11, 30, 23, 0, tzinfo=SHANGHAI), True),  # Monday 23:00
        (datetime(2026, 11, 30, 21, 0, tzinfo=SHANGHAI), False),
    ]:
        with time_machine.travel(moment, tick=False):
            ranking = recommend(db_session, flow)
        assert ("f_night" in {b.username for b in ranking.ranked}) is on, moment


# ---------------------------------------------------------------- positions


def test_a_change_in_position_changes_the_ranking(db_session):
    skills(db_session)
    with time_machine.travel(MONDAY_10, tick=False):
        near = engineer(db_session, "n_near", "network", {"network": 3}, at=NEAR, home=FAR)
        far = engineer(db_session, "n_far", "network", {"network": 3}, at=FAR, home=FAR)
        flow = work_order(db_session, "network", "P3")
        first = recommend(db_session, flow)
        assert [b.username for b in first.ranked][:2] == ["n_near", "n_far"]

        service.report_position(
            db_session=db_session, user=near, lat=FAR[0], lng=FAR[1], accuracy_m=5
        )
        service.report_position(
            db_session=db_session, user=far, lat=NEAR[0], lng=NEAR[1], accuracy_m=5
        )
        second = recommend(db_session, flow)
        assert [b.username for b in second.ranked][:2] == ["n_far", "n_near"]
        assert second.ranked[0].parts["travel"] < first.ranked[1].parts["travel"] + 0.01

    # 31 minutes later the live positions are stale: both fall back to their home base (FAR),
    # unless they checked in today, which says more than home.
    with time_machine.travel(MONDAY_10 + timedelta(minutes=31), tick=False):
        here = service.position_of(
            db_session=db_session, user=near, now=MONDAY_10 + timedelta(minutes=31)
        )
        assert (here.source, here.lat) == ("home", FAR[0])


def test_todays_check_in_is_the_position_when_the_phone_is_silent(db_session):
    skills(db_session)
    with time_machine.travel(MONDAY_10, tick=False):
        fac = engineer(db_session, "f_here", "facilities", {"air_conditioning": 4}, home=FAR)
        repair = Flow(
            db_session,
            "alice",
            "equipment_repair",
            title="空调",
            category="facilities",
            priority="P3",
            region="shanghai",
            device_no="DEV-T-2",
        )
        repair.do("task_dispatch", "desk", engineer="f_here", parts_needed=False)
        check_in(
            db_session=db_session,
            user=fac,
            device_no="DEV-T-2",
            ticket_id=repair.ticket.id,
            lat=NEAR[0],
            lng=NEAR[1],
        )
        here = service.position_of(db_session=db_session, user=fac, now=MONDAY_10)
    assert (here.source, here.lat, here.lng) == ("checkin", NEAR[0], NEAR[1])
    tomorrow = MONDAY_10 + timedelta(days=1)
    assert service.position_of(db_session=db_session, user=fac, now=tomorrow).source == "home"


def test_work_done_today_and_a_device_fixed_before_are_weighed(db_session):
    skills(db_session)
    with time_machine.travel(MONDAY_10, tick=False):
        engineer(db_session, "n_busy", "network", {"network": 3}, home=NEAR)
        engineer(db_session, "n_fresh", "network", {"network": 3}, home=NEAR)
        done = work_order(db_session, "network", "P3", device_no="DEV-T-2")
        claim(
            db_session=db_session,
            user=user(db_session, "n_busy"),
            task_id=done.task("task_handle").id,
        )
    with time_machine.travel(MONDAY_10 + timedelta(hours=2), tick=False):
        done.do("task_handle", "n_busy", solution="更换模块", time_spent_minutes=100)
        flow = work_order(db_session, "network", "P3")
        people = {
            c.username: c
            for c in service.candidates_for(
                db_session=db_session,
                ticket=flow.ticket,
                group_code=None,
                now=MONDAY_10 + timedelta(hours=2),
            )
        }
        assert people["n_busy"].minutes_worked_today == pytest.approx(120, abs=0.1)
        assert people["n_fresh"].minutes_worked_today == 0
        assert [b.username for b in recommend(db_session, flow).ranked][:2] == ["n_fresh", "n_busy"]

        # On the device n_busy repaired, the familiarity bonus outweighs the fairness cost.
        again = work_order(db_session, "network", "P3", device_no="DEV-T-2")
        people = {
            c.username: c
            for c in service.candidates_for(
                db_session=db_session,
                ticket=again.ticket,
                group_code=None,
                now=MONDAY_10 + timedelta(hours=2),
            )
        }
        assert people["n_busy"].devices_fixed == frozenset({"DEV-T-2"})
        best = recommend(db_session, again).ranked[0]
        assert (best.username, best.parts["familiarity"]) == ("n_busy", -20.0)


# ---------------------------------------------------------------- assigning by hand


def test_an_override_needs_a_reason_and_is_audited(db_session):
    skills(db_session)
    with time_machine.travel(MONDAY_10, tick=False):
        engineer(db_session, "n_best", "network", {"network": 4}, at=NEAR)
        engineer(db_session, "n_second", "network", {"network": 4}, at=FAR)
        flow = work_order(db_session, "network", "P3")
        desk = user(db_session, "desk")
        with pytest.raises(InvalidInput) as refused:
            service.assign(
                db_session=db_session, user=desk, ticket_id=flow.ticket.id, username="n_second"
            )
        assert refused.value.errors == {"reason": ["required when overriding the recommendation"]}
        assert "n_best" in refused.value.zh
        # an excluded engineer is an override too, and the refusal says why they were excluded
        with pytest.raises(InvalidInput) as refused:
            service.assign(
                db_session=db_session, user=desk, ticket_id=flow.ticket.id, username="net1"
            )
        assert "技能不符" in refused.value.zh

        decision = service.assign(
            db_session=db_session,
            user=desk,
            ticket_id=flow.ticket.id,
            username="n_second",
            reason="客户指定",
        )
        db_session.commit()
    assert (decision.chosen, decision.decided_by, decision.reason, decision.mode) == (
        "n_second",
        "desk",
        "客户指定",
        "dispatcher",
    )
    assert [row["username"] for row in decision.ranking["ranked"]] == ["n_best", "n_second"]
    assert decision.ranking["job"]["required_skills"] == {"network": 2}
    assert flow.task("task_handle").assignee == "n_second"
    audit = db_session.scalars(
        select(AuditEntry).where(AuditEntry.action == "task.dispatch.override")
    ).one()
    assert (audit.actor, audit.after["reason"], audit.after["recommended"]) == (
        "desk",
        "客户指定",
        "n_best",
    )
    event = flow.events("task_dispatched")[-1]
    assert (event.actor, event.data["reason"], event.data["to"]["assignee"]) == (
        "desk",
        "客户指定",
        "n_second",
    )
    assert service.latest_decision(db_session=db_session, ticket_id=flow.ticket.id) == decision

    # Not begun yet: the dispatcher may still change the choice (the top one needs no reason).
    again = service.assign(
        db_session=db_session, user=desk, ticket_id=flow.ticket.id, username="n_best"
    )
    assert again.reason is None and flow.task("task_handle").assignee == "n_best"


def test_only_dispatchers_and_admins_assign(db_session):
    skills(db_session)
    engineer(db_session, "n_one", "network", {"network": 4}, home=NEAR)
    flow = work_order(db_session, "network", "P3")
    with pytest.raises(NotAllowed):
        service.assign(
            db_session=db_session,
            user=user(db_session, "net1"),
            ticket_id=flow.ticket.id,
            username="n_one",
        )
    with pytest.raises(NotAllowed):
        recommend(db_session, flow, as_user="net1")


def test_work_in_progress_is_never_dispatched_again(db_session):
    skills(db_session)
    engineer(db_session, "n_one", "network", {"network": 4}, home=NEAR)
    engineer(db_session, "n_two", "network", {"network": 4}, home=NEAR)
    flow = work_order(db_session, "network", "P3")
    claim(
        db_session=db_session, user=user(db_session, "n_one"), task_id=flow.task("task_handle").id
    )
    with pytest.raises(Conflict) as refused:
        service.assign(
            db_session=db_session,
            user=user(db_session, "admin"),
            ticket_id=flow.ticket.id,
            username="n_two",
            reason="试试",
        )
    assert "转派" in refused.value.zh
    assert flow.task("task_handle").assignee == "n_one"


# ---------------------------------------------------------------- automatic


def test_auto_mode_assigns_as_the_task_opens_and_stores_the_decision(db_session):
    skills(db_session)
    configure(db_session, "network", "auto")
    with time_machine.travel(MONDAY_10, tick=False):
        engineer(db_session, "n_near", "network", {"network": 3}, at=NEAR)
        engineer(db_session, "n_far", "network", {"network": 3}, at=FAR)
        flow = work_order(db_session, "network", "P3")
    task = flow.task("task_handle")
    assert task.assignee == "n_near"
    decision = service.latest_decision(db_session=db_session, ticket_id=flow.ticket.id)
    assert (decision.mode, decision.chosen, decision.decided_by, decision.task_id) == (
        "auto",
        "n_near",
        None,
        task.id,
    )
    ranking = decision.ranking
    assert [row["username"] for row in ranking["ranked"]] == ["n_near", "n_far"]
    assert set(ranking["ranked"][0]["parts"]) == {
        "travel",
        "load",
        "sla_risk",
        "fairness",
        "familiarity",
    }
    assert ranking["ranked"][0]["position_source"] == "live"
    assert {row["username"]: row["code"] for row in ranking["excluded"]} == {
        "net1": "skill",
        "net_lead": "skill",
    }
    assert ranking["excluded"][0]["zh"].startswith("技能不符: 需要 网络 ≥ 2 级")
    assert ranking["job"]["deadline"] == task.due_at.isoformat()
    (event,) = flow.events("task_dispatched")
    assert event.actor is None and event.data["to"]["assignee"] == "n_near"


def test_the_history_names_the_dispatch(db_session, pages):
    skills(db_session)
    configure(db_session, "network", "auto")
    with time_machine.travel(MONDAY_10, tick=False):
        engineer(db_session, "n_near", "network", {"network": 3}, at=NEAR)
        flow = work_order(db_session, "network", "P3")
        db_session.commit()
        ticket_page = pages("desk").get(f"/tickets/{flow.ticket.id}").get_data(as_text=True)
        assert "派单：技术组处理" in ticket_page
        task_page = pages("n_near", "en").get(f"/tasks/{flow.task('task_handle').id}")
    assert task_page.status_code == 200
    assert "Dispatched automatically to" in task_page.get_data(as_text=True)


def test_without_anyone_eligible_an_auto_task_stays_with_its_group(db_session):
    skills(db_session)
    configure(db_session, "network", "auto")
    flow = work_order(db_session, "network", "P3")
    assert flow.task("task_handle").assignee is None
    assert service.latest_decision(db_session=db_session, ticket_id=flow.ticket.id) is None

    # Once someone qualifies, the job assigns what waits.
    engineer(db_session, "n_late", "network", {"network": 3}, home=NEAR)
    db_session.commit()
    assert assign_waiting_tasks(db_session=db_session) == 1
    assert flow.task("task_handle").assignee == "n_late"
    assert service.latest_decision(db_session=db_session, ticket_id=flow.ticket.id).mode == "batch"
    assert assign_waiting_tasks(db_session=db_session) == 0


def test_waiting_tasks_are_assigned_together_by_minimum_total_cost(db_session):
    skills(db_session)
    configure(db_session, "network", "auto")
    west, east = (31.2304, 121.40), (31.2304, 121.55)
    with time_machine.travel(MONDAY_10, tick=False):
        first = work_order(
            db_session, "network", "P3", location={**SITE, "lat": west[0], "lng": west[1]}
        )
        second = work_order(
            db_session, "network", "P3", location={**SITE, "lat": east[0], "lng": east[1]}
        )
        # Both wait (nobody qualified); then two engineers arrive, one near each job.
        engineer(db_session, "n_west", "network", {"network": 3}, at=west, capacity=1)
        engineer(db_session, "n_east", "network", {"network": 3}, at=east, capacity=1)
        decisions = assign_waiting(db_session=db_session, group_code="network", now=MONDAY_10)
    assert len(decisions) == 2 and {d.mode for d in decisions} == {"batch"}
    assert first.task("task_handle").assignee == "n_west"
    assert second.task("task_handle").assignee == "n_east"


def test_an_urgent_arrival_replans_only_what_nobody_has_begun(db_session):
    skills(db_session)
    configure(db_session, "facilities", "auto")
    far_site = {**SITE, "lat": FAR[0], "lng": FAR[1]}
    with time_machine.travel(MONDAY_10, tick=False):
        a = engineer(db_session, "f_a", "facilities", {"air_conditioning": 4}, at=NEAR, capacity=1)
        engineer(db_session, "f_b", "facilities", {"air_conditioning": 4}, at=NEAR, capacity=1)
        # A repair dispatched automatically to f_a, who checked in at the device: begun.
        begun = work_order(db_session, "facilities", "P3", device_no="DEV-T-2")
        assert begun.task("task_handle").assignee == "f_a"
        check_in(
            db_session=db_session,
            user=a,
            device_no="DEV-T-2",
            ticket_id=begun.ticket.id,
            lat=NEAR[0],
            lng=NEAR[1],
        )
        db_session.commit()
        # A P3 far away goes to f_b (f_a is full), who has not begun it.
        waiting = work_order(db_session, "facilities", "P3", location=far_site)
        assert waiting.task("task_handle").assignee == "f_b"
        # f_c starts out there, and a P1 comes in next to f_a and f_b: the plan sends f_b to
        # the P1 and gives the far job to f_c; f_a's begun job does not move.
        engineer(db_session, "f_c", "facilities", {"air_conditioning": 4}, at=FAR, capacity=1)
        urgent = work_order(db_session, "facilities", "P1")
    assert begun.task("task_handle").assignee == "f_a"
    assert urgent.task("task_handle").assignee == "f_b"
    assert waiting.task("task_handle").assignee == "f_c"
    moved = service.latest_decision(db_session=db_session, ticket_id=waiting.ticket.id)
    assert (moved.mode, moved.ranking["batch"]["replanned"]) == ("batch", "f_b")
    assert len(begun.events("task_dispatched")) == 1
    with pytest.raises(Conflict):
        service.assign(
            db_session=db_session,
            user=user(db_session, "admin"),
            ticket_id=begun.ticket.id,
            username="f_c",
            reason="重新安排",
        )


def test_a_dispatchers_own_choice_is_not_replanned(db_session):
    skills(db_session)
    configure(db_session, "facilities", "auto")
    with time_machine.travel(MONDAY_10, tick=False):
        engineer(db_session, "f_b", "facilities", {"air_conditioning": 4}, at=NEAR, capacity=1)
        engineer(db_session, "f_c", "facilities", {"air_conditioning": 4}, at=FAR, capacity=1)
        chosen = work_order(
            db_session, "facilities", "P3", location={**SITE, "lat": FAR[0], "lng": FAR[1]}
        )
        # the system gave it to f_c (nearest); the dispatcher insists on f_b, with a reason
        service.assign(
            db_session=db_session,
            user=user(db_session, "desk"),
            ticket_id=chosen.ticket.id,
            username="f_b",
            reason="熟悉该客户",
        )
        db_session.commit()
        urgent = work_order(db_session, "facilities", "P1")
    assert chosen.task("task_handle").assignee == "f_b"
    assert urgent.task("task_handle").assignee == "f_c"


# ---------------------------------------------------------------- the pool


def test_the_pool_shows_qualified_engineers_its_tasks_and_one_grab_wins(db_session):
    skills(db_session)
    configure(db_session, "hardware", "pool", wait=30)
    with time_machine.travel(MONDAY_10, tick=False):
        engineer(db_session, "h_pc", "hardware", {"pc": 3}, home=NEAR)
        engineer(db_session, "h_other", "hardware", {"pc": 3}, home=FAR)
        engineer(db_session, "h_novice", "hardware", {"pc": 1}, home=NEAR)
        flow = work_order(db_session, "hardware", "P3")
        task = flow.task("task_handle")
        assert task.assignee is None
        assert [
            t.id for t in service.pool(db_session=db_session, user=user(db_session, "h_pc"))
        ] == [task.id]
        # P3 needs pc ≥ 2: the novice does not see it, and may not grab it either
        assert service.pool(db_session=db_session, user=user(db_session, "h_novice")) == []
        with pytest.raises(NotAllowed) as refused:
            service.grab(db_session=db_session, user=user(db_session, "h_novice"), task_id=task.id)
        assert "技能不符" in refused.value.zh
        # A claim from the inbox's group queue is a grab: the same check, the same decision.
        with pytest.raises(NotAllowed) as refused:
            claim(db_session=db_session, user=user(db_session, "h_novice"), task_id=task.id)
        assert "技能不符" in refused.value.zh

        grabbed = claim(db_session=db_session, user=user(db_session, "h_other"), task_id=task.id)
        db_session.commit()
        assert grabbed.assignee == "h_other"
        with pytest.raises(Conflict) as lost:
            service.grab(db_session=db_session, user=user(db_session, "h_pc"), task_id=task.id)
        assert "h_other" in lost.value.zh
    decision = service.latest_decision(db_session=db_session, ticket_id=flow.ticket.id)
    assert (decision.mode, decision.chosen, decision.decided_by) == ("pool", "h_other", "h_other")
    (event,) = flow.events("task_claimed")
    assert event.actor == "h_other"
    with pytest.raises(NotAllowed):
        service.pool(db_session=db_session, user=user(db_session, "desk"))


def test_pool_tasks_nobody_grabs_are_assigned_after_the_wait_once(db_session):
    skills(db_session)
    configure(db_session, "hardware", "pool", wait=30)
    with time_machine.travel(MONDAY_10, tick=False):
        engineer(db_session, "h_pc", "hardware", {"pc": 3}, home=NEAR)
        flow = work_order(db_session, "hardware", "P3")
        db_session.commit()
    with time_machine.travel(MONDAY_10 + timedelta(minutes=29), tick=False):
        assert assign_waiting_tasks(db_session=db_session) == 0
    with time_machine.travel(MONDAY_10 + timedelta(minutes=31), tick=False):
        assert assign_waiting_tasks(db_session=db_session) == 1
        assert assign_waiting_tasks(db_session=db_session) == 0
    assert flow.task("task_handle").assignee == "h_pc"
    decisions = db_session.scalars(
        select(DispatchDecision).where(DispatchDecision.ticket_id == flow.ticket.id)
    ).all()
    assert [(d.mode, d.decided_by) for d in decisions] == [("batch", None)]
    assert len(flow.events("task_dispatched")) == 1


def test_without_a_config_a_dispatcher_chooses(db_session):
    skills(db_session)
    engineer(db_session, "n_one", "network", {"network": 3}, home=NEAR)
    flow = work_order(db_session, "network", "P3")
    assert flow.task("task_handle").assignee is None
    assert service.dispatchable_task(db_session=db_session, ticket=flow.ticket).element_id == (
        "task_handle"
    )
    assert [b.username for b in recommend(db_session, flow).ranked] == ["n_one"]
    assert (
        db_session.scalars(
            select(ProcessEvent).where(ProcessEvent.event_type == "task_dispatched")
        ).all()
        == []
    )


# ---------------------------------------------------------------- the vectorised ranking


def _table(candidates: list[Candidate], codes: list[str], device: str) -> CandidateTable:
    ordered = sorted(candidates, key=lambda c: c.username)
    return CandidateTable(
        user_ids=list(range(len(ordered))),
        usernames=[c.username for c in ordered],
        names=[c.name for c in ordered],
        lat=np.array([np.nan if c.lat is None else c.lat for c in ordered]),
        lng=np.array([np.nan if c.lng is None else c.lng for c in ordered]),
        sources=[c.position_source for c in ordered],
        skills={code: np.array([c.skills.get(code, 0) for c in ordered]) for code in codes},
        skill_names={code: code.upper() for code in codes},
        on_shift=np.array([c.on_shift for c in ordered]),
        on_leave=np.array([c.on_leave for c in ordered]),
        open_jobs=np.array([[c.open_jobs.get(p, 0) for p in PRIORITIES] for c in ordered]),
        capacity=np.array([c.capacity for c in ordered]),
        minutes_today=np.array([c.minutes_worked_today for c in ordered]),
        device_no=device,
        fixed_device=np.array([device in c.devices_fixed for c in ordered]),
    )


@pytest.mark.parametrize("seed", range(5))
def test_the_table_ranking_is_the_single_decision_ranking(seed):
    rng = random.Random(seed)
    now = MONDAY_10
    candidates = []
    for k in range(300):
        known = rng.random() > 0.05
        candidates.append(
            Candidate(
                username=f"e{k:03d}",
                name=f"E{k}",
                lat=31 + rng.random() if known else None,
                lng=121 + rng.random() if known else None,
                position_source="live" if known else "none",
                skills={"pc": rng.randint(0, 5)},
                skill_names={"pc": "PC"},
                on_shift=rng.random() > 0.1,
                on_leave=rng.random() < 0.05,
                open_jobs={p: rng.randint(0, 1) for p in PRIORITIES if rng.random() < 0.3},
                capacity=rng.randint(1, 6),
                minutes_worked_today=rng.random() * 400,
                devices_fixed=frozenset({"D1"}) if rng.random() < 0.1 else frozenset(),
            )
        )
    job = Job(
        key="1",
        lat=31.5,
        lng=121.5,
        priority=rng.choice(PRIORITIES),
        required_skills={"pc": rng.randint(1, 4)},
        deadline=now + timedelta(minutes=rng.randint(10, 300)),
        device_no="D1",
    )
    weights = Weights(fairness=0.2)
    expected = rank(candidates, job, now=now, weights=weights)
    got = rank_table(
        _table(candidates, ["pc"], "D1"),
        job,
        now=now,
        weights=weights,
        keep_ranked=1000,
        keep_excluded=1000,
    )
    assert [b.username for b in got.ranking.ranked] == [b.username for b in expected.ranked]
    assert [round(b.total, 6) for b in got.ranking.ranked] == [
        round(b.total, 6) for b in expected.ranked
    ]
    assert got.ranking.excluded == expected.excluded
    assert got.eligible == len(expected.ranked)
    assert sum(got.excluded_counts.values()) == len(expected.excluded)

    cut = rank_table(
        _table(candidates, ["pc"], "D1"),
        job,
        now=now,
        weights=weights,
        keep_ranked=3,
        keep_excluded=2,
        always=expected.ranked[-1].username,
    )
    assert [b.username for b in cut.ranking.ranked] == [
        b.username for b in [*expected.ranked[:3], expected.ranked[-1]]
    ]
    assert len(cut.ranking.excluded) == 2


def test_a_job_without_location_ranks_without_travel(db_session):
    candidates = [
        Candidate("a", "A", None, None, "none", {}, {}, True, False, {}, 3, 50.0, frozenset()),
        Candidate("b", "B", 31.0, 121.0, "home", {}, {}, True, False, {}, 3, 10.0, frozenset()),
    ]
    job = Job("1", None, None, "P3", {}, None)
    got = rank_table(_table(candidates, [], ""), job, now=MONDAY_10)
    assert [b.username for b in got.ranking.ranked] == ["b", "a"]
    assert replace(got.ranking.ranked[0]).travel_minutes == 0
