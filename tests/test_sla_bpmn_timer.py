"""The BPMN escalation path fires when the SLA clock says: the boundary timer marked `sla` is
due at the clock's deadline on its business calendar, held while the clock is paused, moved by
exactly the paused working time, recomputed from the original start when the priority rises,
pushed to never when the clock stops; the timer worker then takes the escalation path."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import pytest
import time_machine
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select

from app import engine
from app.auth.service import find_user
from app.engine.models import Timer
from app.engine.runtime import load_workflow, timer_due
from app.extensions import db
from app.inbox.service import claim
from app.sla import clock as sla_clock
from app.sla.bpmn_timers import SlaTimer, read_sla_timers
from app.sla.calendars_service import ensure_default_calendars, load_calendar
from app.sla.clock import NEVER
from app.sla.policies import create_policy
from tests.conftest import ROOT, SHANGHAI
from tests.flows import Flow
from tests.test_it_service import FORWARD, it_ticket

# Thursday 26 November 2026, 09:00 in Shanghai: a working day (standard hours 9–12, 13–18).
THURSDAY_9 = datetime(2026, 11, 26, 9, 0, tzinfo=SHANGHAI)
MINUTE = timedelta(minutes=1)


@pytest.fixture
def workday(db_session):
    """The id of the standard working-hours calendar (Chinese holidays and adjusted workdays)."""
    ensure_default_calendars(db_session)
    db_session.flush()
    table = db.metadata.tables["business_calendar"]
    return db_session.scalar(select(table.c.id).where(table.c.code == "standard"))


def policy(db_session, calendar_id: int, title: str, **values):
    values = {
        "response_minutes": 60,
        "resolution_minutes": 480,
        "calendar_id": calendar_id,
        **values,
    }
    created = create_policy(db_session=db_session, values={"name": title, **values}, actor="admin")
    db_session.commit()
    return created


def at(moment: datetime):
    return time_machine.travel(moment, tick=False)


def timers(flow: Flow) -> dict[str, datetime]:
    """Pending timer rows of the work order's process: element id -> due time."""
    rows = flow.db.execute(
        select(Timer.element_id, Timer.due_at).where(Timer.instance_id == flow.instance.id)
    ).all()
    return dict(rows)


def spiff_due(flow: Flow, element_id: str) -> datetime:
    """The due time SpiffWorkflow itself holds for a waiting timer (what fires it)."""
    workflow = load_workflow(flow.instance)
    (task,) = [
        task
        for task in workflow.get_tasks(state=TaskState.WAITING)
        if task.task_spec.bpmn_id == element_id
    ]
    return timer_due(task)


def run_worker(flow: Flow, moment: datetime) -> None:
    """The timer worker's pass at ``moment``."""
    with at(moment):
        flow.fire_timers(moment)


def resolution_deadline(flow: Flow) -> datetime:
    (found,) = [c for c in sla_clock.ledger(flow.db, flow.ticket.id) if c["kind"] == "resolution"]
    return datetime.fromisoformat(found["deadline"])


def repair(db_session, title: str) -> Flow:
    return Flow(
        db_session,
        "alice",
        "equipment_repair",
        title=title,
        category="facilities",
        priority="P3",
        region="shanghai",
        device_no="DEV-T-2",
    )


def test_the_escalation_timer_is_due_at_the_sla_deadline_across_national_day(db_session, workday):
    policy(db_session, workday, "IT 标准", process_key="it_service", resolution_minutes=480)
    # Wednesday 30 September 16:00, the last working afternoon before the 1–7 October holiday.
    created = datetime(2026, 9, 30, 16, 0, tzinfo=SHANGHAI)
    with at(created):
        flow = it_ticket(db_session, title="打印机无法联网", region="beijing")
        flow.do(
            "task_triage", "desk", category="network", priority="P3", region="beijing", **FORWARD
        )

    # 2 working hours on the 30th, the holiday, then 6 on Thursday 8 October.
    due = datetime(2026, 10, 8, 16, 0, tzinfo=SHANGHAI)
    assert timers(flow) == {"timer_it_sla": due}
    assert spiff_due(flow, "timer_it_sla") == due
    assert resolution_deadline(flow) == due
    own_expression = created + timedelta(hours=flow.data()["sla_hours"])
    assert own_expression < due, "the diagram's wall-clock hours would fire during the holiday"

    run_worker(flow, own_expression + MINUTE)
    run_worker(flow, datetime(2026, 10, 4, 12, 0, tzinfo=SHANGHAI))
    run_worker(flow, due - MINUTE)
    assert list(flow.open_tasks()) == ["task_handle"]
    assert flow.events("timer_fired") == []

    run_worker(flow, due + MINUTE)
    assert list(flow.open_tasks()) == ["task_escalate"]
    assert flow.task("task_escalate").assignee == "net_lead"
    assert flow.ticket.current_step == "组长处理"
    assert [e.element_id for e in flow.events("timer_fired")] == ["timer_it_sla"]
    assert timers(flow) == {}


def test_a_pause_for_parts_holds_the_escalation_and_moves_it_by_the_paused_working_time(
    db_session, workday
):
    policy(
        db_session,
        workday,
        "现场维修",
        process_key="equipment_repair",
        response_event="checkin",
        pause_on=["备件申领"],
    )
    calendar = load_calendar(db_session, workday)
    with at(THURSDAY_9):
        plain = repair(db_session, "空调异响")
        waiting = repair(db_session, "空调不制冷")
    dispatched = THURSDAY_9 + timedelta(hours=1)
    with at(dispatched):
        plain.do("task_dispatch", "desk", engineer="fac1", parts_needed=False)
        waiting.do(
            "task_dispatch", "desk", engineer="fac1", parts_needed=True, parts_list="压缩机电容"
        )

    deadline = datetime(2026, 11, 26, 18, 0, tzinfo=SHANGHAI)  # 8 working hours from 09:00
    reminder = datetime(2026, 11, 26, 16, 0, tzinfo=SHANGHAI)  # 75 %: 6 working hours
    assert timers(plain) == {"timer_repair_sla": deadline, "timer_repair_remind": reminder}
    # Waiting for parts from the moment the engineer got the job: neither timer may fire.
    assert timers(waiting) == {"timer_repair_sla": NEVER, "timer_repair_remind": NEVER}
    assert spiff_due(waiting, "timer_repair_sla") == NEVER

    run_worker(plain, deadline + MINUTE)
    assert "task_escalate" in plain.open_tasks()
    run_worker(waiting, datetime(2026, 11, 28, 12, 0, tzinfo=SHANGHAI))  # Saturday noon
    assert sorted(waiting.open_tasks()) == ["task_onsite", "task_parts"]
    assert waiting.events("timer_fired") == []

    resumed = dispatched + timedelta(days=3)  # Sunday 10:00: the parts are out of the store
    with at(resumed):
        waiting.do("task_parts", "parts", parts_issued=True, parts_note="已出库")
    paused = calendar.working_minutes(dispatched, resumed)
    assert paused == 15 * 60  # Thursday 10–18 and Friday
    moved = timers(waiting)
    assert moved["timer_repair_sla"] == calendar.add(deadline, paused)
    assert calendar.working_minutes(deadline, moved["timer_repair_sla"]) == paused
    assert moved == {
        "timer_repair_sla": datetime(2026, 11, 30, 17, 0, tzinfo=SHANGHAI),
        "timer_repair_remind": datetime(2026, 11, 30, 15, 0, tzinfo=SHANGHAI),
    }
    assert spiff_due(waiting, "timer_repair_sla") == moved["timer_repair_sla"]

    run_worker(waiting, moved["timer_repair_remind"] + MINUTE)
    assert list(waiting.open_tasks()) == ["task_onsite"], "the reminder keeps the engineer's task"
    assert waiting.data()["sla_reminded"] is True
    run_worker(waiting, moved["timer_repair_sla"] - MINUTE)
    assert list(waiting.open_tasks()) == ["task_onsite"]

    run_worker(waiting, moved["timer_repair_sla"] + MINUTE)
    assert list(waiting.open_tasks()) == ["task_escalate"]
    assert waiting.task("task_escalate").assignee == "fac_lead"
    assert [e.element_id for e in waiting.events("timer_fired")] == [
        "timer_repair_remind",
        "timer_repair_sla",
    ]


def test_raising_the_priority_moves_the_escalation_to_the_new_target_from_the_original_start(
    db_session, workday, as_user
):
    policy(
        db_session,
        workday,
        "IT P1",
        process_key="it_service",
        priority="P1",
        resolution_minutes=120,
    )
    policy(db_session, workday, "IT", process_key="it_service", resolution_minutes=960)
    with at(THURSDAY_9):
        flow = it_ticket(db_session, title="会议室投影无信号", region="beijing")
    with at(THURSDAY_9 + timedelta(minutes=20)):
        flow.do(
            "task_triage", "desk", category="hardware", priority="P3", region="beijing", **FORWARD
        )
    assert timers(flow) == {"timer_it_sla": datetime(2026, 11, 27, 18, 0, tzinfo=SHANGHAI)}

    with at(THURSDAY_9 + timedelta(hours=1)):
        answer = as_user("desk").patch(f"/api/v1/tickets/{flow.ticket.id}", json={"priority": "P1"})
        assert answer.status_code == 200, answer.json
    # 120 working minutes from 09:00 (the ticket's start), not from 10:00 (the change).
    due = THURSDAY_9 + timedelta(hours=2)
    assert timers(flow) == {"timer_it_sla": due}
    assert spiff_due(flow, "timer_it_sla") == due

    run_worker(flow, due - MINUTE)
    assert list(flow.open_tasks()) == ["task_handle"]
    run_worker(flow, due + MINUTE)
    assert list(flow.open_tasks()) == ["task_escalate"]
    assert flow.task("task_escalate").assignee == "hw_lead"


def test_a_priority_raised_past_its_new_deadline_escalates_in_the_same_transaction(
    db_session, workday, as_user
):
    policy(
        db_session, workday, "IT P1", process_key="it_service", priority="P1", resolution_minutes=60
    )
    policy(db_session, workday, "IT", process_key="it_service", resolution_minutes=960)
    with at(THURSDAY_9):
        flow = it_ticket(db_session, title="核心交换机告警", region="beijing")
        flow.do(
            "task_triage", "desk", category="network", priority="P3", region="beijing", **FORWARD
        )
    with at(THURSDAY_9 + timedelta(hours=2)):
        answer = as_user("desk").patch(f"/api/v1/tickets/{flow.ticket.id}", json={"priority": "P1"})
        assert answer.status_code == 200, answer.json
    # The new target (60 minutes from 09:00) passed an hour ago: no worker needed.
    assert list(flow.open_tasks()) == ["task_escalate"]
    assert [e.element_id for e in flow.events("timer_fired")] == ["timer_it_sla"]


def test_without_a_matching_policy_the_timer_keeps_its_own_expression(db_session, workday):
    policy(db_session, workday, "仅维修", process_key="equipment_repair")
    with at(THURSDAY_9):
        flow = it_ticket(db_session, title="邮箱满了", region="beijing")
        flow.do(
            "task_triage", "desk", category="network", priority="P3", region="beijing", **FORWARD
        )
    assert sla_clock.ledger(db_session, flow.ticket.id) == []
    hours = flow.data()["sla_hours"]
    assert timers(flow) == {"timer_it_sla": THURSDAY_9 + timedelta(hours=hours)}


PROBE = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    id="Definitions_sla_probe" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="sla_probe" name="SLA 探针" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="task_work" name="处理" camunda:candidateGroups="network">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    BOUNDARY
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="task_work" />
    <bpmn:sequenceFlow id="f2" sourceRef="task_work" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""
BOUNDARY = """
    <bpmn:boundaryEvent id="{id}" cancelActivity="false" attachedToRef="task_work">
      <bpmn:extensionElements><camunda:properties>{properties}</camunda:properties>
      </bpmn:extensionElements>
      <bpmn:outgoing>to_{id}</bpmn:outgoing>
      <bpmn:timerEventDefinition>
        <bpmn:timeDuration xsi:type="bpmn:tFormalExpression">"PT30M"</bpmn:timeDuration>
      </bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:endEvent id="end_{id}"><bpmn:incoming>to_{id}</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="to_{id}" sourceRef="{id}" targetRef="end_{id}" />
"""


def probe_bpmn(**timers: dict[str, str]) -> bytes:
    boundaries = "".join(
        BOUNDARY.format(
            id=ident,
            properties="".join(
                f'<camunda:property name="{name}" value="{value}" />'
                for name, value in properties.items()
            ),
        )
        for ident, properties in timers.items()
    )
    return PROBE.replace("BOUNDARY", boundaries).encode()


def test_a_response_timer_is_never_due_once_staff_acted_and_percent_and_typos(
    db_session, workday, caplog, monkeypatch
):
    # Alembic's fileConfig (run by the fixtures' upgrade) disables loggers that existed before.
    monkeypatch.setattr(logging.getLogger("app.sla.bpmn_timers"), "disabled", False)
    timers_of_probe = {
        "timer_response": {"sla": "response"},
        "timer_half": {"sla": "resolution", "sla_percent": "50"},
        "timer_plain": {},
    }
    # Deploy refuses a typo (tests/test_sla_lint.py); a version stored before that rule still
    # runs, and the timer keeps its own expression with a warning.
    with caplog.at_level(logging.WARNING, logger="app.sla.bpmn_timers"):
        typo = probe_bpmn(**timers_of_probe, timer_typo={"sla": "resolutoin"})
        assert read_sla_timers("sla_probe.bpmn", typo) == {
            "timer_response": SlaTimer("timer_response", "response", 100, "task_work"),
            "timer_half": SlaTimer("timer_half", "resolution", 50, "task_work"),
        }
    assert "timer_typo" in caplog.text, "a property naming no clock is reported"
    data = probe_bpmn(**timers_of_probe)
    engine.deploy(db_session=db_session, files=[("sla_probe.bpmn", data)], actor="admin")
    policy(db_session, workday, "探针", process_key="sla_probe", response_event="first_action")

    with at(THURSDAY_9):
        flow = Flow(db_session, "alice", "sla_probe")
    assert timers(flow) == {
        "timer_response": THURSDAY_9 + timedelta(hours=1),
        "timer_half": THURSDAY_9 + timedelta(hours=5),  # 240 working minutes, lunch excluded
        "timer_plain": THURSDAY_9 + timedelta(minutes=30),  # its own expression
    }

    with at(THURSDAY_9 + timedelta(minutes=10)):
        claim(
            db_session=db_session,
            user=find_user(db_session=db_session, username="net1"),
            task_id=flow.task("task_work").id,
        )
        db_session.commit()
    # The response target was met: its timer will not fire; the resolution one stays.
    assert timers(flow)["timer_response"] == NEVER
    assert timers(flow)["timer_half"] == THURSDAY_9 + timedelta(hours=5)

    run_worker(flow, THURSDAY_9 + timedelta(hours=1, minutes=1))
    assert [e.element_id for e in flow.events("timer_fired")] == ["timer_plain"]
    run_worker(flow, THURSDAY_9 + timedelta(hours=5, minutes=1))
    assert [e.element_id for e in flow.events("timer_fired")] == ["timer_plain", "timer_half"]
    assert set(timers(flow)) == {"timer_response"}


STAGED = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    id="Definitions_sla_staged" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="sla_staged" name="SLA 分段" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="task_triage" name="分级" camunda:candidateGroups="service_desk">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:subProcess id="stage_repair" name="维修阶段">
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:startEvent id="repair_start"><bpmn:outgoing>r1</bpmn:outgoing></bpmn:startEvent>
      <bpmn:userTask id="task_fix" name="维修" camunda:candidateGroups="network">
        <bpmn:incoming>r1</bpmn:incoming><bpmn:outgoing>r2</bpmn:outgoing>
      </bpmn:userTask>
      <bpmn:endEvent id="repair_end"><bpmn:incoming>r2</bpmn:incoming></bpmn:endEvent>
      <bpmn:sequenceFlow id="r1" sourceRef="repair_start" targetRef="task_fix" />
      <bpmn:sequenceFlow id="r2" sourceRef="task_fix" targetRef="repair_end" />
    </bpmn:subProcess>
    <bpmn:boundaryEvent id="timer_stage" cancelActivity="false" attachedToRef="stage_repair">
      <bpmn:extensionElements><camunda:properties>
        <camunda:property name="sla" value="resolution" />
      </camunda:properties></bpmn:extensionElements>
      <bpmn:outgoing>to_late</bpmn:outgoing>
      <bpmn:timerEventDefinition>
        <bpmn:timeDuration xsi:type="bpmn:tFormalExpression">"PT30M"</bpmn:timeDuration>
      </bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:endEvent id="end_late"><bpmn:incoming>to_late</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="task_triage" />
    <bpmn:sequenceFlow id="f2" sourceRef="task_triage" targetRef="stage_repair" />
    <bpmn:sequenceFlow id="f3" sourceRef="stage_repair" targetRef="end" />
    <bpmn:sequenceFlow id="to_late" sourceRef="timer_stage" targetRef="end_late" />
  </bpmn:process>
</bpmn:definitions>
"""


def test_a_timer_on_a_sub_process_is_due_at_the_clock_as_soon_as_it_waits(db_session, workday):
    """The sub-process starts when a user task completes, and no user task carrying the timer
    opens: the timer is still moved to the clock in that same step, not at the next change."""
    engine.deploy(
        db_session=db_session, files=[("sla_staged.bpmn", STAGED.encode())], actor="admin"
    )
    policy(db_session, workday, "分段", process_key="sla_staged", resolution_minutes=480)
    with at(THURSDAY_9):
        flow = Flow(db_session, "alice", "sla_staged")
    assert timers(flow) == {}, "the stage has not begun"
    with at(THURSDAY_9 + timedelta(minutes=20)):
        flow.do("task_triage", "desk")
    # 480 working minutes from 09:00 (lunch 12–13 excluded): 18:00, not 09:20 + 30 min.
    assert timers(flow) == {"timer_stage": THURSDAY_9 + timedelta(hours=9)}
    assert spiff_due(flow, "timer_stage") == THURSDAY_9 + timedelta(hours=9)


def test_the_shipped_processes_mark_their_sla_timers():
    def read(name: str) -> dict:
        return read_sla_timers(name, (ROOT / "processes" / name).read_bytes())

    assert read("it_service.bpmn") == {
        "timer_it_sla": SlaTimer("timer_it_sla", "resolution", 100, "task_handle"),
    }
    assert read("equipment_repair.bpmn") == {
        "timer_repair_sla": SlaTimer("timer_repair_sla", "resolution", 100, "task_onsite"),
        "timer_repair_remind": SlaTimer("timer_repair_remind", "resolution", 75, "task_onsite"),
    }


BROKEN_ESCALATION = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    id="Definitions_sla_broken" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="sla_broken" name="SLA 升级出错" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="task_work" name="处理" camunda:candidateGroups="network">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:boundaryEvent id="timer_sla" attachedToRef="task_work">
      <bpmn:extensionElements><camunda:properties>
        <camunda:property name="sla" value="resolution" />
      </camunda:properties></bpmn:extensionElements>
      <bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:timerEventDefinition>
        <bpmn:timeDuration xsi:type="bpmn:tFormalExpression">"PT8H"</bpmn:timeDuration>
      </bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:userTask id="task_lead" name="组长处理" camunda:assignee="${lead_nobody_set}">
      <bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="end_lead"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="task_work" />
    <bpmn:sequenceFlow id="f2" sourceRef="task_work" targetRef="end" />
    <bpmn:sequenceFlow id="f3" sourceRef="timer_sla" targetRef="task_lead" />
    <bpmn:sequenceFlow id="f4" sourceRef="task_lead" targetRef="end_lead" />
  </bpmn:process>
</bpmn:definitions>
"""


def test_an_escalation_path_that_fails_refuses_the_change_and_stores_none_of_it(
    db_session, workday, as_user
):
    engine.deploy(
        db_session=db_session,
        files=[("sla_broken.bpmn", BROKEN_ESCALATION.encode())],
        actor="admin",
    )
    policy(
        db_session, workday, "P1", process_key="sla_broken", priority="P1", resolution_minutes=60
    )
    policy(db_session, workday, "其他", process_key="sla_broken", resolution_minutes=960)
    with at(THURSDAY_9):
        flow = Flow(db_session, "alice", "sla_broken")
    planned = datetime(2026, 11, 27, 18, 0, tzinfo=SHANGHAI)
    assert timers(flow) == {"timer_sla": planned}

    with at(THURSDAY_9 + timedelta(hours=2)):
        answer = as_user("admin").patch(
            f"/api/v1/tickets/{flow.ticket.id}", json={"priority": "P1"}
        )
    # The new deadline (10:00) passed, the escalation path cannot open: a problem naming the
    # element, and neither the priority, the clocks nor the timer changed.
    assert answer.status_code == 422, answer.json
    assert "task_lead" in answer.json["detail"]
    db_session.expire_all()
    assert flow.ticket.priority == "P3"
    assert timers(flow) == {"timer_sla": planned}
    assert resolution_deadline(flow) == planned
    assert list(flow.open_tasks()) == ["task_work"]
