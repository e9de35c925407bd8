"""Static checks of the shipped process files: BPMN, the assignment DMN and the form-js forms."""

import ast
import itertools
import json
import operator
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from lxml import etree

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = ROOT / "processes"
FORMS = PROCESSES / "forms"
DESIGNER = ROOT / "designer"

NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "dc": "http://www.omg.org/spec/DD/20100524/DC",
    "di": "http://www.omg.org/spec/DD/20100524/DI",
    "camunda": "http://camunda.org/schema/1.0/bpmn",
    "dmn": "https://www.omg.org/spec/DMN/20191111/MODEL/",
    "dmndi": "https://www.omg.org/spec/DMN/20191111/DMNDI/",
}
CAMUNDA = f"{{{NS['camunda']}}}"
CHINESE = re.compile(r"[\u4e00-\u9fff]")
# The skill codes of the demo company (app/demo.py SKILLS) that the DMN may require.
SKILL_CODES = {"network", "printer", "pc", "server", "air_conditioning", "ups", "access_control"}
EXPRESSION = re.compile(r"^\$\{(.+)\}$")

BPMN_FILES = {
    "it_service": PROCESSES / "it_service.bpmn",
    "equipment_repair": PROCESSES / "equipment_repair.bpmn",
}
FLOW_NODES = (
    "startEvent",
    "endEvent",
    "intermediateCatchEvent",
    "intermediateThrowEvent",
    "boundaryEvent",
    "task",
    "userTask",
    "serviceTask",
    "scriptTask",
    "businessRuleTask",
    "manualTask",
    "sendTask",
    "receiveTask",
    "callActivity",
    "subProcess",
    "exclusiveGateway",
    "parallelGateway",
    "inclusiveGateway",
    "eventBasedGateway",
)
# Variables each form must set: the gateways, the DMN and the assignments read them.
FORM_FIELDS = {
    "it_submit": {"title", "description", "priority", "region", "device_no"},
    "it_triage": {"category", "priority", "region", "resolution", "triage_note"},
    "it_handle": {"solution", "time_spent_minutes"},
    "it_escalate": {"solution", "escalation_note"},
    "it_review": {"review_result", "review_comment"},
    "repair_submit": {"title", "description", "category", "priority", "region", "device_no"},
    "repair_dispatch": {"engineer", "parts_needed", "parts_list", "dispatch_reason"},
    "repair_onsite": {"fault_cause", "work_done"},
    "repair_escalate": {"work_done", "escalation_note"},
    "repair_parts": {"parts_issued", "parts_note"},
    "repair_acceptance": {"acceptance_result", "acceptance_comment", "csat"},
}
# Select values that the gateway conditions and the DMN compare against.
SELECT_VALUES = {
    ("it_triage", "resolution"): {"forward", "solved"},
    ("it_triage", "category"): {"network", "hardware", "software", "account", "facilities"},
    ("it_review", "review_result"): {"approve", "reject"},
    ("repair_acceptance", "acceptance_result"): {"accept", "reject"},
    ("repair_submit", "category"): {"hardware", "facilities"},
}
REQUIRED = {
    "it_triage": {"category", "priority", "region", "resolution"},
    "it_handle": {"solution"},
    "it_escalate": {"solution"},
    "it_review": {"review_result"},
    "repair_dispatch": {"engineer"},
    "repair_onsite": {"fault_cause", "work_done"},
    "repair_escalate": {"work_done"},
    "repair_acceptance": {"acceptance_result"},
}
COMPARISONS = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.In: lambda value, options: value in options,
    ast.NotIn: lambda value, options: value not in options,
}
SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True)


def parse(path: Path) -> etree._ElementTree:
    return etree.parse(str(path), SAFE_PARSER)


def local(element: etree._Element) -> str:
    return etree.QName(element).localname


def flow_nodes(tree):
    return [e for e in tree.iterfind(".//bpmn:process//*", NS) if local(e) in FLOW_NODES]


def bounds(shape):
    b = shape.find("dc:Bounds", NS)
    return tuple(float(b.get(k)) for k in ("x", "y", "width", "height"))


def shapes_by_element(tree):
    return {s.get("bpmnElement"): s for s in tree.iterfind(".//bpmndi:BPMNShape", NS)}


def edges_by_element(tree):
    return {e.get("bpmnElement"): e for e in tree.iterfind(".//bpmndi:BPMNEdge", NS)}


def waypoints(edge):
    return [(float(w.get("x")), float(w.get("y"))) for w in edge.iterfind("di:waypoint", NS)]


def load_form(form_id: str) -> dict:
    return json.loads((FORMS / f"{form_id}.form").read_text(encoding="utf-8"))


def all_components(components):
    for component in components:
        yield component
        yield from all_components(component.get("components", []))


def form_keys_in_bpmn():
    keys = {}
    for process_id, path in BPMN_FILES.items():
        for element in parse(path).iter():
            key = element.get(CAMUNDA + "formKey")
            if key is not None:
                keys[key] = f"{process_id}/{element.get('id')}"
    return keys


@pytest.fixture(params=sorted(BPMN_FILES), ids=sorted(BPMN_FILES))
def bpmn(request):
    return request.param, parse(BPMN_FILES[request.param])


# --- BPMN ---------------------------------------------------------------------------------


def test_process_id_and_executable(bpmn):
    process_id, tree = bpmn
    processes = tree.findall("bpmn:process", NS)
    assert [p.get("id") for p in processes] == [process_id]
    assert processes[0].get("isExecutable") == "true"


def test_every_flow_node_has_a_shape(bpmn):
    process_id, tree = bpmn
    shapes = shapes_by_element(tree)
    missing = [e.get("id") for e in flow_nodes(tree) if e.get("id") not in shapes]
    assert not missing, f"{process_id}: flow nodes without BPMNShape: {missing}"


def test_every_sequence_flow_has_an_edge(bpmn):
    process_id, tree = bpmn
    edges = edges_by_element(tree)
    for flow in tree.iterfind(".//bpmn:sequenceFlow", NS):
        edge = edges.get(flow.get("id"))
        assert edge is not None, f"{process_id}: sequence flow {flow.get('id')} has no BPMNEdge"
        assert len(waypoints(edge)) >= 2, f"{process_id}: {flow.get('id')} has < 2 waypoints"


def test_shapes_do_not_overlap(bpmn):
    process_id, tree = bpmn
    shapes = shapes_by_element(tree)
    hosts = {
        e.get("id"): e.get("attachedToRef") for e in tree.iterfind(".//bpmn:boundaryEvent", NS)
    }
    items = sorted(shapes.items())
    for i, (a, shape_a) in enumerate(items):
        ax, ay, aw, ah = bounds(shape_a)
        for b, shape_b in items[i + 1 :]:
            if hosts.get(a) == b or hosts.get(b) == a:
                continue
            bx, by, bw, bh = bounds(shape_b)
            overlap = ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah
            assert not overlap, f"{process_id}: shapes {a} and {b} overlap"


def test_edges_connect_their_shapes_and_avoid_others(bpmn):
    process_id, tree = bpmn
    shapes = shapes_by_element(tree)
    edges = edges_by_element(tree)
    hosts = {
        e.get("id"): e.get("attachedToRef") for e in tree.iterfind(".//bpmn:boundaryEvent", NS)
    }

    def inside(point, box, margin):
        x, y, w, h = box
        return x - margin <= point[0] <= x + w + margin and y - margin <= point[1] <= y + h + margin

    for flow in tree.iterfind(".//bpmn:sequenceFlow", NS):
        fid, src, tgt = flow.get("id"), flow.get("sourceRef"), flow.get("targetRef")
        points = waypoints(edges[fid])
        assert inside(points[0], bounds(shapes[src]), 2), (
            f"{process_id}: {fid} does not start at {src}"
        )
        assert inside(points[-1], bounds(shapes[tgt]), 2), (
            f"{process_id}: {fid} does not end at {tgt}"
        )
        for (x1, y1), (x2, y2) in itertools.pairwise(points):
            assert x1 == x2 or y1 == y2, f"{process_id}: {fid} has a diagonal segment"
            for other, shape in shapes.items():
                if other in (src, tgt, hosts.get(src), hosts.get(tgt)):
                    continue
                x, y, w, h = bounds(shape)
                crosses = (
                    min(x1, x2) < x + w
                    and max(x1, x2) > x
                    and min(y1, y2) < y + h
                    and max(y1, y2) > y
                )
                assert not crosses, f"{process_id}: {fid} crosses {other}"


def label_bounds(di_element):
    b = di_element.find("bpmndi:BPMNLabel/dc:Bounds", NS)
    return None if b is None else tuple(float(b.get(k)) for k in ("x", "y", "width", "height"))


def boxes_overlap(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


def test_edges_dock_on_the_outline_of_their_shapes(bpmn):
    # As bpmn-js draws them: first and last waypoint on the border of the shape's box (the tips
    # of a gateway's diamond, the sides of an event's circle), never inside the shape.
    process_id, tree = bpmn
    shapes = shapes_by_element(tree)
    edges = edges_by_element(tree)

    def on_border(point, box):
        x, y, w, h = box
        px, py = point
        on_vertical = px in (x, x + w) and y <= py <= y + h
        on_horizontal = py in (y, y + h) and x <= px <= x + w
        return on_vertical or on_horizontal

    for flow in tree.iterfind(".//bpmn:sequenceFlow", NS):
        fid = flow.get("id")
        points = waypoints(edges[fid])
        for point, ref in ((points[0], flow.get("sourceRef")), (points[-1], flow.get("targetRef"))):
            assert on_border(point, bounds(shapes[ref])), (
                f"{process_id}: {fid} waypoint {point} is not on the outline of {ref}"
            )


def test_edges_do_not_run_along_each_other(bpmn):
    process_id, tree = bpmn
    segments = [
        (fid, a, b)
        for fid, edge in sorted(edges_by_element(tree).items())
        for a, b in itertools.pairwise(waypoints(edge))
    ]
    for i, (fid_a, (ax1, ay1), (ax2, ay2)) in enumerate(segments):
        for fid_b, (bx1, by1), (bx2, by2) in segments[i + 1 :]:
            if fid_a == fid_b:
                continue
            if ay1 == ay2 == by1 == by2:  # both horizontal on the same line
                shared = min(max(ax1, ax2), max(bx1, bx2)) - max(min(ax1, ax2), min(bx1, bx2))
            elif ax1 == ax2 == bx1 == bx2:  # both vertical on the same line
                shared = min(max(ay1, ay2), max(by1, by2)) - max(min(ay1, ay2), min(by1, by2))
            else:
                continue
            assert shared <= 0, f"{process_id}: {fid_a} and {fid_b} are drawn on top of each other"


def test_labels_do_not_cover_shapes(bpmn):
    process_id, tree = bpmn
    shapes = shapes_by_element(tree)
    labelled = [*shapes.items(), *edges_by_element(tree).items()]
    for owner, di_element in labelled:
        label = label_bounds(di_element)
        if label is None:
            continue
        for other, shape in shapes.items():
            if other != owner:
                assert not boxes_overlap(label, bounds(shape)), (
                    f"{process_id}: the label of {owner} covers {other}"
                )


def test_names_are_chinese_and_tasks_are_documented(bpmn):
    process_id, tree = bpmn
    for element in flow_nodes(tree) + tree.findall(".//bpmn:sequenceFlow", NS):
        name = element.get("name")
        if name:
            assert CHINESE.search(name) and " / " not in name, f"{element.get('id')}: name {name!r}"
        if "Task" in local(element) or "Gateway" in local(element):
            doc = element.findtext("bpmn:documentation", namespaces=NS)
            assert doc and not CHINESE.search(doc), f"{element.get('id')}: English documentation"
        if local(element) in ("userTask", "scriptTask", "businessRuleTask") or "Event" in local(
            element
        ):
            assert name and CHINESE.search(name), f"{process_id}: {element.get('id')} has no name"


def test_exclusive_gateways_have_conditions_on_every_outgoing_flow(bpmn):
    process_id, tree = bpmn
    flows = {f.get("id"): f for f in tree.iterfind(".//bpmn:sequenceFlow", NS)}
    for gateway in tree.iterfind(".//bpmn:exclusiveGateway", NS):
        outgoing = [o.text for o in gateway.iterfind("bpmn:outgoing", NS)]
        if len(outgoing) < 2:
            continue
        for fid in outgoing:
            if fid == gateway.get("default"):
                continue
            condition = flows[fid].findtext("bpmn:conditionExpression", namespaces=NS)
            assert condition, f"{process_id}: {gateway.get('id')} -> {fid} has no condition"


def test_expressions_are_python(bpmn):
    process_id, tree = bpmn
    expressions = []
    for e in tree.iterfind(".//bpmn:conditionExpression", NS):
        expressions.append((f"condition of {e.getparent().get('id')}", e.text))
    for e in tree.iterfind(".//bpmn:timeDuration", NS):
        expressions.append((f"timer of {e.getparent().getparent().get('id')}", e.text))
    for element in flow_nodes(tree):
        for attr in ("candidateGroups", "candidateUsers", "assignee", "dueDate"):
            value = element.get(CAMUNDA + attr)
            match = EXPRESSION.match(value or "")
            if match:
                expressions.append((f"{element.get('id')}@{attr}", match.group(1)))
    for where, text in expressions:
        try:
            ast.parse(text.strip(), mode="eval")
        except SyntaxError as error:
            pytest.fail(f"{process_id}: {where} `{text}` is not a Python expression: {error}")
    for script in tree.iterfind(".//bpmn:scriptTask", NS):
        assert script.get("scriptFormat") == "python"
        module = ast.parse(script.findtext("bpmn:script", namespaces=NS))
        assert all(isinstance(s, ast.Assign) for s in module.body), script.get("id")


def test_user_tasks_have_forms_and_rules_reference_the_dmn(bpmn):
    process_id, tree = bpmn
    for task in tree.iterfind(".//bpmn:userTask", NS):
        assert task.get(CAMUNDA + "formKey"), f"{process_id}: {task.get('id')} has no formKey"
        assert task.get(CAMUNDA + "candidateGroups") or task.get(CAMUNDA + "assignee")
    decisions = {
        d.get("id") for d in parse(PROCESSES / "assignment.dmn").iterfind(".//dmn:decision", NS)
    }
    for task in tree.iterfind(".//bpmn:businessRuleTask", NS):
        assert task.get(CAMUNDA + "decisionRef") in decisions


def test_incoming_and_outgoing_match_the_sequence_flows(bpmn):
    process_id, tree = bpmn
    flows = list(tree.iterfind(".//bpmn:sequenceFlow", NS))
    for node in flow_nodes(tree):
        nid = node.get("id")
        incoming = sorted(i.text for i in node.iterfind("bpmn:incoming", NS))
        outgoing = sorted(o.text for o in node.iterfind("bpmn:outgoing", NS))
        assert incoming == sorted(f.get("id") for f in flows if f.get("targetRef") == nid), (
            f"{process_id}: bpmn:incoming of {nid}"
        )
        assert outgoing == sorted(f.get("id") for f in flows if f.get("sourceRef") == nid), (
            f"{process_id}: bpmn:outgoing of {nid}"
        )


def test_no_loop_passes_a_parallel_gateway(bpmn):
    # Stock SpiffWorkflow 3.2 counts the join token cancelled in an earlier pass as arrived: a
    # loop back through a parallel join would reopen the task after it too early. Loops (such as
    # rework after a rejected acceptance) must therefore close after the join.
    process_id, tree = bpmn
    successors = {}
    for flow in tree.iterfind(".//bpmn:sequenceFlow", NS):
        successors.setdefault(flow.get("sourceRef"), set()).add(flow.get("targetRef"))
    for event in tree.iterfind(".//bpmn:boundaryEvent", NS):
        successors.setdefault(event.get("attachedToRef"), set()).add(event.get("id"))

    def reachable(start):
        seen, todo = set(), [start]
        while todo:
            for nxt in successors.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    for gateway in tree.iterfind(".//bpmn:parallelGateway", NS):
        gid = gateway.get("id")
        assert gid not in reachable(gid), f"{process_id}: a loop passes the parallel gateway {gid}"


# --- equipment_repair ---------------------------------------------------------------------

REPAIR_NODES = {
    "start_reported": "startEvent",
    "task_assign": "businessRuleTask",
    "task_dispatch": "userTask",
    "gw_split": "parallelGateway",
    "task_onsite": "userTask",
    "timer_repair_remind": "boundaryEvent",
    "task_remind": "scriptTask",
    "end_reminded": "endEvent",
    "timer_repair_sla": "boundaryEvent",
    "task_escalate": "userTask",
    "gw_onsite_merge": "exclusiveGateway",
    "gw_parts": "exclusiveGateway",
    "task_parts": "userTask",
    "task_parts_done": "scriptTask",
    "gw_parts_merge": "exclusiveGateway",
    "gw_join": "parallelGateway",
    "gw_acceptance_merge": "exclusiveGateway",
    "task_acceptance": "userTask",
    "gw_acceptance": "exclusiveGateway",
    "task_rework": "userTask",
    "task_archive": "scriptTask",
    "end_archived": "endEvent",
}
# Left to right on one horizontal line; the other branches are drawn above and below it.
REPAIR_MAIN_LINE = (
    "start_reported",
    "task_assign",
    "task_dispatch",
    "gw_split",
    "task_onsite",
    "gw_onsite_merge",
    "gw_join",
    "gw_acceptance_merge",
    "task_acceptance",
    "gw_acceptance",
    "task_archive",
    "end_archived",
)


@pytest.fixture
def repair():
    return parse(BPMN_FILES["equipment_repair"])


def sequence_flows(tree):
    return {
        f.get("id"): (f.get("sourceRef"), f.get("targetRef"))
        for f in tree.iterfind(".//bpmn:sequenceFlow", NS)
    }


def test_equipment_repair_elements(repair):
    assert {e.get("id"): local(e) for e in flow_nodes(repair)} == REPAIR_NODES
    hosts = {
        e.get("id"): e.get("attachedToRef") for e in repair.iterfind(".//bpmn:boundaryEvent", NS)
    }
    assert hosts == {"timer_repair_remind": "task_onsite", "timer_repair_sla": "task_onsite"}


def test_equipment_repair_rework_loops_back_to_acceptance_only(repair):
    links = set(sequence_flows(repair).values())
    assert {
        ("task_dispatch", "gw_split"),
        ("gw_join", "gw_acceptance_merge"),
        ("gw_acceptance_merge", "task_acceptance"),
        ("task_acceptance", "gw_acceptance"),
        ("gw_acceptance", "task_archive"),
        ("gw_acceptance", "task_rework"),
        ("task_rework", "gw_acceptance_merge"),
    } <= links
    sources = {tgt: sorted(s for s, t in links if t == tgt) for _, tgt in links}
    assert sources["gw_split"] == ["task_dispatch"]
    assert sources["gw_acceptance_merge"] == ["gw_join", "task_rework"]
    assert sources["task_acceptance"] == ["gw_acceptance_merge"]
    conditions = {
        f.get("targetRef"): f.findtext("bpmn:conditionExpression", namespaces=NS)
        for f in repair.iterfind(".//bpmn:sequenceFlow[@sourceRef='gw_acceptance']", NS)
    }
    assert conditions == {
        "task_archive": 'acceptance_result == "accept"',
        "task_rework": 'acceptance_result == "reject"',
    }


def test_equipment_repair_rework_task(repair):
    task = repair.find(".//bpmn:userTask[@id='task_rework']", NS)
    assert task.get("name") == "返工"
    assert {
        k.removeprefix(CAMUNDA): v for k, v in task.attrib.items() if k.startswith(CAMUNDA)
    } == {
        "assignee": "${engineer}",
        "candidateGroups": "${assigned_group}",
        "dueDate": "${iso_hours(sla_hours)}",
        "formKey": "repair_onsite",
    }


def test_equipment_repair_layout(repair):
    shapes = {element: bounds(shape) for element, shape in shapes_by_element(repair).items()}
    edges = edges_by_element(repair)

    def center(element):
        x, y, w, h = shapes[element]
        return x + w / 2, y + h / 2

    centers = [center(e) for e in REPAIR_MAIN_LINE]
    main_y = centers[0][1]
    assert {y for _, y in centers} == {main_y}, "the main line is not straight"
    xs = [x for x, _ in centers]
    assert xs == sorted(xs), "the main line does not run left to right"
    for (a, (ax, _, aw, _)), (b, (bx, _, _, _)) in itertools.pairwise(
        (e, shapes[e]) for e in REPAIR_MAIN_LINE
    ):
        assert bx - (ax + aw) >= 50, f"{a} and {b} are too close"
    # The rework loop hangs below the acceptance part of the main line.
    _, acceptance_y, _, acceptance_h = shapes["task_acceptance"]
    _, rework_y, _, _ = shapes["task_rework"]
    assert rework_y >= acceptance_y + acceptance_h + 40
    assert shapes["task_rework"][0] == shapes["task_acceptance"][0]
    for fid in ("flow_rework", "flow_rework_merge"):
        points = waypoints(edges[fid])
        assert min(y for _, y in points) > main_y, f"{fid} is not drawn below the main line"
        assert min(x for x, _ in points) >= center("gw_acceptance_merge")[0], fid
        assert max(x for x, _ in points) <= center("gw_acceptance")[0], fid


# --- forms --------------------------------------------------------------------------------


def test_every_form_key_has_a_form_with_that_id():
    keys = form_keys_in_bpmn()
    for key, where in keys.items():
        path = FORMS / f"{key}.form"
        assert path.is_file(), f"{where} uses formKey {key} but {path.relative_to(ROOT)} is missing"
        assert load_form(key)["id"] == key, f"{path.name}: id must be {key!r}"
    assert set(keys) == set(FORM_FIELDS), "formKeys in the BPMN files differ from FORM_FIELDS"


def test_no_form_without_a_user():
    shipped = {p.stem for p in FORMS.glob("*.form")}
    assert shipped == set(form_keys_in_bpmn())


@pytest.mark.parametrize("form_id", sorted(FORM_FIELDS))
def test_form_schema(form_id):
    form = load_form(form_id)
    assert form["type"] == "default"
    assert form["schemaVersion"] == 16
    assert form["exporter"] == {"name": "Paidan", "version": "1.0"}
    components = list(all_components(form["components"]))
    ids = [c["id"] for c in components]
    assert len(ids) == len(set(ids)), f"{form_id}: duplicate component ids"
    keys = set()
    for component in components:
        if "key" in component:
            keys.add(component["key"])
            assert component["id"] == component["key"], (
                f"{form_id}: id != key for {component['key']}"
            )
        if "label" in component:
            assert CHINESE.search(component["label"]), f"{form_id}: label {component['label']!r}"
            assert " / " in component["label"], (
                f"{form_id}: label {component['label']!r} lacks English"
            )
        for option in component.get("values", []):
            assert CHINESE.search(option["label"]), f"{form_id}: option {option['label']!r}"
    assert keys == FORM_FIELDS[form_id]
    required = {c["key"] for c in components if c.get("validate", {}).get("required")}
    assert REQUIRED.get(form_id, set()) <= required, f"{form_id}: required fields {required}"


@pytest.mark.parametrize(("form_id", "key"), sorted(SELECT_VALUES))
def test_select_values_match_the_conditions(form_id, key):
    component = next(
        c for c in all_components(load_form(form_id)["components"]) if c.get("key") == key
    )
    assert component["type"] == "select"
    assert {v["value"] for v in component["values"]} == SELECT_VALUES[(form_id, key)]


def test_checkboxes_default_to_false():
    # gw_parts compares parts_needed with True and False: it must never be missing.
    component = next(
        c for c in load_form("repair_dispatch")["components"] if c.get("key") == "parts_needed"
    )
    assert component["type"] == "checkbox" and component["defaultValue"] is False


# --- DMN ----------------------------------------------------------------------------------


def dmn_table():
    tree = parse(PROCESSES / "assignment.dmn")
    decision = tree.find("dmn:decision", NS)
    table = decision.find("dmn:decisionTable", NS)
    inputs = [
        i.findtext("dmn:inputExpression/dmn:text", namespaces=NS)
        for i in table.iterfind("dmn:input", NS)
    ]
    outputs = [o.get("name") for o in table.iterfind("dmn:output", NS)]
    rules = []
    for rule in table.iterfind("dmn:rule", NS):
        entries = [
            (e.findtext("dmn:text", namespaces=NS) or "").strip()
            for e in rule.iterfind("dmn:inputEntry", NS)
        ]
        results = [
            e.findtext("dmn:text", namespaces=NS) for e in rule.iterfind("dmn:outputEntry", NS)
        ]
        rules.append(
            (rule.get("id"), entries, results, rule.findtext("dmn:description", namespaces=NS))
        )
    return tree, decision, table, inputs, outputs, rules


def entry_matches(entry: str, value: str) -> bool:
    # The same reading SpiffWorkflow gives an entry: "-"/empty is any, "?" is the input.
    if entry in ("", "-"):
        return True
    if "?" in entry:
        return eval(entry.replace("?", "value"), {"__builtins__": {}}, {"value": value})
    return value == ast.literal_eval(entry)


def test_dmn_structure():
    tree, decision, table, inputs, outputs, rules = dmn_table()
    assert decision.get("id") == "assignment"
    assert table.get("hitPolicy") == "UNIQUE"
    assert inputs == ["category", "priority", "region"]
    assert outputs == ["assigned_group", "sla_hours", "required_skill", "required_level"]
    shapes = [s.get("dmnElementRef") for s in tree.iterfind(".//dmndi:DMNShape", NS)]
    assert "assignment" in shapes, "dmn-js needs a DMNShape for the decision"
    for rule_id, _, results, note in rules:
        assert note and CHINESE.search(note), f"{rule_id}: needs a Chinese annotation"
        for text in results:
            ast.literal_eval(text)


def test_dmn_catch_all_row_is_last_and_only():
    *_, rules = dmn_table()
    catch_all = [
        i for i, (_, entries, _, _) in enumerate(rules) if all(e in ("", "-") for e in entries)
    ]
    assert catch_all == [len(rules) - 1], "exactly one catch-all row, and it must be the last"
    assert [ast.literal_eval(t) for t in rules[-1][2]][:2] == ["service_desk", 24]


@pytest.mark.parametrize(
    "category", ["network", "hardware", "facilities", "software", "account", "", "x"]
)
def test_dmn_rows_do_not_overlap_and_give_the_agreed_results(category):
    *_, rules = dmn_table()
    sla = {"P1": 4, "P2": 8, "P3": 24, "P4": 72}
    group = {
        "network": "network",
        "hardware": "hardware",
        "facilities": "facilities",
        "software": "service_desk",
        "account": "service_desk",
    }
    for priority in [*sla, "P9"]:
        for region in ("beijing", "shanghai", "shenzhen"):
            hits = [
                (rule_id, results)
                for rule_id, entries, results, _ in rules
                if all(
                    entry_matches(e, v)
                    for e, v in zip(entries, (category, priority, region), strict=True)
                )
            ]
            specific = hits[:-1] if hits and hits[-1][0] == rules[-1][0] else hits
            assert len(specific) <= 1, f"{category}/{priority}/{region} matches {specific}"
            got = [ast.literal_eval(t) for t in hits[0][1]]
            # Dispatch's required skill: one of the demo's skill codes at a level of 1..5.
            skill, level = got[2:]
            assert skill in SKILL_CODES and level in range(1, 6), f"{category}/{priority}/{region}"
            if category in group and priority in sla:
                hours = sla[priority] * (2 if category == "network" and region == "shenzhen" else 1)
                assert got[:2] == [group[category], hours], f"{category}/{priority}/{region}"
            else:
                assert got[:2] == ["service_desk", 24], f"{category}/{priority}/{region}"


# --- the designer's own check (bpmn-moddle, camunda-bpmn-moddle, dmn-moddle) ------------


def test_designer_check_passes():
    if not (DESIGNER / "node_modules").is_dir():
        pytest.fail("designer/node_modules is missing: run `npm ci --prefix designer` first")
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is not on PATH: install Node 20+ and run `npm ci --prefix designer`")
    result = subprocess.run(
        [npm, "run", "--silent", "check"], cwd=DESIGNER, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"npm run check failed:\n{result.stdout}{result.stderr}"
