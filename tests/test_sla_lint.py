"""A timer boundary event marked as an SLA timer with a value the clock cannot use is refused at
deploy, naming the element and the fix in Chinese and English; the designer's validation lists
the same problem, and the shipped processes pass."""

from __future__ import annotations

import re

import pytest

from app import engine
from app.engine.service import inspect
from app.errors import InvalidInput
from tests.conftest import ROOT
from tests.test_sla_bpmn_timer import probe_bpmn

REPAIR = (ROOT / "processes" / "equipment_repair.bpmn").read_text("utf-8")


@pytest.mark.parametrize(
    ("properties", "zh", "en"),
    [
        (
            {"sla": "resolutoin"},
            "「resolutoin」无效",
            "'resolutoin'; it must be response or resolution",
        ),
        ({"sla": ""}, "「」无效", "it must be response or resolution"),
        ({"sla": "resolution", "sla_percent": "75%"}, "「75%」不是数字", "'75%' is not a number"),
        ({"sla": "resolution", "sla_percent": "0"}, "0 不在 0（不含）到 1000 之间", "above 0"),
        ({"sla": "resolution", "sla_percent": "1500"}, "1500 不在", "at most 1000"),
        ({"sla": "resolution", "sla_percent": "nan"}, "nan 不在", "at most 1000"),
        ({"sla_percent": "50"}, "有 sla_percent 但没有 sla", "has sla_percent but no sla"),
    ],
)
def test_a_bad_sla_property_is_refused_at_deploy_naming_the_element(db_session, properties, zh, en):
    data = probe_bpmn(timer_good={"sla": "resolution"}, timer_bad=properties)
    with pytest.raises(InvalidInput) as refused:
        engine.deploy(db_session=db_session, files=[("sla_probe.bpmn", data)], actor="admin")
    problem = refused.value
    assert "sla_probe.bpmn" in problem.zh and "timer_bad" in problem.zh
    assert zh in problem.zh, problem.zh
    assert "timer_bad" in problem.en and en in problem.en, problem.en
    assert "timer_good" not in problem.en


def test_validation_lists_the_bad_property_with_its_element():
    data = probe_bpmn(
        timer_kind={"sla": "resolve"},
        timer_percent={"sla": "response", "sla_percent": "abc"},
    )
    found = [
        (p.code, p.element_id)
        for p in inspect([("sla_probe.bpmn", data)]).problems
        if p.code == "sla-timer-property"
    ]
    assert found == [("sla-timer-property", "timer_kind"), ("sla-timer-property", "timer_percent")]


def test_an_sla_property_on_a_boundary_event_without_a_timer_is_refused():
    timer = re.compile(
        r'<bpmn:timerEventDefinition id="TimerEventDefinition_repair_sla">.*?'
        r"</bpmn:timerEventDefinition>",
        re.S,
    )
    bpmn, replaced = timer.subn('<bpmn:signalEventDefinition id="Signal_repair_sla" />', REPAIR)
    assert replaced == 1
    problems = [
        p
        for p in inspect([("equipment_repair.bpmn", bpmn.encode())]).problems
        if p.code == "sla-timer-property"
    ]
    assert [p.element_id for p in problems] == ["timer_repair_sla"]
    assert (
        "只能用在定时器边界事件上" in problems[0].zh and "timer boundary events" in problems[0].en
    )


def test_the_shipped_processes_pass():
    for name in ("it_service.bpmn", "equipment_repair.bpmn"):
        data = (ROOT / "processes" / name).read_bytes()
        codes = [p.code for p in inspect([(name, data)]).problems]
        assert "sla-timer-property" not in codes, name
