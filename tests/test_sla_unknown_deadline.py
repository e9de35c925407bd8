"""A deadline that reaches a year without holiday data: the work order is still created, its
clock says the deadline is unknown (API and page), the admins are told once per missing year,
nothing escalates on a guess, and entering the year's days computes the deadline, moves the
BPMN escalation timer and the task's due date, and lets escalations work again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.engine.models import HumanTask
from app.notify.models import Notification
from app.sla import clock as sla_clock
from app.sla.clock import NEVER
from app.sla.escalation import escalate
from tests.conftest import SHANGHAI
from tests.test_it_service import FORWARD, it_ticket
from tests.test_sla_admin_api import csv_file
from tests.test_sla_bpmn_timer import at, policy, run_worker, spiff_due, timers, workday  # noqa: F401

# Thursday 31 December 2026, 16:00 in Shanghai: two working hours left in 2026, whose holidays
# chinese-calendar knows; it knows nothing of 2027.
NEW_YEARS_EVE = datetime(2026, 12, 31, 16, 0, tzinfo=SHANGHAI)
# 2 hours on the 31st, New Year's Day (Friday) off, the weekend, then 6 hours on Monday.
DUE_WITH_2027 = datetime(2027, 1, 4, 16, 0, tzinfo=SHANGHAI)
UNKNOWN_ZH = "截止时间未知：2027 年没有节假日数据"
UNKNOWN_EN = "Deadline unknown: no holiday data for 2027"


@pytest.fixture
def it_policy(db_session, workday):  # noqa: F811
    return policy(db_session, workday, "IT 标准", process_key="it_service", resolution_minutes=480)


def ledger(flow, now=None) -> dict[str, dict]:
    return {c["kind"]: c for c in sla_clock.ledger(flow.db, flow.ticket.id, now)}


def notifications(db_session, username: str, kind: str | None = None) -> list[Notification]:
    from app.auth.models import User

    query = (
        select(Notification)
        .join(User, User.id == Notification.user_id)
        .where(User.username == username)
        .order_by(Notification.id)
    )
    if kind is not None:
        query = query.where(Notification.kind == kind)
    return list(db_session.scalars(query))


def triaged(db_session, title: str, moment: datetime):
    with at(moment):
        flow = it_ticket(db_session, title=title, region="beijing")
        flow.do(
            "task_triage", "desk", category="network", priority="P3", region="beijing", **FORWARD
        )
    return flow


def test_a_work_order_reaching_an_unknown_year_is_created_with_its_deadline_unknown(
    db_session, it_policy, as_user
):
    with at(NEW_YEARS_EVE):
        answer = as_user("alice").post(
            "/api/v1/tickets",
            json={"title": "跨年报修：交换机掉线", "process_key": "it_service"},
        )
    assert answer.status_code == 201, answer.get_data(as_text=True)[:600]
    ticket_id = answer.get_json()["id"]

    with at(NEW_YEARS_EVE + timedelta(minutes=5)):
        clocks = {
            c["kind"]: c
            for c in as_user("desk").get(f"/api/v1/tickets/{ticket_id}/sla").get_json()["clocks"]
        }
    resolution = clocks["resolution"]
    assert resolution["state"] == "running" and resolution["deadline"] is None
    assert resolution["deadline_unknown"] is True and resolution["missing_holiday_year"] == 2027
    assert resolution["percent_used"] is None or resolution["percent_used"] >= 0
    # One hour of response still fits in 2026: that deadline is known.
    response = clocks["response"]
    assert response["deadline_unknown"] is False
    assert response["deadline"] == (NEW_YEARS_EVE + timedelta(hours=1)).astimezone(UTC).isoformat()

    (told,) = notifications(db_session, "admin", "sla_holidays_missing")
    assert told.title_zh == UNKNOWN_ZH and told.title_en == UNKNOWN_EN
    assert "year=2027" in told.link
    assert "导入" in told.body_zh and "import" in told.body_en


def test_admins_hear_once_per_missing_year_not_per_work_order(db_session, it_policy):
    for minutes in (0, 10, 20):
        triaged(db_session, f"跨年工单 {minutes}", NEW_YEARS_EVE + timedelta(minutes=minutes))
    assert len(notifications(db_session, "admin", "sla_holidays_missing")) == 1
    assert notifications(db_session, "desk", "sla_holidays_missing") == [], "admins only"


def test_nothing_escalates_until_the_year_is_entered_then_the_deadline_timer_and_due_date_follow(
    db_session, it_policy, as_user, pages
):
    flow = triaged(db_session, "打印机无法联网", NEW_YEARS_EVE)
    own_expression = NEW_YEARS_EVE + timedelta(hours=flow.data()["sla_hours"])

    assert ledger(flow)["resolution"]["deadline_unknown"] is True
    # The escalation timer waits at never instead of firing on a guess; the task keeps the
    # due date of its own expression (the SLA one is unknown).
    assert timers(flow) == {"timer_it_sla": NEVER}
    assert spiff_due(flow, "timer_it_sla") == NEVER
    assert flow.task("task_handle").due_at == own_expression

    with at(NEW_YEARS_EVE + timedelta(minutes=30)):
        html = pages("desk").get(f"/tickets/{flow.ticket.id}").get_data(as_text=True)
        english = pages("desk", "en").get(f"/tickets/{flow.ticket.id}").get_data(as_text=True)
    assert UNKNOWN_ZH in html and 'data-deadline-unknown="2027"' in html
    assert UNKNOWN_EN in english
    assert "9999" not in html

    monday_3pm = datetime(2027, 1, 4, 15, 0, tzinfo=SHANGHAI)
    run_worker(flow, own_expression + timedelta(minutes=1))
    run_worker(flow, monday_3pm)
    assert flow.events("timer_fired") == []
    assert list(flow.open_tasks()) == ["task_handle"]
    with at(monday_3pm):
        assert escalate(db_session=db_session, now=monday_3pm) == 0
        db_session.commit()
        assert ledger(flow, monday_3pm)["resolution"]["deadline_unknown"] is True

    with at(monday_3pm + timedelta(minutes=10)):
        answer = as_user("admin").post(
            f"/api/v1/sla/calendars/{it_policy.calendar_id}/days/import",
            data=csv_file("2027-01-01,holiday,元旦\n2027-02-06,holiday,春节\n"),
            content_type="multipart/form-data",
        )
    assert answer.status_code == 200, answer.get_data(as_text=True)[:600]

    resolution = ledger(flow, monday_3pm + timedelta(minutes=10))["resolution"]
    assert resolution["deadline_unknown"] is False and resolution["missing_holiday_year"] is None
    assert resolution["deadline"] == DUE_WITH_2027.astimezone(UTC).isoformat()
    assert timers(flow) == {"timer_it_sla": DUE_WITH_2027}
    assert spiff_due(flow, "timer_it_sla") == DUE_WITH_2027
    assert flow.task("task_handle").due_at == DUE_WITH_2027

    # 7 of 8 working hours used: the 50 % and 75 % levels reach the group lead now.
    moment = monday_3pm + timedelta(minutes=20)
    with at(moment):
        assert escalate(db_session=db_session, now=moment) >= 1
        db_session.commit()
    assert notifications(db_session, "net_lead", "sla_escalation")

    run_worker(flow, DUE_WITH_2027 - timedelta(minutes=1))
    assert list(flow.open_tasks()) == ["task_handle"]
    run_worker(flow, DUE_WITH_2027 + timedelta(minutes=1))
    assert list(flow.open_tasks()) == ["task_escalate"]
    assert [e.element_id for e in flow.events("timer_fired")] == ["timer_it_sla"]


def test_a_day_entered_by_hand_computes_the_deadline_too(db_session, it_policy, as_user):
    flow = triaged(db_session, "显示器不亮", NEW_YEARS_EVE)
    with at(NEW_YEARS_EVE + timedelta(hours=1)):
        answer = as_user("admin").post(
            f"/api/v1/sla/calendars/{it_policy.calendar_id}/days",
            json={"date": "2027-01-01", "kind": "holiday", "name": "元旦"},
        )
    assert answer.status_code == 201, answer.get_data(as_text=True)[:600]
    assert ledger(flow)["resolution"]["deadline"] == DUE_WITH_2027.astimezone(UTC).isoformat()
    assert timers(flow) == {"timer_it_sla": DUE_WITH_2027}
    task = db_session.scalar(
        select(HumanTask).where(
            HumanTask.instance_id == flow.instance.id, HumanTask.element_id == "task_handle"
        )
    )
    assert task.due_at == DUE_WITH_2027
