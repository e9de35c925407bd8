"""The shipped diagrams open cleanly in the real bpmn-js and dmn-js viewers, in Chromium.

bpmn-moddle (tests/test_process_files.py) checks the XML; this checks what an admin sees:
every element imported and drawn, no import warnings.
"""

from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
DIST = ROOT / "designer" / "node_modules"
PROCESSES = ROOT / "processes"


@pytest.fixture(scope="module")
def page():
    for bundle in (
        "bpmn-js/dist/bpmn-viewer.production.min.js",
        "dmn-js/dist/dmn-viewer.production.min.js",
    ):
        assert (DIST / bundle).exists(), f"{bundle} is missing: run `npm ci --prefix designer`"
    assert Path(CHROMIUM).exists(), "Chromium is missing: apt-get install -y chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1600, "height": 900})
        page.set_content('<div id="canvas" style="width:1600px;height:900px"></div>')
        page.add_script_tag(path=str(DIST / "bpmn-js/dist/bpmn-viewer.production.min.js"))
        page.add_script_tag(path=str(DIST / "dmn-js/dist/dmn-viewer.production.min.js"))
        yield page
        browser.close()


IMPORT_BPMN = """async (xml) => {
  const viewer = new BpmnJS({ container: '#canvas' });
  const { warnings } = await viewer.importXML(xml);
  const registry = viewer.get('elementRegistry');
  const drawn = registry.getAll()
    .filter((e) => e.businessObject && e.businessObject.id && e.type !== 'bpmn:Process'
                   && !e.type.endsWith('label'))
    .map((e) => e.businessObject.id);
  const gfx = registry.getAll().filter((e) => registry.getGraphics(e)).length;
  viewer.destroy();
  return { warnings: warnings.map((w) => w.message), drawn, gfx };
}"""

IMPORT_DMN = """async (xml) => {
  const viewer = new DmnJS({ container: '#canvas' });
  const { warnings } = await viewer.importXML(xml);
  const views = viewer.getViews().map((v) => [v.type, v.element.id]);
  let rows = 0;
  for (const view of viewer.getViews()) {
    if (view.type === 'decisionTable') {
      await viewer.open(view);
      rows = document.querySelectorAll('#canvas tbody tr').length;
    }
  }
  viewer.destroy();
  return { warnings: warnings.map((w) => w.message), views, rows };
}"""


def flow_element_ids(xml: str) -> set[str]:
    from lxml import etree

    ns = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL"}
    root = etree.fromstring(xml.encode())
    return {
        node.get("id")
        for node in root.iterfind("bpmn:process/*[@id]", ns)
        if etree.QName(node).localname not in {"laneSet", "documentation"}
    }


@pytest.mark.parametrize("name", ["it_service.bpmn", "equipment_repair.bpmn"])
def test_each_process_opens_in_bpmn_js_without_warnings(page, name):
    xml = (PROCESSES / name).read_text(encoding="utf-8")
    result = page.evaluate(IMPORT_BPMN, xml)
    assert result["warnings"] == []
    missing = flow_element_ids(xml) - set(result["drawn"])
    assert not missing, f"{name}: not drawn by bpmn-js: {sorted(missing)}"
    assert result["gfx"] >= len(flow_element_ids(xml))


def test_the_decision_table_opens_in_dmn_js_with_all_its_rules(page):
    xml = (PROCESSES / "assignment.dmn").read_text(encoding="utf-8")
    result = page.evaluate(IMPORT_DMN, xml)
    assert result["warnings"] == []
    assert ["decisionTable", "assignment"] in result["views"]
    assert result["rows"] == xml.count("<rule ")
