"""A user task's due date follows the work order's SLA clock: the response deadline while
nobody has responded, then the resolution deadline, on the business calendar; held while the
clock is paused, which every page shows as "已暂停 / Paused" (never as a date in 9999) and the
API as the held date with `paused: true`. Without a policy the diagram's own expression stays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app import engine
from app.auth.service import find_user
from app.demo import shipped_files
from app.dispatch.stepchoice import rank_step
from app.sla import clock as sla_clock
from app.sla.clock import NEVER
from tests.conftest import ROOT, SHANGHAI
from tests.test_sla_bpmn_timer import (  # noqa: F401 - the workday fixture
    THURSDAY_9,
    at,
    policy,
    repair,
    timers,
    workday,
)
from tests.test_sla_unknown_deadline import triaged

FRIDAY_10 = datetime(2026, 11, 27, 10, 0, tzinfo=SHANGHAI)
IT_SERVICE = (ROOT / "processes" / "it_service.bpmn").read_text("utf-8")


def repair_policy(db_session, calendar_id: int, **values):
    """Field repair: arrival on site within 2 working hours, resolution within 8."""
    return policy(
        db_session,
        calendar_id,
        "现场维修",
        process_key="equipment_repair",
        response_event="checkin",
        response_minutes=120,
        resolution_minutes=480,
        **values,
    )


def deadline(flow, kind: str) -> datetime:
    (found,) = [c for c in sla_clock.ledger(flow.db, flow.ticket.id) if c["kind"] == kind]
    return datetime.fromisoformat(found["deadline"])


def test_the_handling_task_is_due_at_the_resolution_deadline_not_the_wall_clock_hours(
    db_session,
    workday,  # noqa: F811
):
    policy(db_session, workday, "IT 标准", process_key="it_service", resolution_minutes=480)
    flow = triaged(db_session, "打印机无法联网", THURSDAY_9)
    # Triage was the first response; 8 working hours with the lunch break end at 18:00.
    due = THURSDAY_9 + timedelta(hours=9)
    assert deadline(flow, "resolution") == due
    assert flow.task("task_handle").due_at == due
    assert timers(flow) == {"timer_it_sla": due}, "the inbox and the escalation agree"
    assert due != THURSDAY_9 + timedelta(hours=flow.data()["sla_hours"])


def test_without_a_policy_the_task_keeps_the_due_date_of_its_expression(db_session, workday):  # noqa: F811
    flow = triaged(db_session, "没有策略", THURSDAY_9)
    hours = flow.data()["sla_hours"]
    assert flow.task("task_handle").due_at == THURSDAY_9 + timedelta(hours=hours)


def test_a_task_marked_sla_due_own_keeps_the_due_date_of_its_expression(
    app,
    db_session,
    workday,  # noqa: F811
):
    """The same IT process with `sla_due` = own on 技术组处理: its due date stays the diagram's
    wall-clock hours while the escalation timer still follows the clock."""
    own = IT_SERVICE.replace(
        'camunda:dueDate="${iso_hours(sla_hours)}">',
        'camunda:dueDate="${iso_hours(sla_hours)}"><bpmn:extensionElements><camunda:properties>'
        '<camunda:property name="sla_due" value="own" /></camunda:properties>'
        "</bpmn:extensionElements>",
    )
    assert own != IT_SERVICE
    files = [
        (n, own.encode() if n == "it_service.bpmn" else data) for n, data in shipped_files(app)
    ]
    engine.deploy(db_session=db_session, files=files, actor="admin")
    policy(db_session, workday, "IT 标准", process_key="it_service", resolution_minutes=480)
    flow = triaged(db_session, "打印机无法联网", THURSDAY_9)
    hours = flow.data()["sla_hours"]
    assert flow.task("task_handle").due_at == THURSDAY_9 + timedelta(hours=hours)
    assert timers(flow) == {"timer_it_sla": THURSDAY_9 + timedelta(hours=9)}, "still the SLA"


def test_the_site_task_is_due_on_arrival_then_on_resolution_and_held_while_parts_wait(
    db_session,
    workday,  # noqa: F811
    as_user,
    pages,
):
    repair_policy(db_session, workday, pause_on=["备件申领"])
    with at(THURSDAY_9):
        flow = repair(db_session, "空调不制冷")
        flow.do("task_dispatch", "desk", engineer="fac1", parts_needed=True, parts_list="电容")
    onsite = flow.task("task_onsite")
    assert onsite.due_at == NEVER, "parts pause the clocks: the task is held"

    with at(THURSDAY_9 + timedelta(minutes=30)):
        inbox = pages("fac1").get("/inbox").get_data(as_text=True)
        task_page = pages("fac1").get(f"/tasks/{onsite.id}").get_data(as_text=True)
        ticket_page = pages("fac1").get(f"/tickets/{flow.ticket.id}").get_data(as_text=True)
        english = pages("fac1", "en").get("/inbox").get_data(as_text=True)
        api_task = as_user("fac1").get(f"/api/v1/tasks/{onsite.id}").get_json()
        listed = as_user("fac1").get("/api/v1/tasks?scope=mine").get_json()["items"]
        ledger = as_user("desk").get(f"/api/v1/tickets/{flow.ticket.id}/sla").get_json()
    for html in (inbox, task_page, ticket_page):
        assert "已暂停" in html and "9999" not in html
    assert "Paused" in english and "9999" not in english
    # The ticket page's deadlines: the engineer's task and both held SLA timers.
    assert ticket_page.count("data-held") == 3
    assert api_task["due_at"] == NEVER.isoformat() and api_task["paused"] is True
    (mine,) = [item for item in listed if item["id"] == onsite.id]
    assert mine["paused"] is True
    assert {c["kind"]: c["paused"] for c in ledger["clocks"]} == {
        "response": True,
        "resolution": True,
    }

    # Parts in at 10:00: the clocks run again; nobody is on site yet, so the task is due when
    # the response runs out (2 working hours).
    with at(THURSDAY_9 + timedelta(hours=1)):
        flow.do("task_parts", "parts", parts_issued=True, parts_note="已出库")
    arrival_due = THURSDAY_9 + timedelta(hours=3)
    assert deadline(flow, "response") == arrival_due
    assert flow.task("task_onsite").due_at == arrival_due
    with at(THURSDAY_9 + timedelta(hours=1, minutes=5)):
        api_task = as_user("fac1").get(f"/api/v1/tasks/{onsite.id}").get_json()
    assert api_task["paused"] is False
    assert api_task["due_at"] == arrival_due.astimezone(UTC).isoformat()

    # On site at 10:30: the response is met; now the task is due at the resolution deadline,
    # 480 working minutes less the hour paused: Friday 10:00.
    from app.site.service import check_in

    with at(THURSDAY_9 + timedelta(hours=1, minutes=30)):
        fac1 = find_user(db_session=db_session, username="fac1")
        check_in(db_session=db_session, user=fac1, device_no="DEV-T-2", ticket_id=flow.ticket.id)
        db_session.commit()
    assert deadline(flow, "resolution") == FRIDAY_10
    assert flow.task("task_onsite").due_at == FRIDAY_10
    assert timers(flow)["timer_repair_sla"] == FRIDAY_10


def test_the_dispatch_step_ranks_against_the_deadline_the_site_task_will_get(
    db_session,
    workday,  # noqa: F811
):
    """派单 comes before the site task exists: its SLA risk is measured against the due date
    that task will get, the arrival deadline of the clock, not `sla_hours` of wall clock."""
    repair_policy(db_session, workday)
    with at(THURSDAY_9):
        flow = repair(db_session, "空调不制冷")
        rec = rank_step(db_session, flow.ticket, now=THURSDAY_9)
    arrival_due = THURSDAY_9 + timedelta(hours=2)
    assert deadline(flow, "response") == arrival_due
    assert rec.job.deadline == arrival_due
    assert rec.job.deadline != THURSDAY_9 + timedelta(hours=flow.data()["sla_hours"])


def test_a_closure_entered_later_moves_the_running_deadline_its_timer_and_the_task(
    db_session,
    workday,  # noqa: F811
    as_user,
):
    policy(db_session, workday, "IT 两天", process_key="it_service", resolution_minutes=960)
    flow = triaged(db_session, "两天内修好", THURSDAY_9)
    friday_18 = FRIDAY_10 + timedelta(hours=8)
    assert deadline(flow, "resolution") == friday_18
    admin = as_user("admin")

    # Friday becomes a closure of the office: the second working day is Monday.
    with at(THURSDAY_9 + timedelta(hours=1)):
        closed = admin.post(
            f"/api/v1/sla/calendars/{workday}/days",
            json={"date": "2026-11-27", "kind": "closure", "name": "停电检修"},
        )
    assert closed.status_code == 201, closed.get_json()
    monday_18 = friday_18 + timedelta(days=3)
    assert deadline(flow, "resolution") == monday_18
    assert flow.task("task_handle").due_at == monday_18
    assert timers(flow) == {"timer_it_sla": monday_18}

    # Removed again: back to Friday.
    with at(THURSDAY_9 + timedelta(hours=2)):
        removed = admin.delete(f"/api/v1/sla/calendars/{workday}/days/{closed.get_json()['id']}")
    assert removed.status_code == 204
    assert deadline(flow, "resolution") == friday_18
    assert flow.task("task_handle").due_at == friday_18
    assert timers(flow) == {"timer_it_sla": friday_18}


def test_new_working_hours_move_the_running_deadline(
    db_session,
    workday,  # noqa: F811
    as_user,
):
    policy(db_session, workday, "IT 标准", process_key="it_service", resolution_minutes=480)
    flow = triaged(db_session, "改了作息", THURSDAY_9)
    assert deadline(flow, "resolution") == THURSDAY_9 + timedelta(hours=9)
    week = {str(day): [["09:00", "17:00"]] for day in range(5)}  # no lunch break, out at 17:00
    with at(THURSDAY_9 + timedelta(minutes=30)):
        changed = as_user("admin").patch(
            f"/api/v1/sla/calendars/{workday}", json={"working_hours": week}
        )
    assert changed.status_code == 200, changed.get_json()
    assert deadline(flow, "resolution") == THURSDAY_9 + timedelta(hours=8)
    assert timers(flow) == {"timer_it_sla": THURSDAY_9 + timedelta(hours=8)}
