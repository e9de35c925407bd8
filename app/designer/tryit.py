"""The DMN "try it" panel: a decision evaluated on typed inputs exactly as a process would.

The decision is not interpreted here. It runs inside a one-task process (start → business
rule task → end) parsed by the engine's parser and run by SpiffWorkflow with the engine's
script engine, so the rules, the hit policy and the safe evaluator are the very ones a
deployed business rule task uses. The DMN file passes the deploy checks first.
"""

from __future__ import annotations

import json
import logging
from xml.sax.saxutils import quoteattr

from lxml import etree
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from app.engine import parser as bpmn
from app.engine.scripting import SCRIPT_ENGINE
from app.errors import InvalidInput, ProcessError
from app.forms.validation import validate as validate_names

log = logging.getLogger(__name__)

DMN_FILENAME = "decision.dmn"
_TASK = "paidan_try_decision"
_WRAPPER = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="paidan_try_definitions"
  targetNamespace="http://paidan.local/designer/try">
  <bpmn:process id="paidan_try" isExecutable="true">
    <bpmn:startEvent id="paidan_try_start"/>
    <bpmn:businessRuleTask id="{task}" camunda:decisionRef={ref}/>
    <bpmn:endEvent id="paidan_try_end"/>
    <bpmn:sequenceFlow id="paidan_try_in" sourceRef="paidan_try_start" targetRef="{task}"/>
    <bpmn:sequenceFlow id="paidan_try_out" sourceRef="{task}" targetRef="paidan_try_end"/>
  </bpmn:process>
</bpmn:definitions>
"""


def _refuse(problem: bpmn.Problem) -> ProcessError:
    return ProcessError(problem.zh, problem.en)


def decision_ids(root: etree._Element) -> dict[str, str]:
    """{decision id: name} of a DMN file."""
    return {
        node.get("id"): node.get("name") or ""
        for node in root.iter()
        if isinstance(node.tag, str) and etree.QName(node).localname == "decision"
    }


def try_decision(*, dmn_xml: str, decision_id: str, inputs: dict) -> dict:
    """{decision_id, outputs, matched_rules, result} of ``decision_id`` on ``inputs``.

    ``outputs`` holds one row per matched rule; ``result`` is what the business rule task
    adds to the process data (a COLLECT table gives lists).
    """
    root, problem = bpmn.read_xml(DMN_FILENAME, dmn_xml.encode("utf-8"))
    if problem is not None:
        raise _refuse(problem)
    known = decision_ids(root)
    if decision_id not in known:
        listed = ", ".join(sorted(known)) or "—"
        raise ProcessError(
            f"决策 {decision_id} 不在这个 DMN 文件中（文件中的决策：{listed}）",
            f"decision {decision_id} is not in this DMN file (its decisions: {listed})",
        )
    for found in bpmn.dmn_expression_problems(DMN_FILENAME, root):
        raise _refuse(found)
    try:
        data = validate_names(None, inputs)
    except InvalidInput as error:
        raise ProcessError(f"输入有误：{error.zh}", f"invalid inputs: {error.en}") from None
    wrapper = _WRAPPER.format(task=_TASK, ref=quoteattr(decision_id))
    bundle = bpmn.Bundle(
        dmn={DMN_FILENAME: root}, bpmn={"try.bpmn": etree.fromstring(wrapper.encode("utf-8"))}
    )
    parser, problems = bpmn.build_parser(bundle)
    spec, _subprocesses, spec_problems = bpmn.parse_spec(parser, "paidan_try", DMN_FILENAME)
    for found in problems + spec_problems:
        raise _refuse(found)
    return _run(spec, decision_id, data)


def _run(spec, decision_id: str, data: dict) -> dict:
    workflow = BpmnWorkflow(spec, script_engine=SCRIPT_ENGINE)
    start = workflow.get_tasks(state=TaskState.READY)[0]
    start.data.update(data)
    seen: dict = {}

    def before(task):
        if task.task_spec.name == _TASK:
            matched = task.task_spec.dmnEngine.decide(task)
            seen["matched"] = [rule.id for rule in matched]
            seen["outputs"] = [dict(rule.output_as_dict(task)) for rule in matched]
            seen["inputs"] = dict(task.data)

    def after(task):
        if task.task_spec.name == _TASK:
            seen["result"] = {
                name: value
                for name, value in task.data.items()
                if name not in seen["inputs"] or seen["inputs"][name] != value
            }

    try:
        workflow.do_engine_steps(before, after)
    except Exception as error:  # the decision failed on these inputs: say why, never a 500
        log.info("decision %s failed on %r: %r", decision_id, data, error)
        reason = str(error).split(". Rule failed")[0]
        raise ProcessError(
            f"决策 {decision_id} 无法用这些输入计算：{reason}",
            f"decision {decision_id} cannot be evaluated on these inputs: {reason}",
        ) from None
    return _json_safe(
        {
            "decision_id": decision_id,
            "outputs": seen.get("outputs", []),
            "matched_rules": seen.get("matched", []),
            "result": seen.get("result", {}),
        }
    )


def _json_safe(value):
    """What a rule returns is Python (a set, a date): answered as JSON would carry it."""

    def plain(item):
        return sorted(item, key=str) if isinstance(item, set | frozenset) else str(item)

    return json.loads(json.dumps(value, default=plain))
