"""/api/v1/designer over REST with the real engine: drafts, validation, diff, deploy of a new
version while older work orders finish on theirs, the MIWG reference models refused with
reasons, DMN "try it" against a business rule task, waiting counts, and admins only."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import func, select

from app import engine
from app.engine.models import ProcessDefinition
from tests.conftest import ROOT
from tests.flows import Flow
from tests.miwg import MIWG_MODELS
from tests.test_tasks_api import assert_problem

API = "/api/v1/designer"
PROCESSES = ROOT / "processes"
DATA = ROOT / "tests" / "data"
MIWG = MIWG_MODELS
IT_SERVICE = (PROCESSES / "it_service.bpmn").read_text("utf-8")
TRIAGE = {"triage_note": "", "category": "network", "priority": "P2", "region": "beijing"}

# it_service with a new step after triage: 电话回访 (a callback by the service desk).
CALLBACK_TASK = (
    '<bpmn:userTask id="task_callback" name="电话回访" camunda:candidateGroups="service_desk">'
    "<bpmn:incoming>flow_triage_gw</bpmn:incoming><bpmn:outgoing>flow_callback_gw</bpmn:outgoing>"
    "</bpmn:userTask>\n    "
)
WITH_CALLBACK = (
    IT_SERVICE.replace(
        '<bpmn:exclusiveGateway id="gw_triage"',
        CALLBACK_TASK + '<bpmn:exclusiveGateway id="gw_triage"',
        1,
    )
    .replace(
        '<bpmn:sequenceFlow id="flow_triage_gw" sourceRef="task_triage" targetRef="gw_triage" />',
        '<bpmn:sequenceFlow id="flow_triage_gw" sourceRef="task_triage" targetRef="task_callback" />'
        '<bpmn:sequenceFlow id="flow_callback_gw" sourceRef="task_callback" targetRef="gw_triage" />',
        1,
    )
    .replace(
        "<bpmn:incoming>flow_triage_gw</bpmn:incoming>\n      <bpmn:outgoing>flow_forward",
        "<bpmn:incoming>flow_callback_gw</bpmn:incoming>\n      <bpmn:outgoing>flow_forward",
        1,
    )
)
# An unconnected user task offered to nobody: two problems on one element.
ORPHAN = IT_SERVICE.replace(
    '<bpmn:exclusiveGateway id="gw_triage"',
    '<bpmn:userTask id="task_orphan" name="孤立步骤" />\n    <bpmn:exclusiveGateway id="gw_triage"',
    1,
)


@pytest.fixture
def admin(as_user):
    return as_user("admin")


def draft_of(admin, key: str = "it_service") -> dict:
    response = admin.get(f"{API}/processes/{key}/draft")
    assert response.status_code == 200, response.json
    return response.json


def save(admin, bpmn_xml: str, lock_version: int, key: str = "it_service", **extra):
    draft = draft_of(admin, key)
    body = {"bpmn_xml": bpmn_xml, "dmn": draft["dmn"], "forms": draft["forms"], **extra}
    return admin.request(
        "PUT", f"{API}/processes/{key}/draft", json={**body, "lock_version": lock_version}
    )


def versions(db_session, key: str) -> int:
    return db_session.scalar(
        select(func.count()).select_from(ProcessDefinition).where(ProcessDefinition.key == key)
    )


# ---------------------------------------------------------------- drafts


def test_a_new_process_starts_as_a_draft_with_start_and_end(admin, db_session):
    created = admin.post(f"{API}/processes", json={"key": "repair_v2", "name": "设备报修（新版）"})
    assert created.status_code == 201, created.json
    assert created.json["lock_version"] == 1 and created.json["base_version"] is None
    root = etree.fromstring(created.json["bpmn_xml"].encode())
    process = root.find("{http://www.omg.org/spec/BPMN/20100524/MODEL}process")
    assert (process.get("id"), process.get("name")) == ("repair_v2", "设备报修（新版）")
    assert root.find(".//{http://www.omg.org/spec/BPMN/20100524/DI}BPMNShape") is not None

    listed = {p["key"]: p for p in admin.get(f"{API}/processes").json}
    assert listed["repair_v2"]["versions"] == []
    assert listed["repair_v2"]["draft"]["updated_by"] == "admin"
    assert [v["version"] for v in listed["it_service"]["versions"]] == [1]
    # start -> end passes every deploy check as it is
    assert admin.post(f"{API}/processes/repair_v2/validate").json == {"ok": True, "problems": []}


def test_a_new_process_key_must_be_new_and_an_ncname(admin):
    taken = admin.post(f"{API}/processes", json={"key": "it_service", "name": "重复"})
    assert_problem(taken, 409, "it_service")
    for bad in ("1st_process", "has space", "中文"):
        response = admin.post(f"{API}/processes", json={"key": bad, "name": "无效"})
        assert_problem(response, 422, bad, "NCName")


def test_a_draft_opens_from_the_latest_version_and_is_stored_on_save(admin, db_session):
    opened = draft_of(admin)
    assert opened["lock_version"] == 0 and opened["base_version"] == 1
    assert opened["bpmn_xml"] == IT_SERVICE and "assignment.dmn" in opened["dmn"]
    assert "it_triage" in opened["forms"]

    saved = save(admin, WITH_CALLBACK, 0)
    assert saved.status_code == 200, saved.json
    assert saved.json["lock_version"] == 1 and saved.json["updated_by"] == "admin"
    assert draft_of(admin)["bpmn_xml"] == WITH_CALLBACK
    assert versions(db_session, "it_service") == 1  # saving deploys nothing


def test_a_stale_save_is_refused_naming_who_saved_since(admin, as_user):
    assert save(admin, WITH_CALLBACK, 0).status_code == 200
    stale = save(as_user("admin"), ORPHAN, 0)
    assert_problem(stale, 409, "admin")
    assert draft_of(admin)["bpmn_xml"] == WITH_CALLBACK
    assert save(admin, ORPHAN, 1).json["lock_version"] == 2


def test_a_half_drawn_diagram_saves_but_broken_xml_is_refused_naming_file_and_line(admin):
    assert save(admin, ORPHAN, 0).status_code == 200  # not valid, still saved
    broken = save(admin, IT_SERVICE.replace("</bpmn:process>", "", 1), 1)
    problem = assert_problem(broken, 422, "it_service.bpmn")
    assert "第" in problem["detail_zh"] and "line" in problem["detail_en"]
    bad_dmn = save(admin, ORPHAN, 1, dmn={"assignment.dmn": "<definitions>"})
    assert_problem(bad_dmn, 422, "assignment.dmn")
    assert draft_of(admin)["lock_version"] == 1


def test_discarding_a_draft_goes_back_to_the_latest_version(admin):
    save(admin, WITH_CALLBACK, 0)
    assert admin.delete(f"{API}/processes/it_service/draft").status_code == 204
    assert draft_of(admin)["bpmn_xml"] == IT_SERVICE
    assert admin.delete(f"{API}/processes/nope/draft").status_code == 404


def test_duplicating_renames_the_process_and_keeps_its_decisions_and_forms(admin):
    copy = admin.post(
        f"{API}/processes/it_service/duplicate", json={"key": "it_copy", "name": "IT 副本"}
    )
    assert copy.status_code == 201, copy.json
    assert (
        'id="it_copy"' in copy.json["bpmn_xml"] and 'id="it_service"' not in copy.json["bpmn_xml"]
    )
    assert "assignment.dmn" in copy.json["dmn"] and "it_triage" in copy.json["forms"]
    validated = admin.post(f"{API}/processes/it_copy/validate").json
    assert validated["ok"], validated["problems"]


# ---------------------------------------------------------------- validate and diff


def test_validate_names_the_unconnected_task_and_the_task_offered_to_nobody(admin):
    answer = admin.post(f"{API}/processes/it_service/validate", json={"bpmn_xml": ORPHAN})
    assert answer.status_code == 200
    assert answer.json["ok"] is False
    on_orphan = {p["code"]: p for p in answer.json["problems"] if p["element_id"] == "task_orphan"}
    assert set(on_orphan) == {"flow-node-unconnected", "user-task-unassigned"}
    for found in on_orphan.values():
        assert found["severity"] == "error" and found["file"] == "it_service.bpmn"
        assert "task_orphan" in found["message_zh"] and "task_orphan" in found["message_en"]
    # nothing was stored: the stored draft (the latest version) is valid
    assert admin.post(f"{API}/processes/it_service/validate").json["ok"] is True


def test_validate_collects_every_problem_instead_of_stopping_at_the_first(admin):
    broken = ORPHAN.replace('resolution == "forward"', "resolution ==", 1).replace(
        'camunda:decisionRef="assignment"', 'camunda:decisionRef="no_such_table"', 1
    )
    problems = admin.post(f"{API}/processes/it_service/validate", json={"bpmn_xml": broken}).json[
        "problems"
    ]
    codes = {(p["code"], p["element_id"]) for p in problems}
    assert {
        ("expression-refused", "flow_forward"),
        ("decision-unknown", "task_assign"),
        ("flow-node-unconnected", "task_orphan"),
        ("user-task-unassigned", "task_orphan"),
    } <= codes


def test_a_bare_iso_timer_is_named_before_it_fails_at_run_time(admin):
    bare = IT_SERVICE.replace(
        ">iso_hours(sla_hours)</bpmn:timeDuration>", ">PT4H</bpmn:timeDuration>"
    )
    problems = admin.post(f"{API}/processes/it_service/validate", json={"bpmn_xml": bare}).json[
        "problems"
    ]
    (timer,) = [p for p in problems if p["code"] == "timer-unquoted"]
    assert timer["element_id"] == "timer_it_sla" and '"PT4H"' in timer["message_en"]


def test_the_engine_deploy_refuses_what_validate_lists(admin, db_session):
    """The checks are the engine's: an upload through /api/v1/process-definitions is refused
    for the same reason (its first error), whatever tool drew the file."""
    upload = admin.post(
        "/api/v1/process-definitions",
        data={
            "files": [
                (io.BytesIO(ORPHAN.encode()), "it_service.bpmn"),
                (io.BytesIO((PROCESSES / "assignment.dmn").read_bytes()), "assignment.dmn"),
                *[
                    (io.BytesIO(path.read_bytes()), path.name)
                    for path in sorted((PROCESSES / "forms").glob("*.form"))
                ],
            ]
        },
        content_type="multipart/form-data",
    )
    assert_problem(upload, 400, "task_orphan")
    assert versions(db_session, "it_service") == 1


def test_the_diff_lists_the_added_user_task_and_what_changed_around_it(admin):
    save(admin, WITH_CALLBACK, 0)
    diff = admin.get(f"{API}/processes/it_service/diff").json
    assert diff["base_version"] == 1
    added = {row["id"]: row for row in diff["added"]}
    assert added["task_callback"] == {"id": "task_callback", "type": "userTask", "name": "电话回访"}
    assert "flow_callback_gw" in added and diff["removed"] == []
    changed = {row["id"]: row["fields"] for row in diff["changed"]}
    assert changed == {"flow_triage_gw": ["targetRef"], "gw_triage": ["incoming"]}


def test_moving_shapes_is_no_change_and_a_new_group_is_one(admin):
    moved = IT_SERVICE.replace('<dc:Bounds x="', '<dc:Bounds x="1', 1)
    save(admin, moved.replace('candidateGroups="service_desk"', 'candidateGroups="network"', 1), 0)
    diff = admin.get(f"{API}/processes/it_service/diff").json
    assert diff["added"] == [] and diff["removed"] == []
    assert diff["changed"] == [
        {"id": "task_triage", "type": "userTask", "name": "问题分级", "fields": ["candidateGroups"]}
    ]


# ---------------------------------------------------------------- deploy


def test_deploy_makes_version_2_while_earlier_work_orders_finish_on_version_1(admin, db_session):
    earlier = Flow(db_session, "bob", "it_service", title="部署前的工单")
    save(admin, WITH_CALLBACK, 0)

    deployed = admin.post(f"{API}/processes/it_service/deploy", json={"lock_version": 1})
    assert deployed.status_code == 201, deployed.json
    assert deployed.json == {"key": "it_service", "version": 2, "new_version": True}
    assert draft_of(admin)["base_version"] == 2
    version_1 = admin.get(f"{API}/processes/it_service/versions/1/bpmn")
    assert version_1.get_data(as_text=True) == IT_SERVICE  # immutable
    assert "attachment" in version_1.headers["Content-Disposition"]
    assert "task_callback" in admin.get(f"{API}/processes/it_service/versions/2/bpmn").text

    later = Flow(db_session, "bob", "it_service", title="部署后的工单")
    earlier.do("task_triage", "desk", resolution="solved", **TRIAGE)
    later.do("task_triage", "desk", resolution="solved", **TRIAGE)
    assert earlier.instance.status == "completed" and earlier.instance.definition.version == 1
    assert "task_callback" not in earlier.completed_elements()
    assert later.instance.definition.version == 2 and set(later.open_tasks()) == {"task_callback"}
    later.do("task_callback", "desk")
    assert later.instance.status == "completed" and later.instance.definition.version == 2

    listed = {p["key"]: p for p in admin.get(f"{API}/processes").json}["it_service"]
    assert [(v["version"], v["deployed_by"]) for v in listed["versions"]] == [
        (2, "admin"),
        (1, None),
    ]


def test_deploying_unchanged_sources_keeps_the_version(admin, db_session):
    save(admin, IT_SERVICE, 0)
    again = admin.post(f"{API}/processes/it_service/deploy", json={"lock_version": 1})
    assert again.status_code == 200 and again.json["version"] == 1
    assert again.json["new_version"] is False and versions(db_session, "it_service") == 1


def test_deploy_refuses_a_draft_with_errors_with_every_problem_and_stores_nothing(
    admin, db_session
):
    save(admin, ORPHAN, 0)
    refused = admin.post(f"{API}/processes/it_service/deploy", json={"lock_version": 1})
    problem = assert_problem(refused, 422, "task_orphan")
    assert {p["code"] for p in problem["problems"]} >= {
        "flow-node-unconnected",
        "user-task-unassigned",
    }
    assert versions(db_session, "it_service") == 1
    assert draft_of(admin)["base_version"] == 1


def test_deploy_needs_a_saved_draft_and_the_current_lock(admin):
    assert_problem(
        admin.post(f"{API}/processes/it_service/deploy", json={"lock_version": 0}),
        409,
        "it_service",
    )
    save(admin, WITH_CALLBACK, 0)
    save(admin, WITH_CALLBACK, 1)
    assert_problem(
        admin.post(f"{API}/processes/it_service/deploy", json={"lock_version": 1}), 409, "admin"
    )


def first_process_id(path: Path) -> str:
    root = etree.parse(str(path)).getroot()
    return next(
        node.get("id")
        for node in root
        if isinstance(node.tag, str) and etree.QName(node).localname == "process"
    )


@pytest.mark.parametrize("path", MIWG, ids=lambda path: path.stem)
def test_a_miwg_reference_model_is_refused_naming_what_is_missing(admin, db_session, path):
    key = first_process_id(path)
    created = admin.post(f"{API}/processes", json={"key": key, "name": path.stem})
    assert created.status_code == 201, created.json
    xml = path.read_text("utf-8")
    saved = admin.request(
        "PUT", f"{API}/processes/{key}/draft", json={"bpmn_xml": xml, "lock_version": 1}
    )
    assert saved.status_code == 200, saved.json  # it opens and saves back unchanged
    assert draft_of(admin, key)["bpmn_xml"] == xml

    validated = admin.post(f"{API}/processes/{key}/validate")
    assert validated.status_code == 200 and validated.json["ok"] is False
    errors = [p for p in validated.json["problems"] if p["severity"] == "error"]
    assert errors and all(p["message_zh"] and p["message_en"] for p in errors)

    refused = admin.post(f"{API}/processes/{key}/deploy", json={"lock_version": 2})
    problem = assert_problem(refused, 422, key)
    assert errors[0]["message_en"] in problem["detail_en"]
    assert errors[0]["message_zh"] in problem["detail_zh"]
    root = etree.fromstring(xml.encode())
    mine = next(
        n for n in root.iter() if etree.QName(n).localname == "process" and n.get("id") == key
    )
    if mine.get("isExecutable", "true") == "false":
        assert 'isExecutable="true"' in problem["detail_zh"]
        assert 'isExecutable="true"' in problem["detail_en"]
    assert (
        db_session.scalar(
            select(func.count()).select_from(ProcessDefinition).where(ProcessDefinition.key == key)
        )
        == 0
    )


# ---------------------------------------------------------------- DMN try it


@pytest.mark.parametrize(
    ("category", "priority", "region"),
    [
        ("network", "P1", "beijing"),
        ("network", "P2", "shenzhen"),
        ("hardware", "P3", "shanghai"),
        ("facilities", "P4", "beijing"),
    ],
)
def test_try_it_gives_what_the_business_rule_task_gives(
    admin, db_session, category, priority, region
):
    flow = Flow(db_session, "bob", "it_service", title="决策对照")
    triage = {**TRIAGE, "category": category, "priority": priority, "region": region}
    flow.do("task_triage", "desk", resolution="forward", **triage)
    engine_data = flow.data()

    dmn_xml = draft_of(admin)["dmn"]["assignment.dmn"]
    tried = admin.post(
        f"{API}/decisions/try",
        json={
            "dmn_xml": dmn_xml,
            "decision_id": "assignment",
            "inputs": {"category": category, "priority": priority, "region": region},
        },
    )
    assert tried.status_code == 200, tried.json
    result = tried.json["result"]
    assert result and result == {name: engine_data[name] for name in result}
    assert tried.json["outputs"] == [result]
    assert len(tried.json["matched_rules"]) == 1
    assert tried.json["matched_rules"][0].startswith("rule_")


def test_try_it_names_what_is_wrong(admin):
    dmn_xml = draft_of(admin)["dmn"]["assignment.dmn"]
    url = f"{API}/decisions/try"
    assert_problem(
        admin.post(url, json={"dmn_xml": "<definitions>", "decision_id": "x"}),
        422,
        "decision.dmn",
        "1",
    )
    assert_problem(
        admin.post(url, json={"dmn_xml": dmn_xml, "decision_id": "nope"}), 422, "nope", "assignment"
    )
    missing = admin.post(
        url, json={"dmn_xml": dmn_xml, "decision_id": "assignment", "inputs": {"priority": "P1"}}
    )
    assert_problem(missing, 422, "assignment", "category")
    unsafe = dmn_xml.replace("<text>category</text>", "<text>__import__('os')</text>", 1)
    assert_problem(
        admin.post(url, json={"dmn_xml": unsafe, "decision_id": "assignment", "inputs": {}}),
        422,
        "__import__",
    )


# ---------------------------------------------------------------- instance view and pickers


def test_waiting_counts_per_element_link_to_the_work_orders(admin, db_session, pages):
    first = Flow(db_session, "bob", "it_service", title="等待分级一")
    Flow(db_session, "alice", "it_service", title="等待分级二")
    handled = Flow(db_session, "bob", "it_service", title="技术组处理中")
    handled.do("task_triage", "desk", resolution="forward", **TRIAGE)
    done = Flow(db_session, "bob", "it_service", title="已解决")
    done.do("task_triage", "desk", resolution="solved", **TRIAGE)

    answer = admin.get(f"{API}/processes/it_service/versions/1/waiting").json
    # task_handle waits on its task and on its SLA timer (a boundary event of its own)
    assert answer["elements"] == {"task_triage": 2, "task_handle": 1, "timer_it_sla": 1}
    link = answer["links"]["task_triage"]
    page = pages("admin").get(link)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.count("data-instance=") == 2
    assert f"/tickets/{first.ticket.id}" in html
    assert admin.get(f"{API}/processes/it_service/versions/9/waiting").status_code == 404


def test_an_instance_waiting_for_a_message_is_counted_at_its_catch_event(admin, db_session):
    engine.deploy(
        db_session=db_session,
        files=[("wait_for_payment.bpmn", (DATA / "wait_for_payment.bpmn").read_bytes())],
    )
    engine.start(db_session=db_session, process_key="wait_for_payment", business_key="PO-7")
    db_session.commit()
    answer = admin.get(f"{API}/processes/wait_for_payment/versions/1/waiting").json
    assert answer["elements"] == {"catch_payment": 1}


def test_lookups_offer_groups_people_forms_and_decisions(admin):
    answer = admin.get(f"{API}/lookups?key=it_service").json
    assert {"code": "network", "name": "网络组"} in answer["groups"]
    assert {u["username"] for u in answer["users"]} >= {"net1", "desk", "admin"}
    forms = {f["id"]: f["title"] for f in answer["forms"]}
    assert forms["it_triage"] == "问题分级"
    assert answer["decisions"] == [{"id": "assignment", "name": "分配技术组与时限"}]
    assert admin.get(f"{API}/lookups?key=nope").status_code == 404


# ---------------------------------------------------------------- access


def designer_routes(app) -> list[tuple[str, str]]:
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(API) or rule.rule.startswith("/designer"):
            url = (
                rule.rule.replace("<key>", "it_service")
                .replace("<process_key>", "it_service")
                .replace("<int(max=2147483647):version>", "1")
            )
            routes += [(method, url) for method in rule.methods - {"HEAD", "OPTIONS"}]
    return routes


@pytest.mark.parametrize("username", ["desk", "net1", "reviewer", "alice", "fin1"])
def test_every_route_and_page_is_refused_to_non_admins(app, as_user, pages, username):
    api, browser = as_user(username), pages(username)
    for method, url in designer_routes(app):
        if url.startswith("/api"):
            response = api.request(method, url, json={})
        else:
            response = browser.open(url, method, data={"csrf_token": browser.csrf})
        assert response.status_code == 403, (username, method, url, response.status_code)
    start = browser.get("/", follow_redirects=True).get_data(as_text=True)
    assert 'href="/designer"' not in start


def test_anonymous_callers_get_401(app, client):
    for method, url in designer_routes(app):
        if url.startswith("/api"):
            assert client.open(url, method=method).status_code == 401, (method, url)


# ---------------------------------------------------------------- pages


def test_the_pages_host_the_islands_and_list_every_version(pages):
    admin = pages("admin")
    listing = admin.get("/designer").get_data(as_text=True)
    assert 'href="/designer"' in listing  # the nav link
    assert 'href="/designer/it_service"' in listing
    assert 'href="/designer/it_service/versions/1"' in listing
    editor = admin.get("/designer/it_service").get_data(as_text=True)
    assert (
        'id="designer-app" data-key="it_service" data-api="/api/v1/designer" data-lang="zh"'
        in editor
    )
    view = admin.get("/designer/it_service/versions/1").get_data(as_text=True)
    assert 'id="designer-instances"' in view and 'data-version="1"' in view
    assert admin.get("/designer/nope").status_code == 404


def test_creating_a_process_on_the_page_opens_its_editor(pages):
    admin = pages("admin")
    answer = admin.post("/designer", data={"key": "onboarding", "name": "入职"})
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/designer/onboarding")
    again = admin.post("/designer", data={"key": "onboarding", "name": "入职"})
    assert again.status_code == 409 and "onboarding" in again.get_data(as_text=True)
