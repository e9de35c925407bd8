"""SLA policies and the SLA clock: first match wins, pauses for parts move the deadline by the
paused working time, a new priority counts from the original start, 24×7 against working
hours, the response stops at the first action or the check-in, the ledger is JSON-ready."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from app.auth.service import find_user
from app.errors import Conflict, InvalidInput
from app.extensions import db
from app.sla import clock as sla_clock
from app.sla.calendars_service import ensure_default_calendars, load_calendar
from app.sla.policies import (
    create_policy,
    delete_policy,
    match_policy,
    reorder_policies,
    update_policy,
)
from app.tickets.service import update_ticket
from tests.conftest import SHANGHAI
from tests.flows import Flow

# Thursday 26 November 2026, 09:00 in Shanghai: a working day.
THURSDAY_9 = datetime(2026, 11, 26, 9, 0, tzinfo=SHANGHAI)


@pytest.fixture
def calendars(db_session):
    """{"workday": id of the standard working-hours calendar, "24x7": the round-the-clock one}."""
    ensure_default_calendars(db_session)
    db_session.flush()
    table = db.metadata.tables["business_calendar"]
    ids = dict(db_session.execute(select(table.c.code, table.c.id)).all())
    return {"workday": ids["standard"], "24x7": ids["24x7"]}


def policy(db_session, calendars, title, calendar="workday", **values):
    values = {
        "response_minutes": 60,
        "resolution_minutes": 480,
        "calendar_id": calendars[calendar],
        **values,
    }
    return create_policy(db_session=db_session, values={"name": title, **values}, actor="admin")


def repair(db_session, **fields):
    fields = {
        "category": "facilities",
        "priority": "P3",
        "region": "shanghai",
        "device_no": "DEV-T-2",
        **fields,
    }
    return Flow(db_session, "alice", "equipment_repair", **fields)


def at(moment: datetime):
    return time_machine.travel(moment, tick=False)


def clocks(flow, now: datetime) -> dict[str, dict]:
    """The ledger as the work-order page shows it at ``now``."""
    return {c["kind"]: c for c in sla_clock.ledger(flow.db, flow.ticket.id, now)}


def utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def test_a_pause_for_parts_moves_the_deadline_by_exactly_the_paused_working_time(
    db_session, calendars
):
    policy(
        db_session,
        calendars,
        "现场维修",
        process_key="equipment_repair",
        response_event="checkin",
        pause_on=["备件申领"],
    )
    workday = load_calendar(db_session, calendars["workday"])
    with at(THURSDAY_9):
        flow = repair(db_session)
    before = clocks(flow, THURSDAY_9)["resolution"]
    deadline_before = datetime.fromisoformat(before["deadline"])
    assert deadline_before == workday.add(THURSDAY_9, 480)
    assert before["state"] == "running" and before["policy"]["name"] == "现场维修"

    paused_at = THURSDAY_9 + timedelta(hours=1)
    with at(paused_at):
        flow.do("task_dispatch", "desk", engineer="fac1", parts_needed=True, parts_list="电容")
    during = clocks(flow, paused_at)["resolution"]
    assert during["state"] == "paused"
    assert during["intervals"][-1]["reason"] == "备件申领"
    assert during["elapsed_minutes"] == 60

    resumed_at = paused_at + timedelta(days=3)  # Sunday 10:00: parts in after three days
    with at(resumed_at):
        flow.do("task_parts", "parts", parts_issued=True, parts_note="已出库")
    after = clocks(flow, resumed_at)["resolution"]
    assert after["state"] == "running"
    assert [i["state"] for i in after["intervals"]] == ["running", "paused", "running"]
    deadline_after = datetime.fromisoformat(after["deadline"])
    paused_minutes = workday.working_minutes(paused_at, resumed_at)
    assert paused_minutes > 0
    assert after["paused_minutes"] == round(paused_minutes, 1)
    assert workday.working_minutes(deadline_before, deadline_after) == pytest.approx(paused_minutes)
    assert deadline_after == workday.add(deadline_before, paused_minutes)
    assert after["started_at"] == utc(THURSDAY_9), "the start never moves"
    # The response clock (arrival on site) paused with it and still waits for the check-in.
    assert clocks(flow, resumed_at)["response"]["stopped_at"] is None


def test_raising_the_priority_recomputes_from_the_original_start(db_session, calendars):
    policy(db_session, calendars, "紧急维修", priority="P1", resolution_minutes=180)
    policy(db_session, calendars, "维修", pause_on=["备件申领"], resolution_minutes=960)
    workday = load_calendar(db_session, calendars["workday"])
    with at(THURSDAY_9):
        flow = repair(db_session)
    assert clocks(flow, THURSDAY_9)["resolution"]["target_minutes"] == 960
    with at(THURSDAY_9 + timedelta(hours=1)):
        flow.do("task_dispatch", "desk", engineer="fac1", parts_needed=True, parts_list="电容")
    with at(THURSDAY_9 + timedelta(hours=2)):
        flow.do("task_parts", "parts", parts_issued=True)

    raised_at = THURSDAY_9 + timedelta(hours=2, minutes=30)
    with at(raised_at):
        desk = find_user(db_session=db_session, username="desk")
        update_ticket(
            db_session=db_session, user=desk, ticket_id=flow.ticket.id, values={"priority": "P1"}
        )
        db_session.commit()
    resolution = clocks(flow, raised_at)["resolution"]
    assert resolution["policy"]["name"] == "紧急维修"
    assert resolution["target_minutes"] == 180
    assert resolution["started_at"] == utc(THURSDAY_9)
    # 60 minutes ran before the pause; the other 120 count from the resume at 11:00.
    expected = workday.add(THURSDAY_9 + timedelta(hours=2), 120)
    assert datetime.fromisoformat(resolution["deadline"]) == expected
    assert resolution["elapsed_minutes"] == 90  # 09–10 and 11–11:30; the pause excluded
    assert resolution["percent_used"] == 50


def test_triage_raising_the_priority_in_the_process_selects_the_new_policy(db_session, calendars):
    policy(
        db_session,
        calendars,
        "IT P1",
        process_key="it_service",
        priority="P1",
        resolution_minutes=120,
    )
    policy(db_session, calendars, "IT", process_key="it_service", resolution_minutes=960)
    with at(THURSDAY_9):
        flow = Flow(db_session, "alice", "it_service", title="整层断网", region="beijing")
    with at(THURSDAY_9 + timedelta(minutes=20)):
        flow.do(
            "task_triage",
            "desk",
            resolution="forward",
            triage_note="整层断网",
            category="network",
            priority="P1",
            region="beijing",
        )
    found = clocks(flow, THURSDAY_9 + timedelta(minutes=20))
    assert found["resolution"]["policy"]["name"] == "IT P1"
    assert found["resolution"]["deadline"] == utc(THURSDAY_9 + timedelta(hours=2))
    # The desk's triage was the first response.
    assert found["response"]["stopped_at"] == utc(THURSDAY_9 + timedelta(minutes=20))
    assert found["response"]["state"] == "stopped" and not found["response"]["breached"]


def test_a_24x7_policy_runs_through_the_weekend_a_working_hours_one_does_not(db_session, calendars):
    policy(
        db_session, calendars, "紧急 24×7", calendar="24x7", priority="P1", resolution_minutes=240
    )
    policy(db_session, calendars, "工作时间", resolution_minutes=240)
    workday = load_calendar(db_session, calendars["workday"])
    friday_17 = datetime(2026, 11, 27, 17, 0, tzinfo=SHANGHAI)
    with at(friday_17):
        urgent = repair(db_session, priority="P1")
        normal = repair(db_session, priority="P3")

    urgent_deadline = datetime.fromisoformat(clocks(urgent, friday_17)["resolution"]["deadline"])
    normal_deadline = datetime.fromisoformat(clocks(normal, friday_17)["resolution"]["deadline"])
    assert urgent_deadline == friday_17 + timedelta(hours=4)  # Friday 21:00
    assert normal_deadline == workday.add(friday_17, 240)
    assert normal_deadline.astimezone(SHANGHAI).weekday() == 0, "due on Monday"
    with at(friday_17 + timedelta(hours=5)):
        assert clocks(urgent, friday_17 + timedelta(hours=5))["resolution"]["breached"] is True
        assert clocks(normal, friday_17 + timedelta(hours=5))["resolution"]["breached"] is False


def test_the_first_matching_policy_wins_and_the_order_is_editable(db_session, calendars):
    broad = policy(db_session, calendars, "全部维修", process_key="equipment_repair")
    narrow = policy(db_session, calendars, "设施 P2", category="facilities", priority="P2")
    flow = repair(db_session, priority="P2")
    assert match_policy(db_session, flow.ticket) == broad
    reorder_policies(db_session=db_session, policy_ids=[narrow.id, broad.id], actor="admin")
    assert match_policy(db_session, flow.ticket) == narrow
    update_policy(db_session=db_session, policy_id=narrow.id, values={"active": False})
    assert match_policy(db_session, flow.ticket) == broad, "an inactive policy is skipped"
    assert match_policy(db_session, repair(db_session, priority="P4").ticket) == broad
    update_policy(db_session=db_session, policy_id=broad.id, values={"process_key": "it_service"})
    assert match_policy(db_session, flow.ticket) is None


def test_without_a_matching_policy_a_ticket_has_no_clock(db_session, calendars):
    policy(db_session, calendars, "仅 IT", process_key="it_service")
    flow = repair(db_session)
    assert sla_clock.ledger(db_session, flow.ticket.id) == []


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"resolution_minutes": 0}, "resolution_minutes"),
        ({"response_minutes": "一小时"}, "response_minutes"),
        ({"priority": "P9"}, "priority"),
        ({"calendar_id": 987654}, "calendar_id"),
        ({"reminder_percent": 120}, "reminder_percent"),
        ({"pause_on": "备件申领"}, "pause_on"),
        ({"escalation_levels": [{"percent": 75, "notify": ["boss"]}]}, "escalation_levels"),
        (
            {
                "escalation_levels": [
                    {"percent": 100, "notify": ["manager"]},
                    {"percent": 50, "notify": ["assignee"]},
                ]
            },
            "escalation_levels",
        ),
        ({"response_event": "arrival"}, "response_event"),
        ({"name": "  "}, "name"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_policy_input_names_the_field(db_session, calendars, values, field):
    with pytest.raises(InvalidInput) as raised:
        policy(db_session, calendars, "坏策略", **values)
    assert field in raised.value.errors
    assert field in raised.value.zh and field in raised.value.en


def test_a_missing_target_and_a_taken_name_are_named(db_session, calendars):
    with pytest.raises(InvalidInput) as raised:
        create_policy(db_session=db_session, values={"name": "无时限"})
    assert set(raised.value.errors) == {"response_minutes", "resolution_minutes", "calendar_id"}
    policy(db_session, calendars, "标准")
    with pytest.raises(InvalidInput) as raised:
        policy(db_session, calendars, "标准")
    assert "name" in raised.value.errors


def test_escalation_levels_and_reminder_default_and_are_kept(db_session, calendars):
    created = policy(db_session, calendars, "默认")
    assert [level["percent"] for level in created.escalation_levels] == [50, 75, 100, 150]
    assert created.escalation_levels[2]["notify"] == ["group_lead", "manager"]
    assert created.reminder_percent == 75
    changed = update_policy(
        db_session=db_session, policy_id=created.id, values={"reminder_percent": 80}
    )
    assert changed.reminder_percent == 80


def test_check_in_stops_the_response_and_closing_stops_the_resolution(db_session, calendars):
    from app.site.service import check_in

    policy(db_session, calendars, "现场", response_event="checkin", response_minutes=120)
    with at(THURSDAY_9):
        flow = repair(db_session)
    with at(THURSDAY_9 + timedelta(minutes=10)):
        flow.do("task_dispatch", "desk", engineer="fac1", parts_needed=False)
    assert clocks(flow, THURSDAY_9 + timedelta(minutes=10))["response"]["state"] == "running", (
        "dispatch is not arrival on site"
    )
    arrived = THURSDAY_9 + timedelta(hours=3)  # 12:00; 2 working hours ran out at 11:00
    with at(arrived):
        fac1 = find_user(db_session=db_session, username="fac1")
        check_in(db_session=db_session, user=fac1, device_no="DEV-T-2", ticket_id=flow.ticket.id)
        db_session.commit()
    response = clocks(flow, arrived)["response"]
    assert response["stopped_at"] == utc(arrived)
    assert response["breached"] is True
    assert response["breached_at"] == utc(THURSDAY_9 + timedelta(hours=2))

    with at(arrived + timedelta(hours=1)):
        flow.do("task_onsite", "fac1", fault_cause="电容老化", work_done="更换电容")
    with at(arrived + timedelta(hours=2)):
        flow.do("task_acceptance", "alice", acceptance_result="accept", csat=5)
    resolution = clocks(flow, arrived + timedelta(hours=2))["resolution"]
    assert flow.ticket.status == "closed"
    assert resolution["stopped_at"] == utc(arrived + timedelta(hours=2))
    assert resolution["breached"] is False and resolution["state"] == "stopped"
    # The ledger goes to the API and the page as it is.
    json.dumps(sla_clock.ledger(db_session, flow.ticket.id))


def test_pause_resume_and_stop_are_idempotent(db_session, calendars):
    policy(db_session, calendars, "标准")
    with at(THURSDAY_9):
        flow = repair(db_session)
    ticket = flow.ticket
    later = THURSDAY_9 + timedelta(hours=1)
    assert len(sla_clock.pause(db_session, ticket, "waiting_customer", later)) == 2
    assert sla_clock.pause(db_session, ticket, "waiting_customer", later) == []
    assert len(sla_clock.resume(db_session, ticket, later + timedelta(hours=1))) == 2
    assert sla_clock.resume(db_session, ticket, later + timedelta(hours=2)) == []
    stopped = sla_clock.stop(db_session, ticket, "resolution", later + timedelta(hours=2))
    again = sla_clock.stop(db_session, ticket, "resolution", later + timedelta(hours=4))
    assert again.stopped_at == stopped.stopped_at == (later + timedelta(hours=2)).astimezone(UTC)
    resolution = clocks(flow, later + timedelta(hours=5))["resolution"]
    assert [i["state"] for i in resolution["intervals"]] == ["running", "paused", "running"]
    assert resolution["elapsed_minutes"] == 120  # 09–10 and 11–12: the pause is not counted


def test_a_policy_in_use_cannot_be_deleted_but_an_unused_one_can(db_session, calendars):
    used = policy(db_session, calendars, "在用")
    unused = policy(db_session, calendars, "闲置", process_key="it_service")
    repair(db_session)
    with pytest.raises(Conflict):
        delete_policy(db_session=db_session, policy_id=used.id)
    delete_policy(db_session=db_session, policy_id=unused.id)
