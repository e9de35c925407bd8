"""Saved state: its format is recorded, and a state of another format is never misread."""

import json
import re
from datetime import datetime

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from app.engine.parser import PaidanParser
from app.engine.serializer import STATE_FORMAT, dump_state, load_data, load_state
from app.errors import ProcessError
from tests.flows import Flow


def test_every_instance_records_the_format_it_was_saved_in(db_session):
    flow = Flow(db_session, "alice", "it_service")
    assert flow.instance.state_format == STATE_FORMAT
    assert STATE_FORMAT.startswith("spiff-") and "/paidan-" in STATE_FORMAT
    state = json.loads(flow.instance.state)
    assert "spec" not in state and "subprocess_specs" not in state, "specs live per version"


def test_a_state_of_another_format_is_refused_and_left_untouched(db_session):
    flow = Flow(db_session, "alice", "it_service")
    instance = flow.instance
    instance.state_format = "spiff-1.4/paidan-0"
    db_session.commit()
    before = (instance.state, instance.version)
    with pytest.raises(ProcessError, match=re.escape("spiff-1.4/paidan-0")):
        flow.do(
            "task_triage",
            "desk",
            category="network",
            priority="P1",
            region="beijing",
            resolution="forward",
            triage_note="",
        )
    db_session.rollback()
    db_session.refresh(instance)
    assert (instance.state, instance.version) == before


THREE_STEPS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    id="defs" targetNamespace="http://paidan.example/test">
  <bpmn:process id="three_steps" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:userTask id="first" name="第一步"/>
    <bpmn:userTask id="second" name="第二步"/>
    <bpmn:userTask id="third" name="第三步"/>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="first"/>
    <bpmn:sequenceFlow id="f2" sourceRef="first" targetRef="second"/>
    <bpmn:sequenceFlow id="f3" sourceRef="second" targetRef="third"/>
    <bpmn:sequenceFlow id="f4" sourceRef="third" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>"""


def test_the_data_read_from_a_saved_state_is_what_its_latest_task_sees():
    """serializer.load_data rebuilds the data along the chain of saved deltas: values added,
    replaced, typed (a datetime) and deleted on the way all come out as restoring the whole
    workflow gives them."""
    parser = PaidanParser()
    parser.add_bpmn_str(THREE_STEPS.encode())
    workflow = BpmnWorkflow(parser.get_spec("three_steps"))
    assert load_data(dump_state(workflow)) == {}, "nothing has run: the workflow's own data"
    workflow.do_engine_steps()
    steps = [
        {"gone": "x", "site": {"floor": 3, "room": "301"}, "at": datetime(2026, 11, 27, 9, 30)},
        {"site": {"floor": 4}, "parts": ["filter"]},
    ]
    for element_id, update in zip(("first", "second"), steps, strict=True):
        (task,) = [t for t in workflow.get_tasks(state=TaskState.READY)]
        assert task.task_spec.name == element_id
        task.data.update(update)
        if element_id == "second":
            del task.data["gone"]
        task.run()
        workflow.do_engine_steps()
    state = dump_state(workflow)
    assert json.loads(state)["tasks"][str(workflow.last_task.id)]["delta"], "saved as a delta"
    expected = {"site": {"floor": 4}, "parts": ["filter"], "at": datetime(2026, 11, 27, 9, 30)}
    restored = load_state(state, workflow.spec, {}, None)
    assert load_data(state) == restored.last_task.data == workflow.last_task.data == expected
