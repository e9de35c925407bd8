"""The IT service process through every path: triage, DMN routing, handling, review, SLA escalation."""

from datetime import datetime, timedelta

import time_machine

from tests.conftest import SHANGHAI
from tests.flows import Flow

FORWARD = {"resolution": "forward", "triage_note": "已确认"}


def it_ticket(db_session, **fields):
    return Flow(db_session, "alice", "it_service", **fields)


def test_solved_at_the_desk_is_archived_without_a_technical_group(db_session):
    flow = it_ticket(db_session, title="邮箱密码重置")
    assert list(flow.open_tasks()) == ["task_triage"]
    assert flow.task("task_triage").candidate_groups == ["service_desk"]
    assert flow.ticket.status == "open" and flow.ticket.current_step == "问题分级"

    flow.do(
        "task_triage",
        "desk",
        category="account",
        priority="P4",
        region="beijing",
        resolution="solved",
        triage_note="已直接重置",
    )

    assert flow.instance.status == "completed"
    assert flow.ticket.status == "closed" and flow.ticket.closed_at is not None
    assert "task_assign" not in flow.completed_elements()
    assert flow.data()["archived"] is True


def test_forwarded_ticket_goes_to_the_dmn_group_then_review_then_archive(db_session, as_user):
    flow = it_ticket(db_session, title="VPN 无法连接", region="shanghai")
    flow.do("task_triage", "desk", category="network", priority="P1", region="shanghai", **FORWARD)

    handle = flow.task("task_handle")
    assert handle.candidate_groups == ["network"]
    assert flow.data()["sla_hours"] == 4
    # the due date is the DMN's SLA after the task opened
    assert timedelta(hours=3, minutes=59) < handle.due_at - handle.created_at <= timedelta(hours=4)
    assert [e.element_id for e in flow.events("element_completed") if e.element_id == "task_assign"]
    assign = next(e for e in flow.events() if e.element_id == "task_assign")
    assert assign.data == {
        "assigned_group": "network",
        "sla_hours": 4,
        "required_skill": "network",
        "required_level": 3,
    }

    # a hardware engineer does not see the network task, a network engineer does
    assert as_user("hw1").get("/api/v1/tasks").json["total"] == 0
    listed = as_user("net1").get(f"/api/v1/tasks?process_instance_id={flow.instance.id}").json
    assert [t["element_id"] for t in listed["items"]] == ["task_handle"]

    flow.do("task_handle", "net1", solution="重置 VPN 证书", time_spent_minutes=30)
    assert flow.ticket.status == "in_progress" and flow.ticket.current_step == "复核"
    flow.do("task_review", "reviewer", review_result="approve", review_comment="")

    assert flow.instance.status == "completed" and flow.ticket.status == "closed"
    completed = flow.completed_elements()
    assert completed.index("task_archive") > completed.index("task_review")
    assert completed[-1] == "end_archived"
    actors = {e.element_id: e.actor for e in flow.events("task_completed")}
    assert actors == {"task_triage": "desk", "task_handle": "net1", "task_review": "reviewer"}


def test_shenzhen_network_tickets_get_twice_the_sla(db_session):
    flow = it_ticket(db_session, region="shenzhen")
    flow.do("task_triage", "desk", category="network", priority="P2", region="shenzhen", **FORWARD)
    assert flow.data()["sla_hours"] == 16
    assert flow.task("task_handle").candidate_groups == ["network"]


def test_software_tickets_stay_with_the_service_desk(db_session):
    flow = it_ticket(db_session)
    flow.do("task_triage", "desk", category="software", priority="P3", region="beijing", **FORWARD)
    assert flow.task("task_handle").candidate_groups == ["service_desk"]
    assert flow.data()["sla_hours"] == 24


def test_review_rejection_sends_the_work_back_with_the_reason(db_session):
    flow = it_ticket(db_session)
    flow.do("task_triage", "desk", category="hardware", priority="P3", region="beijing", **FORWARD)
    flow.do("task_handle", "hw1", solution="重启打印机", time_spent_minutes=5)
    flow.do("task_review", "reviewer", review_result="reject", review_comment="用户反馈仍卡纸")

    assert list(flow.open_tasks()) == ["task_handle"]
    assert flow.data()["review_comment"] == "用户反馈仍卡纸"
    rejected = [e for e in flow.events("task_completed") if e.element_id == "task_review"]
    assert rejected[0].data["review_result"] == "reject"

    flow.do("task_handle", "hw1", solution="更换搓纸轮", time_spent_minutes=45)
    flow.do("task_review", "reviewer", review_result="approve", review_comment="")
    assert flow.instance.status == "completed"
    handled = [e for e in flow.events("task_completed") if e.element_id == "task_handle"]
    assert [e.data["solution"] for e in handled] == ["重启打印机", "更换搓纸轮"]


def test_sla_breach_escalates_to_the_group_lead(db_session):
    start = datetime(2026, 11, 26, 9, 0, tzinfo=SHANGHAI)
    with time_machine.travel(start, tick=False):
        flow = it_ticket(db_session)
        flow.do(
            "task_triage", "desk", category="hardware", priority="P2", region="beijing", **FORWARD
        )
        handle = flow.task("task_handle")

    with time_machine.travel(start + timedelta(hours=7, minutes=59), tick=False):
        flow.fire_timers(datetime.now().astimezone())
        assert list(flow.open_tasks()) == ["task_handle"], "fired before the SLA passed"

    with time_machine.travel(start + timedelta(hours=8, minutes=1), tick=False):
        flow.fire_timers(datetime.now().astimezone())

    tasks = flow.open_tasks()
    assert list(tasks) == ["task_escalate"]
    assert tasks["task_escalate"].assignee == "hw_lead"
    assert [e.element_id for e in flow.events("timer_fired")] == ["timer_it_sla"]
    cancelled = db_session.get(type(handle), handle.id)
    assert cancelled.status == "cancelled"

    flow.do("task_escalate", "hw_lead", solution="组长远程处理完毕", escalation_note="工程师外出")
    flow.do("task_review", "reviewer", review_result="approve", review_comment="")
    assert flow.instance.status == "completed"


def test_a_handled_task_leaves_no_timer_behind(db_session):
    from sqlalchemy import func, select

    from app.engine.models import Timer

    flow = it_ticket(db_session)
    flow.do("task_triage", "desk", category="hardware", priority="P2", region="beijing", **FORWARD)
    count = lambda: db_session.scalar(  # noqa: E731
        select(func.count()).select_from(Timer).where(Timer.instance_id == flow.instance.id)
    )
    assert count() == 1
    flow.do("task_handle", "hw1", solution="已处理", time_spent_minutes=5)
    assert count() == 0
