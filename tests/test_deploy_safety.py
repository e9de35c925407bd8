"""Deploying process files through the REST API: what is stored, and what is refused and why.

A refused upload must answer 400 application/problem+json whose Chinese and English
messages name the file or element and the reason, and must store nothing.
"""

from __future__ import annotations

import io
import itertools
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.engine.models import ProcessDefinition

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = ROOT / "processes"
URL = "/api/v1/process-definitions"
KEY = "deploy_probe"

BPMN_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"'
    ' xmlns:camunda="http://camunda.org/schema/1.0/bpmn"'
    ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
    ' id="Definitions_probe" targetNamespace="http://bpmn.io/schema/bpmn">\n'
)


def probe_bpmn(
    *,
    condition: str = "amount > 100",
    script: str = "approved = True",
    timer: str | None = None,
    user_task_attributes: str | None = None,
    decision_ref: str | None = None,
    name: str = "部署检查",
    doctype: str = "",
) -> bytes:
    """A minimal executable Camunda-dialect process.

    start -> [timer] -> gateway -(condition)-> script task -> [user task] -> [rule task] -> end
                                -(default)--> end
    """
    chain = ['<bpmn:startEvent id="start_probe" name="开始"/>']
    if timer is not None:
        chain.append(
            '<bpmn:intermediateCatchEvent id="timer_wait" name="等待">'
            "<bpmn:timerEventDefinition>"
            f'<bpmn:timeDuration xsi:type="bpmn:tFormalExpression">{timer}</bpmn:timeDuration>'
            "</bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>"
        )
    chain.append('<bpmn:exclusiveGateway id="gw_amount" name="金额判断" default="flow_small"/>')
    chain.append(
        '<bpmn:scriptTask id="task_script" name="审批脚本" scriptFormat="python">'
        f"<bpmn:script>{script}</bpmn:script></bpmn:scriptTask>"
    )
    if user_task_attributes is not None:
        chain.append(f'<bpmn:userTask id="task_user" name="人工处理" {user_task_attributes}/>')
    if decision_ref is not None:
        chain.append(
            f'<bpmn:businessRuleTask id="task_rule" name="规则" camunda:decisionRef="{decision_ref}"/>'
        )
    chain.append('<bpmn:endEvent id="end_done" name="结束"/>')

    ids = [node.split('id="', 1)[1].split('"', 1)[0] for node in chain]
    flows = []
    for source, target in itertools.pairwise(ids):
        if source == "gw_amount":
            flows.append(
                f'<bpmn:sequenceFlow id="flow_large" sourceRef="{source}" targetRef="{target}">'
                f'<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{condition}'
                "</bpmn:conditionExpression></bpmn:sequenceFlow>"
            )
        else:
            flows.append(
                f'<bpmn:sequenceFlow id="flow_{source}" sourceRef="{source}" targetRef="{target}"/>'
            )
    chain.append('<bpmn:endEvent id="end_small" name="小额结束"/>')
    flows.append('<bpmn:sequenceFlow id="flow_small" sourceRef="gw_amount" targetRef="end_small"/>')

    body = "\n".join(chain + flows)
    xml = (
        BPMN_HEAD.replace("\n<bpmn:definitions", f"\n{doctype}<bpmn:definitions", 1)
        + f'<bpmn:process id="{KEY}" name="{name}" isExecutable="true">\n{body}\n'
        + "</bpmn:process>\n</bpmn:definitions>\n"
    )
    return xml.encode("utf-8")


def escape_xml(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def deploy(api, *files: tuple[str, bytes]):
    return api.post(
        URL,
        data={"files": [(io.BytesIO(data), filename) for filename, data in files]},
        content_type="multipart/form-data",
    )


def definition_count(db_session) -> int:
    return db_session.scalar(select(func.count()).select_from(ProcessDefinition))


def assert_refused(response, *expected: str, status: int = 400) -> dict:
    """A problem+json refusal whose Chinese and English messages both name every ``expected``."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    problem = response.json
    assert problem["status"] == status
    for text in expected:
        assert text in problem["detail_zh"], (text, problem["detail_zh"])
        assert text in problem["detail_en"], (text, problem["detail_en"])
    assert problem["detail"] == problem["detail_zh"]  # Chinese unless Accept-Language asks
    return problem


@pytest.fixture
def admin(as_user):
    return as_user("admin")


@pytest.fixture
def refused(admin, db_session):
    """Upload files and check the refusal names ``expected`` and stored nothing."""

    def check(files, *expected: str, status: int = 400) -> dict:
        before = definition_count(db_session)
        problem = assert_refused(deploy(admin, *files), *expected, status=status)
        assert definition_count(db_session) == before, "a refused upload stored a definition"
        return problem

    return check


# ---------------------------------------------------------------- what deploys


def test_a_valid_process_deploys_and_versions_only_change_with_its_content(admin, db_session):
    before = definition_count(db_session)

    first = deploy(admin, ("probe.bpmn", probe_bpmn()))
    assert first.status_code == 201, first.json
    [created] = first.json
    assert (created["key"], created["version"], created["name"]) == (KEY, 1, "部署检查")
    assert created["bpmn_filename"] == "probe.bpmn" and created["deployed_by"] == "admin"
    assert definition_count(db_session) == before + 1

    again = deploy(admin, ("probe.bpmn", probe_bpmn()))
    assert again.status_code == 201
    assert [(d["key"], d["version"], d["id"]) for d in again.json] == [(KEY, 1, created["id"])]
    assert definition_count(db_session) == before + 1

    changed = deploy(admin, ("probe.bpmn", probe_bpmn(condition="amount > 500")))
    assert changed.status_code == 201
    assert [(d["key"], d["version"]) for d in changed.json] == [(KEY, 2)]
    assert definition_count(db_session) == before + 2

    listed = admin.get(URL).json["items"]
    assert {d["key"]: d["version"] for d in listed}[KEY] == 2


def test_the_deployed_probe_runs_its_condition_and_script(admin):
    assert deploy(admin, ("probe.bpmn", probe_bpmn())).status_code == 201
    started = admin.post(
        "/api/v1/process-instances", json={"process_key": KEY, "data": {"amount": 120}}
    )
    assert started.status_code == 201, started.json
    assert started.json["status"] == "completed"
    assert started.json["data"]["approved"] is True


def test_the_shipped_files_redeploy_without_new_versions(admin, db_session):
    before = {d["key"]: d["version"] for d in admin.get(URL).json["items"]}
    assert {"it_service", "equipment_repair"} <= set(before)
    count = definition_count(db_session)
    paths = sorted(PROCESSES.glob("*.bpmn")) + sorted(PROCESSES.glob("*.dmn"))
    paths += sorted((PROCESSES / "forms").glob("*.form"))

    response = deploy(admin, *[(path.name, path.read_bytes()) for path in paths])

    assert response.status_code == 201, response.json
    assert {d["key"]: d["version"] for d in response.json} == {
        "it_service": before["it_service"],
        "equipment_repair": before["equipment_repair"],
    }
    it_service = next(d for d in response.json if d["key"] == "it_service")
    assert it_service["decisions"] == ["assignment.dmn"]
    assert "it_triage" in it_service["forms"]
    assert definition_count(db_session) == count


# ---------------------------------------------------------------- code in expressions

ESCAPES = {
    "import": "__import__('os').system('id')",
    "open": "open('/etc/passwd').read()",
    "exec": "exec('x=1')",
    "eval": "eval('1')",
    "subclasses": "().__class__.__base__.__subclasses__()",
    "globals": "x.__globals__",
}
REASONS_EN = {
    "import": "__import__",
    "open": "open",
    "exec": "exec",
    "eval": "eval",
    "subclasses": "__subclasses__",
    "globals": "__globals__",
}


@pytest.mark.parametrize("kind", list(ESCAPES))
def test_a_script_that_escapes_the_sandbox_is_refused(refused, kind):
    script = f"result = {ESCAPES[kind]}"
    problem = refused(
        [("probe.bpmn", probe_bpmn(script=escape_xml(script)))],
        "probe.bpmn",
        "task_script",
        REASONS_EN[kind],
    )
    assert "脚本" in problem["detail_zh"] and "script" in problem["detail_en"]
    assert "不允许" in problem["detail_zh"] and "not allowed" in problem["detail_en"]


@pytest.mark.parametrize("kind", list(ESCAPES))
def test_a_condition_that_escapes_the_sandbox_is_refused(refused, kind):
    problem = refused(
        [("probe.bpmn", probe_bpmn(condition=escape_xml(ESCAPES[kind])))],
        "probe.bpmn",
        "flow_large",
        REASONS_EN[kind],
    )
    assert "条件" in problem["detail_zh"] and "condition" in problem["detail_en"]
    assert "不允许" in problem["detail_zh"] and "not allowed" in problem["detail_en"]


def test_a_script_statement_outside_the_allowed_set_is_refused(refused):
    problem = refused(
        [("probe.bpmn", probe_bpmn(script="import os"))], "probe.bpmn", "task_script", "Import"
    )
    assert "不允许" in problem["detail_zh"] and "not allowed" in problem["detail_en"]


def test_a_timer_expression_with_code_is_refused(refused):
    problem = refused(
        [("probe.bpmn", probe_bpmn(timer=escape_xml("__import__('os')")))],
        "probe.bpmn",
        "timer_wait",
        "__import__",
    )
    assert "定时器表达式" in problem["detail_zh"] and "timer expression" in problem["detail_en"]


def test_a_timer_is_named_by_its_event_when_the_definition_has_an_id(refused):
    """Camunda Modeler gives every timerEventDefinition an id; people find the event."""
    xml = probe_bpmn(timer=escape_xml("__import__('os')")).replace(
        b"<bpmn:timerEventDefinition>", b'<bpmn:timerEventDefinition id="TimerEventDefinition_0x1">'
    )
    refused([("probe.bpmn", xml)], "probe.bpmn", "timer_wait", "__import__")


def test_an_assignee_expression_with_code_is_refused(refused):
    attributes = 'camunda:assignee="${__import__(&apos;os&apos;).getlogin()}"'
    problem = refused(
        [("probe.bpmn", probe_bpmn(user_task_attributes=attributes))],
        "probe.bpmn",
        "task_user",
        "__import__",
    )
    assert "表达式" in problem["detail_zh"] and "expression" in problem["detail_en"]


def test_a_script_in_another_language_is_refused(refused):
    xml = probe_bpmn().replace(b'scriptFormat="python"', b'scriptFormat="javascript"')
    refused([("probe.bpmn", xml)], "probe.bpmn", "task_script", "javascript")


# ---------------------------------------------------------------- hostile or broken XML


def test_an_external_entity_is_refused_before_it_is_read(refused):
    doctype = '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n'
    problem = refused([("xxe.bpmn", probe_bpmn(name="&e;", doctype=doctype))], "xxe.bpmn", "DTD")
    assert "root:" not in json.dumps(problem)


def test_nested_entities_are_refused(refused):
    doctype = (
        "<!DOCTYPE lolz [\n"
        '<!ENTITY lol "lol">\n'
        '<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n'
        '<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">\n'
        '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">\n'
        '<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">\n'
        '<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">\n'
        '<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">\n'
        '<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">\n'
        '<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">\n'
        '<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">\n'
        "]>\n"
    )
    refused([("lolz.bpmn", probe_bpmn(name="&lol9;", doctype=doctype))], "lolz.bpmn", "DTD")


def test_malformed_xml_is_refused_with_the_file_and_line(refused):
    xml = (
        probe_bpmn()
        .decode()
        .replace('<bpmn:endEvent id="end_done" name="结束"/>', "<bpmn:endEvent>")
    )
    line = next(
        number for number, text in enumerate(xml.splitlines(), 1) if "<bpmn:endEvent>" in text
    )
    problem = refused([("broken.bpmn", xml.encode())], "broken.bpmn")
    assert "不是格式正确的 XML" in problem["detail_zh"]
    assert "not well-formed XML" in problem["detail_en"]
    # the parser reports the line where the unclosed element is found out
    reported = int(problem["detail_en"].split("(line ", 1)[1].split(",", 1)[0])
    assert reported >= line
    assert f"第 {reported} 行" in problem["detail_zh"]


def test_a_malformed_dmn_is_refused_with_its_name_and_line(refused):
    problem = refused(
        [("probe.bpmn", probe_bpmn()), ("rules.dmn", b"<definitions><decision></definitions>")],
        "rules.dmn",
    )
    assert "第 1 行" in problem["detail_zh"] and "line 1" in problem["detail_en"]


# ---------------------------------------------------------------- references and files


def test_a_rule_task_without_its_decision_is_refused(refused):
    problem = refused(
        [("probe.bpmn", probe_bpmn(decision_ref="nope"))], "probe.bpmn", "task_rule", "nope"
    )
    assert ".dmn" in problem["detail_zh"] and ".dmn" in problem["detail_en"]


DMN = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="Definitions_probe_rules"
    name="检查规则" namespace="http://camunda.org/schema/1.0/dmn">
  <decision id="probe_rules" name="检查规则">
    <decisionTable id="DecisionTable_probe" hitPolicy="UNIQUE">
      <input id="input_amount" label="金额">
        <inputExpression id="InputExpression_amount" typeRef="number">
          <text>amount</text>
        </inputExpression>
      </input>
      <output id="output_level" label="级别" name="level" typeRef="string"/>
      <rule id="rule_big">
        <inputEntry id="rule_big_amount"><text>{entry}</text></inputEntry>
        <outputEntry id="rule_big_level"><text>"big"</text></outputEntry>
      </rule>
    </decisionTable>
  </decision>
</definitions>
"""


def test_a_rule_task_with_its_decision_deploys(admin):
    files = [
        ("probe.bpmn", probe_bpmn(decision_ref="probe_rules")),
        ("probe.dmn", DMN.format(entry="&gt;= 100").encode()),
    ]
    response = deploy(admin, *files)
    assert response.status_code == 201, response.json
    assert response.json[0]["decisions"] == ["probe.dmn"]


@pytest.mark.parametrize(
    "entry", ["__import__('os')", "? .__class__", "().__class__.__base__.__subclasses__()"]
)
def test_a_decision_entry_with_code_is_refused(refused, entry):
    files = [
        ("probe.bpmn", probe_bpmn(decision_ref="probe_rules")),
        ("probe.dmn", DMN.format(entry=escape_xml(entry)).encode()),
    ]
    problem = refused(files, "probe.dmn", "rule_big_amount")
    assert "规则条目" in problem["detail_zh"] and "rule entry" in problem["detail_en"]


@pytest.mark.parametrize("entry", ["__import__('os')", "open('/etc/passwd')"])
def test_a_decision_entry_with_code_is_refused_for_that_reason(refused, entry):
    files = [
        ("probe.bpmn", probe_bpmn(decision_ref="probe_rules")),
        ("probe.dmn", DMN.format(entry=escape_xml(entry)).encode()),
    ]
    problem = refused(files, "probe.dmn", "rule_big_amount")
    name = entry.split("(")[0]
    assert f"`{name}`" in problem["detail_zh"] and f"`{name}`" in problem["detail_en"]
    assert "not allowed" in problem["detail_en"]
    assert "dmninputexpr" not in problem["detail_zh"] + problem["detail_en"]


def test_a_user_task_with_a_form_not_uploaded_is_refused(refused):
    attributes = 'camunda:formKey="no_such_form" camunda:candidateGroups="service_desk"'
    problem = refused(
        [("probe.bpmn", probe_bpmn(user_task_attributes=attributes))],
        "probe.bpmn",
        "task_user",
        "no_such_form",
    )
    assert ".form" in problem["detail_zh"] and ".form" in problem["detail_en"]


def test_a_user_task_with_its_form_uploaded_deploys(admin):
    attributes = 'camunda:formKey="probe_form" camunda:candidateGroups="service_desk"'
    form = {
        "id": "probe_form",
        "type": "default",
        "components": [{"type": "textfield", "id": "note", "key": "note", "label": "备注"}],
    }
    response = deploy(
        admin,
        ("probe.bpmn", probe_bpmn(user_task_attributes=attributes)),
        ("probe.form", json.dumps(form).encode()),
    )
    assert response.status_code == 201, response.json
    assert response.json[0]["forms"] == ["probe_form"]


def test_an_unsupported_file_type_is_refused(refused):
    refused([("probe.bpmn", probe_bpmn()), ("notes.txt", b"hello")], "notes.txt", ".bpmn", ".form")


def test_an_upload_without_a_bpmn_file_is_refused(refused):
    form = {"id": "lonely", "components": []}
    refused([("lonely.form", json.dumps(form).encode())], ".bpmn")


def test_an_upload_without_files_is_refused(admin, db_session):
    before = definition_count(db_session)
    response = admin.post(URL, data={}, content_type="multipart/form-data")
    assert_refused(response, "files")
    assert definition_count(db_session) == before


def test_a_process_that_is_not_executable_is_refused(refused):
    xml = probe_bpmn().replace(b'isExecutable="true"', b'isExecutable="false"')
    refused([("probe.bpmn", xml)], "isExecutable")


def test_only_an_admin_may_deploy(as_user, db_session):
    before = definition_count(db_session)
    response = deploy(as_user("desk"), ("probe.bpmn", probe_bpmn()))
    problem = assert_refused(response, "admin", status=403)
    assert problem["title"] == "Forbidden"
    assert definition_count(db_session) == before


def test_deploying_needs_a_signed_in_user(client, db_session):
    before = definition_count(db_session)
    response = client.post(
        URL,
        data={"files": [(io.BytesIO(probe_bpmn()), "probe.bpmn")]},
        content_type="multipart/form-data",
    )
    assert_refused(response, status=401)
    assert definition_count(db_session) == before


def test_one_bad_file_stores_none_of_the_good_ones(refused):
    good = probe_bpmn()
    bad = probe_bpmn(script="x = open('/etc/passwd')").replace(
        f'id="{KEY}"'.encode(), b'id="deploy_probe_bad"'
    )
    refused([("good.bpmn", good), ("bad.bpmn", bad)], "bad.bpmn", "task_script", "open")
