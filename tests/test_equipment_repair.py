"""The field repair process: DMN, dispatch, on-site work and spare parts in parallel, acceptance,
rework, the reminder before the SLA and the escalation after it."""

from datetime import datetime, timedelta

import pytest
import time_machine

from tests.conftest import SHANGHAI
from tests.flows import Flow

ONSITE = {"fault_cause": "压缩机电容老化", "work_done": "更换电容并试运行 30 分钟"}


def repair(db_session, **fields):
    fields = {
        "category": "facilities",
        "priority": "P2",
        "region": "shanghai",
        "device_no": "DEV-T-2",
        **fields,
    }
    return Flow(db_session, "alice", "equipment_repair", **fields)


def dispatch(flow, parts: bool, engineer="fac1"):
    flow.do(
        "task_dispatch",
        "desk",
        engineer=engineer,
        parts_needed=parts,
        parts_list="电容 × 1" if parts else "",
    )


def test_without_parts_the_parts_branch_is_skipped(db_session):
    flow = repair(db_session, title="空调外机异响")
    assert list(flow.open_tasks()) == ["task_dispatch"]
    assert flow.data()["assigned_group"] == "facilities"
    dispatch(flow, parts=False)

    tasks = flow.open_tasks()
    assert list(tasks) == ["task_onsite"]
    assert tasks["task_onsite"].assignee == "fac1"
    flow.do("task_onsite", "fac1", **ONSITE)
    acceptance = flow.task("task_acceptance")
    assert acceptance.assignee == "alice"  # the requester accepts
    flow.do(
        "task_acceptance", "alice", acceptance_result="accept", acceptance_comment="好了", csat=5
    )

    assert flow.instance.status == "completed" and flow.ticket.status == "closed"
    assert "task_parts" not in flow.completed_elements()


def test_dispatch_without_the_parts_checkbox_takes_the_form_default(db_session):
    flow = repair(db_session)
    flow.do("task_dispatch", "desk", engineer="fac1")
    assert list(flow.open_tasks()) == ["task_onsite"]


@pytest.mark.parametrize("order", [("task_onsite", "task_parts"), ("task_parts", "task_onsite")])
def test_parts_and_onsite_run_in_parallel_in_either_order(db_session, order):
    flow = repair(db_session)
    dispatch(flow, parts=True)
    tasks = flow.open_tasks()
    assert sorted(tasks) == ["task_onsite", "task_parts"]
    assert tasks["task_parts"].candidate_groups == ["spare_parts"]
    assert flow.ticket.current_step in {"现场处理、备件申领", "备件申领、现场处理"}

    first, second = order
    actions = {
        "task_onsite": lambda: flow.do("task_onsite", "fac1", **ONSITE),
        "task_parts": lambda: flow.do(
            "task_parts", "parts", parts_issued=True, parts_note="已出库"
        ),
    }
    actions[first]()
    assert list(flow.open_tasks()) == [second], "the join must wait for the other branch"
    actions[second]()
    assert list(flow.open_tasks()) == ["task_acceptance"]
    flow.do("task_acceptance", "alice", acceptance_result="accept", csat=4)
    assert flow.instance.status == "completed"
    data = flow.data()
    assert data["parts_issued"] is True and data["work_done"] == ONSITE["work_done"]


def test_rejected_acceptance_sends_the_engineer_back_on_site(db_session):
    flow = repair(db_session)
    dispatch(flow, parts=True)
    flow.do("task_onsite", "fac1", **ONSITE)
    flow.do("task_parts", "parts", parts_issued=True)
    flow.do("task_acceptance", "alice", acceptance_result="reject", acceptance_comment="仍有异响")

    rework = flow.task("task_rework")
    assert list(flow.open_tasks()) == ["task_rework"], (
        "no second parts request, no early acceptance"
    )
    assert rework.assignee == "fac1" and rework.form_key == "repair_onsite"
    flow.do("task_rework", "fac1", fault_cause="风扇叶片松动", work_done="紧固叶片")
    flow.do("task_acceptance", "alice", acceptance_result="reject", acceptance_comment="还是响")
    flow.do("task_rework", "fac1", fault_cause="轴承磨损", work_done="更换轴承")
    flow.do("task_acceptance", "alice", acceptance_result="accept", csat=3)

    assert flow.instance.status == "completed"
    assert [
        e.data["acceptance_result"]
        for e in flow.events("task_completed")
        if e.element_id == "task_acceptance"
    ] == ["reject", "reject", "accept"]


def test_reminder_before_the_sla_keeps_the_engineer_on_the_task(db_session):
    start = datetime(2026, 11, 26, 9, 0, tzinfo=SHANGHAI)
    with time_machine.travel(start, tick=False):
        flow = repair(db_session)  # facilities P2 in shanghai: 8 h
        dispatch(flow, parts=False)
    assert flow.data()["sla_hours"] == 8

    with time_machine.travel(start + timedelta(hours=6, minutes=1), tick=False):
        flow.fire_timers(datetime.now().astimezone())
    assert list(flow.open_tasks()) == ["task_onsite"], "the reminder must not interrupt"
    assert [e.element_id for e in flow.events("timer_fired")] == ["timer_repair_remind"]
    assert flow.data()["sla_reminded"] is True

    with time_machine.travel(start + timedelta(hours=7), tick=False):
        flow.do("task_onsite", "fac1", **ONSITE)
    assert list(flow.open_tasks()) == ["task_acceptance"]
    with time_machine.travel(start + timedelta(hours=9), tick=False):
        flow.fire_timers(datetime.now().astimezone())
    assert [e.element_id for e in flow.events("timer_fired")] == ["timer_repair_remind"], (
        "the SLA timer must be gone once the work is done"
    )


def test_sla_breach_escalates_on_site_work_to_the_group_lead(db_session):
    start = datetime(2026, 11, 26, 9, 0, tzinfo=SHANGHAI)
    with time_machine.travel(start, tick=False):
        flow = repair(db_session)
        dispatch(flow, parts=True)
    with time_machine.travel(start + timedelta(hours=8, minutes=5), tick=False):
        flow.fire_timers(datetime.now().astimezone())

    tasks = flow.open_tasks()
    assert sorted(tasks) == ["task_escalate", "task_parts"]
    assert tasks["task_escalate"].assignee == "fac_lead"
    assert [e.element_id for e in flow.events("timer_fired")] == [
        "timer_repair_remind",
        "timer_repair_sla",
    ]
    flow.do("task_escalate", "fac_lead", work_done="组长带队更换压缩机", escalation_note="超时升级")
    assert list(flow.open_tasks()) == ["task_parts"]
    flow.do("task_parts", "parts", parts_issued=True)
    flow.do("task_acceptance", "alice", acceptance_result="accept", csat=4)
    assert flow.instance.status == "completed"


def test_neither_a_requester_nor_another_engineer_can_find_the_engineers_task(db_session):
    from app.auth.service import find_user
    from app.errors import NotFound
    from app.inbox.service import complete

    flow = repair(db_session)
    dispatch(flow, parts=False)
    bob = find_user(db_session=db_session, username="bob")
    with pytest.raises(NotFound):
        complete(db_session=db_session, user=bob, task_id=flow.task("task_onsite").id, data=ONSITE)
    other_engineer = find_user(db_session=db_session, username="hw1")
    with pytest.raises(NotFound):
        complete(
            db_session=db_session,
            user=other_engineer,
            task_id=flow.task("task_onsite").id,
            data=ONSITE,
        )
