"""A timer boundary event marked as an SLA timer with a value the clock cannot use is refused at
deploy, naming the element and the fix in Chinese and English; the designer's validation lists
the same problem, and the shipped processes pass. So is a user task property another part of
Paidan reads (`sla_due`, `dispatch_mode`) with a value it cannot use, or on anything else."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from app import engine
from app.dispatch.models import MODES
from app.engine.lint import DISPATCH_MODES
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


def with_property(bpmn: str, element_id: str, name: str, value: str) -> bytes:
    """The BPMN with a camunda property on the element (which has no extension elements)."""
    opening = re.compile(rf'(<bpmn:\w+ id="{element_id}"[^>]*?)(/?)>')
    prop = (
        "<bpmn:extensionElements><camunda:properties>"
        f'<camunda:property name="{name}" value="{value}" />'
        "</camunda:properties></bpmn:extensionElements>"
    )

    def add(match):
        tag = match.group(0).split()[0][1:]
        return f"{match.group(1)}>{prop}</{tag}>" if match.group(2) else f"{match.group(1)}>{prop}"

    found, replaced = opening.subn(add, bpmn, count=1)
    assert replaced == 1, element_id
    return found.encode()


# (file stem, element, property, value, code, in the Chinese message, in the English one)
BAD_TASK_PROPERTIES = [
    ("due_value", "task_onsite", "sla_due", "sla", "sla-due-property", "「sla」无效，应为 clock",
     "'sla'; it must be clock"),
    ("due_empty", "task_onsite", "sla_due", "", "sla-due-property", "「」无效",
     "it must be clock (the due date follows the SLA) or own"),
    ("due_case", "task_acceptance", "sla_due", "Own", "sla-due-property", "「Own」无效", "'Own'"),
    ("due_gateway", "gw_parts", "sla_due", "own", "sla-due-property", "只能用在用户任务上",
     "applies to user tasks only"),
    ("mode_value", "task_onsite", "dispatch_mode", "automatic", "dispatch-mode-property",
     "「automatic」无效，应为 dispatcher（调度员选择）", "it must be dispatcher, auto or pool"),
    ("mode_gateway", "gw_parts", "dispatch_mode", "auto", "dispatch-mode-property",
     "派单方式有误：属性 dispatch_mode 只能用在用户任务上", "applies to user tasks only"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("element_id", "name", "value", "code", "zh", "en"),
    [case[1:] for case in BAD_TASK_PROPERTIES],
    ids=[case[0] for case in BAD_TASK_PROPERTIES],
)
def test_a_bad_task_property_is_refused_naming_the_element(element_id, name, value, code, zh, en):
    data = with_property(REPAIR, element_id, name, value)
    problems = [p for p in inspect([("equipment_repair.bpmn", data)]).problems if p.code == code]
    assert [p.element_id for p in problems] == [element_id]
    assert zh in problems[0].zh and element_id in problems[0].zh, problems[0].zh
    assert en in problems[0].en, problems[0].en


@pytest.mark.parametrize(
    ("name", "value"),
    [("sla_due", "own"), ("sla_due", "clock"), *(("dispatch_mode", m) for m in MODES)],
)
def test_the_values_the_readers_use_pass(name, value):
    data = with_property(REPAIR, "task_onsite", name, value)
    codes = [p.code for p in inspect([("equipment_repair.bpmn", data)]).problems]
    assert not [code for code in codes if code.endswith("-property")], codes


def test_the_engine_knows_every_dispatch_mode():
    # The engine imports no domain package: it spells the modes out, and they must agree.
    assert set(DISPATCH_MODES) == set(MODES)


def test_the_designer_flags_the_same_task_property_problems_as_deploy(tmp_path):
    """The designer's bpmnlint rules paidan/sla-due-property and paidan/dispatch-mode-property
    (run here by bpmnlint's command line with the designer's config) name the elements the
    engine refuses, and no others."""
    npx = shutil.which("npx")
    if npx is None:
        pytest.fail("npx is not on PATH: install Node 20+ and run `npm ci --prefix designer`")
    for stem, element_id, name, value, *_ in BAD_TASK_PROPERTIES:
        (tmp_path / f"{stem}.bpmn").write_bytes(with_property(REPAIR, element_id, name, value))
    (tmp_path / "good.bpmn").write_bytes(with_property(REPAIR, "task_onsite", "sla_due", "own"))
    result = subprocess.run(
        [npx, "--no-install", "bpmnlint", *sorted(str(p) for p in tmp_path.glob("*.bpmn"))],
        cwd=ROOT / "designer",
        capture_output=True,
        text=True,
        timeout=120,
    )
    flagged = {}
    current = None
    for line in result.stdout.splitlines():
        if line.endswith(".bpmn"):
            current = Path(line.strip()).stem
        elif "-property" in line and "paidan/" in line:
            flagged.setdefault(current, []).append((line.split()[0], line.split()[-1]))
    expected = {
        stem: [(element_id, f"paidan/{code}")]
        for stem, element_id, _name, _value, code, *_ in BAD_TASK_PROPERTIES
    }
    assert flagged == expected, result.stdout + result.stderr
