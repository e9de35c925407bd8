"""The visual designer in Chromium: drawing, linting, saving, validating and deploying a process,
the MIWG reference models, the DMN "try it" panel and who may open the designer.

An admin adds a user task to it_service through the modeler, picks its candidate group and form
in the properties panel, sees the lint error of the unconnected task go once it is connected,
saves, validates, reads the diff and deploys version 2: a work order started before the deploy
finishes on version 1, a new one runs through the added task on version 2. Screenshots go to
test-artifacts/<backend>/test_designer/<test>/.
"""

from __future__ import annotations

import json
import re

import pytest
from lxml import etree
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.engine.models import ProcessDefinition
from app.extensions import db
from app.tickets.models import Ticket
from tests.browser import ARTIFACTS, Screens, open_as
from tests.flows import Flow
from tests.miwg import MIWG

MODEL = "http://www.omg.org/spec/BPMN/20100524/MODEL"
DI = "http://www.omg.org/spec/BPMN/20100524/DI"
CAMUNDA = "http://camunda.org/schema/1.0/bpmn"
# Elements whose children are flow elements (tasks, events, gateways, flows, data objects).
FLOW_CONTAINERS = {"process", "subProcess", "transaction", "adHocSubProcess"}
SOLVED = {"region": "beijing", "resolution": "solved", "triage_note": "已在服务台解决"}

ADD_TASK = """({ id, name }) => {
  const modeler = window.paidanDesigner.modeler;
  const registry = modeler.get('elementRegistry');
  const assign = registry.get('task_assign');
  const businessObject = modeler.get('bpmnFactory').create('bpmn:UserTask', { id, name });
  const shape = modeler.get('elementFactory').createShape({ type: 'bpmn:UserTask', businessObject });
  modeler.get('modeling').createShape(
    shape, { x: assign.x + assign.width / 2, y: assign.y + 260 }, assign.parent);
  modeler.get('selection').select(registry.get(id));
}"""

# task_triage → task_extra → gw_triage: the flow into the gateway now ends at the new task.
CONNECT_TASK = """(id) => {
  const modeler = window.paidanDesigner.modeler;
  const registry = modeler.get('elementRegistry');
  const modeling = modeler.get('modeling');
  const task = registry.get(id);
  modeling.reconnectEnd(registry.get('flow_triage_gw'), task, { x: task.x + task.width / 2, y: task.y });
  modeling.connect(task, registry.get('gw_triage'));
}"""


@pytest.fixture
def shots(request) -> Screens:
    folder = ARTIFACTS / "test_designer" / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    return Screens(folder)


def wait_ready(page: Page, selector: str) -> None:
    """Wait for an island to say it is drawn; one that failed shows why in the assertion."""
    page.wait_for_selector(f"{selector}[data-ready]", timeout=30_000)
    island = page.locator(selector)
    assert island.get_attribute("data-ready") == "true", island.inner_text()
    assert page.js_errors == [], page.js_errors


def open_designer(page: Page, key: str) -> None:
    page.goto(f"/designer/{key}")
    wait_ready(page, "#designer-app")


def api_get(app, path: str) -> dict:
    token = app.extensions["test_tokens"]["admin"]
    answer = app.test_client().get(path, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_json()


def flow_of(ticket_id: int) -> Flow:
    """The Flow helper for a work order made in an earlier app context."""
    flow = Flow.__new__(Flow)
    flow.db, flow.max_state = db.session, 0
    flow.ticket = db.session.get(Ticket, ticket_id)
    return flow


# ---------------------------------------------------------------- draw, lint, deploy


def test_an_admin_adds_a_task_and_deploys_version_2_while_running_work_stays_on_1(
    live_server, browser, shots
):
    app = live_server
    with app.app_context():
        earlier = Flow(db.session, "alice", "it_service", title="部署前的工单", region="beijing")
        earlier_id = earlier.ticket.id
        assert earlier.instance.definition.version == 1
        db.session.commit()

    page = open_as(browser, app.config["SERVER_URL"], "admin")
    expect(page.locator("[data-nav=designer]")).to_be_visible()
    open_designer(page, "it_service")
    shots.shot(page, "it-service-opened")

    # A new user task, not connected and naming nobody: two lint errors on it.
    page.evaluate(ADD_TASK, {"id": "task_extra", "name": "补充审批"})
    on_task = page.locator("#designer-problems li[data-source=lint][data-element-id=task_extra]")
    expect(on_task.filter(has_text="没有连接任何顺序流")).to_have_attribute(
        "data-severity", "error"
    )
    expect(on_task.filter(has_text="候选组")).to_have_attribute("data-severity", "error")
    expect(
        page.locator('.djs-overlays[data-container-id="task_extra"] .bjsl-overlay')
    ).to_be_visible()
    shots.shot(page, "unconnected-task-has-lint-errors")

    # The properties panel's pickers, as an admin uses them.
    page.locator("#bio-properties-panel-paidan-candidateGroups").select_option("network")
    page.locator("#bio-properties-panel-paidan-formKey").select_option("it_review")
    expect(on_task.filter(has_text="候选组")).to_have_count(0)
    expect(on_task.filter(has_text="没有连接任何顺序流")).to_have_count(1)
    shots.shot(page, "candidate-group-and-form-picked")

    page.evaluate(CONNECT_TASK, "task_extra")
    expect(on_task).to_have_count(0)
    expect(
        page.locator('.djs-overlays[data-container-id="task_extra"] .bjsl-overlay')
    ).to_have_count(0)
    shots.shot(page, "task-connected-no-lint-error")

    # Undo and redo the last connection: with the buttons, then with the keyboard.
    no_way_out = on_task.filter(has_text="没有连出的顺序流")
    page.locator("#designer-undo").click()
    expect(no_way_out).to_have_count(1)
    page.locator("#designer-redo").click()
    expect(on_task).to_have_count(0)
    canvas = page.locator("#designer-canvas .djs-container > svg")
    box = canvas.bounding_box()
    canvas.click(position={"x": box["width"] * 0.6, "y": box["height"] - 40})
    page.keyboard.press("Control+z")
    expect(no_way_out).to_have_count(1)
    page.keyboard.press("Control+y")
    expect(on_task).to_have_count(0)

    page.locator("#designer-save").click()
    expect(page.locator("#designer-status")).to_contain_text("草稿已保存")
    with app.app_context():
        draft = api_get(app, "/api/v1/designer/processes/it_service/draft")
    task = etree.fromstring(draft["bpmn_xml"].encode()).find(
        f".//{{{MODEL}}}userTask[@id='task_extra']"
    )
    assert task is not None and task.get("name") == "补充审批"
    assert task.get(f"{{{CAMUNDA}}}candidateGroups") == "network"
    assert task.get(f"{{{CAMUNDA}}}formKey") == "it_review"

    page.locator("#designer-validate").click()
    expect(page.locator("#designer-status")).to_contain_text("校验通过")
    expect(
        page.locator("#designer-problems li[data-source=server][data-severity=error]")
    ).to_have_count(0)

    page.locator("#designer-deploy").click()
    added = page.locator("#designer-diff li[data-change=added][data-element-id=task_extra]")
    expect(added).to_be_visible()
    expect(
        page.locator("#designer-diff li[data-change=removed][data-element-id=task_triage]")
    ).to_have_count(0)
    shots.shot(page, "diff-before-deploy", at=page.locator("#designer-diff"))
    page.locator("#designer-deploy-confirm").click()
    expect(page.locator("#designer-status")).to_contain_text("第 2 版")
    expect(page.locator("#designer-app")).to_have_attribute("data-deployed-version", "2")
    shots.shot(page, "deployed-version-2")

    # The instance view of version 1: the earlier work order waits at triage.
    page.goto("/designer/it_service/versions/1")
    wait_ready(page, "#designer-instances")
    badge = page.locator("a.designer-waiting[data-element-id=task_triage]")
    expect(badge).to_have_text("1")
    assert "task_triage" in badge.get_attribute("href")
    shots.shot(page, "instances-of-version-1")

    with app.app_context():
        versions = db.session.scalars(
            select(ProcessDefinition.version).where(ProcessDefinition.key == "it_service")
        ).all()
        assert sorted(versions) == [1, 2]

        later = Flow(db.session, "bob", "it_service", title="部署后的工单", region="beijing")
        assert later.instance.definition.version == 2
        earlier = flow_of(earlier_id)
        assert earlier.instance.definition.version == 1

        # The earlier one goes on without the new task and finishes on version 1.
        earlier.do("task_triage", "desk", category="account", priority="P4", **SOLVED)
        assert earlier.instance.status == "completed"
        assert earlier.instance.definition.version == 1
        assert "task_extra" not in earlier.completed_elements()

        # The later one passes the added task, offered to the picked group with the picked form.
        later.do("task_triage", "desk", category="account", priority="P4", **SOLVED)
        extra = later.task("task_extra")
        assert extra.candidate_groups == ["network"] and extra.form_key == "it_review"
        later.do("task_extra", "net1", review_result="approve", review_comment="同意")
        assert later.instance.status == "completed"
        assert later.instance.definition.version == 2
        completed = later.completed_elements()
        assert completed.index("task_triage") < completed.index("task_extra")
        assert completed[-1] == "end_archived"
        db.session.commit()


# ---------------------------------------------------------------- the MIWG reference models


def model_sets(xml: bytes) -> dict[str, set]:
    root = etree.fromstring(xml)
    flow = {
        (node.get("id"), etree.QName(node).localname)
        for node in root.iter(f"{{{MODEL}}}*")
        if node.get("id")
        and node.getparent() is not None
        and etree.QName(node.getparent()).localname in FLOW_CONTAINERS
    }
    return {
        "flow elements": flow,
        "model elements": {
            (node.get("id"), etree.QName(node).localname)
            for node in root.iter(f"{{{MODEL}}}*")
            if node.get("id")
        },
        "diagram shapes": {
            (etree.QName(node).localname, node.get("id"), node.get("bpmnElement"))
            for node in root.iter(f"{{{DI}}}BPMNShape", f"{{{DI}}}BPMNEdge")
        },
    }


def test_every_miwg_reference_model_imports_and_saves_back_whole(live_server, browser, shots):
    models = sorted(MIWG.glob("*.bpmn"))
    assert len(models) >= 20, f"the MIWG reference models are missing from {MIWG}"
    page = open_as(browser, live_server.config["SERVER_URL"], "admin")
    open_designer(page, "it_service")

    failures = []
    for count, path in enumerate(models, start=1):
        # The editor's own "import a file" input, as an admin brings a file in.
        page.locator("#designer-import").set_input_files(str(path))
        page.wait_for_selector(f"#designer-app[data-imports='{count}']")
        result = page.evaluate(
            """async () => {
              const { xml } = await window.paidanDesigner.modeler.saveXML({ format: true });
              return { imported: window.paidanDesigner.app.lastImport, xml };
            }"""
        )
        if "error" in result["imported"]:
            failures.append(f"{path.name}: import error {result['imported']['error']}")
            continue
        before, after = model_sets(path.read_bytes()), model_sets(result["xml"].encode())
        assert before["flow elements"], f"{path.name}: no flow elements found"
        for what, kept in before.items():
            lost = kept - after[what]
            if lost:
                failures.append(f"{path.name}: {what} lost on save: {sorted(lost, key=str)}")
        if count in (1, len(models)) or path.name.startswith("C.1"):
            shots.shot(page, f"miwg-{path.stem}")
    assert failures == [], "\n".join(failures)
    assert page.js_errors == [], page.js_errors

    # A reference model is not executable: a process made for it (key = its process id) is
    # refused at deploy with the missing isExecutable named on the page, and nothing deployed.
    page.goto("/designer")
    new = page.locator("form[data-new-process]")
    new.locator("input[name=key]").fill("WFP-6-")
    new.locator("input[name=name]").fill("MIWG A.1.0")
    new.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"/designer/WFP-6-(#.*)?$"))
    wait_ready(page, "#designer-app")
    page.locator("#designer-import").set_input_files(str(MIWG / "A.1.0.bpmn"))
    page.wait_for_selector("#designer-app[data-imports='1']")
    page.locator("#designer-deploy").click()
    page.locator("#designer-deploy-confirm").click()
    expect(page.locator("#designer-status")).to_have_attribute("data-kind", "error")
    refused = page.locator("#designer-problems li[data-source=server][data-severity=error]")
    expect(refused.filter(has_text="isExecutable")).to_have_count(1)
    shots.shot(page, "not-executable-refused")
    with live_server.app_context():
        deployed = db.session.scalars(
            select(ProcessDefinition.version).where(ProcessDefinition.key == "WFP-6-")
        ).all()
        assert deployed == []


# ---------------------------------------------------------------- DMN "try it"

CASES = [
    {"category": "network", "priority": "P1", "region": "shanghai"},
    {"category": "network", "priority": "P2", "region": "shenzhen"},
    {"category": "hardware", "priority": "P3", "region": "beijing"},
    {"category": "software", "priority": "P4", "region": "shenzhen"},
]


def panel_outputs(page: Page) -> list[dict]:
    rows = page.locator("#designer-try-result tr[data-output-row]")
    found = []
    for index in range(rows.count()):
        cells = rows.nth(index).locator("td[data-output]")
        found.append(
            {
                cells.nth(i).get_attribute("data-output"): json.loads(cells.nth(i).inner_text())
                for i in range(cells.count())
            }
        )
    return found


def test_the_dmn_try_it_panel_gives_what_the_engine_gives(live_server, browser, shots):
    app = live_server
    page = open_as(browser, app.config["SERVER_URL"], "admin")
    open_designer(page, "it_service")
    page.locator("#designer-tab-dmn").click()
    expect(page.locator("#designer-try-decision")).to_have_value("assignment")

    for number, case in enumerate(CASES, start=1):
        for name, value in case.items():
            page.locator(f"#designer-try-input-{name}").fill(value)
        page.locator("#designer-try-run").click()
        expect(page.locator("#designer-try-result tr[data-output-row]")).to_have_count(1)
        expect(page.locator(".designer-matched").first).to_be_visible()
        shown = panel_outputs(page)
        if number == 1:
            shots.shot(page, "try-it-network-p1")

        # The engine: a work order forwarded by triage with the same values runs the table.
        with app.app_context():
            flow = Flow(
                db.session, "alice", "it_service", title=f"试算对照 {number}", region=case["region"]
            )
            flow.do(
                "task_triage",
                "desk",
                category=case["category"],
                priority=case["priority"],
                region=case["region"],
                resolution="forward",
                triage_note="转技术组",
            )
            assign = next(e for e in flow.events() if e.element_id == "task_assign")
            engine_result = dict(assign.data)
            db.session.commit()
        assert shown == [engine_result], f"{case}: panel {shown}, engine {engine_result}"


def test_leaving_with_unsaved_changes_asks_first_and_after_saving_does_not(
    live_server, browser, shots
):
    app = live_server
    page = open_as(browser, app.config["SERVER_URL"], "admin")
    open_designer(page, "it_service")
    asked = []

    def stay(dialog):
        asked.append(dialog.type)
        dialog.dismiss()

    page.on("dialog", stay)
    page.evaluate(ADD_TASK, {"id": "task_unsaved", "name": "未保存的任务"})
    page.locator("[data-nav=designer]").click()
    expect(page.locator("#designer-app")).to_be_visible()
    page.wait_for_timeout(300)  # a navigation that was not stopped would have left by now
    assert asked == ["beforeunload"]
    assert page.url.endswith("/designer/it_service")
    shots.shot(page, "stayed-with-unsaved-changes")

    page.locator("#designer-save").click()
    expect(page.locator("#designer-status")).to_contain_text("草稿已保存")
    page.locator("[data-nav=designer]").click()
    page.wait_for_url(re.compile(r"/designer$"))
    assert asked == ["beforeunload"], "saved: nothing to ask"


# ---------------------------------------------------------------- forms


def test_forms_are_added_renamed_with_their_form_keys_and_previewed(live_server, browser, shots):
    app = live_server
    page = open_as(browser, app.config["SERVER_URL"], "admin")
    open_designer(page, "it_service")
    page.locator("#designer-tab-forms").click()
    page.locator("#designer-form-picker").select_option("it_review")
    preview = page.locator("#designer-form-preview")
    expect(preview.get_by_text("复核意见 / Review comment")).to_be_visible()

    # Sample data shows in the preview.
    page.locator("#designer-form-sample").fill('{"review_comment": "样例意见"}')
    expect(preview.locator("textarea")).to_have_value("样例意见")
    shots.shot(page, "form-editor-with-preview")

    # Renaming a form's id moves the form keys that named it.
    page.locator("#designer-form-rename-id").fill("it_review_v2")
    page.locator("#designer-form-rename").click()
    expect(page.locator(".designer-form-message")).to_contain_text("1")
    page.locator("#designer-form-new-id").fill("it_extra")
    page.locator("#designer-form-add").click()
    expect(page.locator("#designer-form-picker")).to_have_value("it_extra")
    # A bad id is refused in the page's language, naming the rule.
    page.locator("#designer-form-new-id").fill("1bad id")
    page.locator("#designer-form-add").click()
    expect(page.locator(".designer-form-message.designer-error")).to_contain_text("表单 id")

    page.locator("#designer-save").click()
    expect(page.locator("#designer-status")).to_contain_text("草稿已保存")
    with app.app_context():
        draft = api_get(app, "/api/v1/designer/processes/it_service/draft")
    assert "it_review" not in draft["forms"]
    assert draft["forms"]["it_review_v2"]["id"] == "it_review_v2"
    assert draft["forms"]["it_extra"]["components"] == []
    review = etree.fromstring(draft["bpmn_xml"].encode()).find(
        f".//{{{MODEL}}}userTask[@id='task_review']"
    )
    assert review.get(f"{{{CAMUNDA}}}formKey") == "it_review_v2"


# ---------------------------------------------------------------- who may open it


@pytest.mark.parametrize("username", ["desk", "net1"])
def test_a_non_admin_gets_the_403_page_and_no_designer_link(live_server, browser, shots, username):
    page = open_as(browser, live_server.config["SERVER_URL"], username)
    page.goto("/")
    expect(page.locator("[data-nav=designer]")).to_have_count(0)
    assert page.locator("a[href^='/designer']").count() == 0
    for url in ("/designer", "/designer/it_service", "/designer/it_service/versions/1"):
        answer = page.goto(url)
        assert answer.status == 403, f"{username} {url}: {answer.status}"
        expect(page.locator("#designer-app, #designer-instances")).to_have_count(0)
    shots.shot(page, f"{username}-refused")
