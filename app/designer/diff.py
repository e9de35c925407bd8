"""What a draft changes against a deployed version, flow element by flow element (by id).

Only the process's semantics count: where a shape sits on the canvas (the DI) is no change.
Each element is reduced to named fields (name, type, incoming/outgoing flows, the condition,
Camunda attributes such as candidateGroups or formKey, the timer, the script, properties,
event definitions, documentation, ...) and a field whose value differs is listed as changed.
"""

from __future__ import annotations

from lxml import etree

from app.engine.lint import FLOW_NODES
from app.engine.parser import BPMN_NS, CAMUNDA_NS, NS

# Flow elements besides flow nodes: what a token follows and what tasks read and write, and
# lanes, which name the group of the tasks in them.
DIFFED = FLOW_NODES | {"sequenceFlow", "dataObject", "dataObjectReference", "dataStoreReference"}
_CHILD_FIELDS = {
    "conditionExpression": "condition",
    "script": "script",
    "documentation": "documentation",
    "multiInstanceLoopCharacteristics": "loop",
    "standardLoopCharacteristics": "loop",
}
_TIMER_TAGS = {"timeDuration", "timeDate", "timeCycle"}
_SKIPPED_ATTRIBUTES = {"id", "name"}
# Field names of our own; an attribute of the same name is told apart by its namespace.
_RESERVED = {"type", "incoming", "outgoing", "event", "properties", "flowNodeRef"}
_RESERVED |= set(_CHILD_FIELDS.values())


def _local(node: etree._Element) -> str:
    return etree.QName(node).localname if isinstance(node.tag, str) else ""


def _text(node: etree._Element) -> str:
    return " ".join("".join(node.itertext()).split())


def _process(root: etree._Element | None, key: str) -> etree._Element | None:
    if root is None:
        return None
    return next((node for node in root.iterfind("bpmn:process", NS) if node.get("id") == key), None)


def elements(root: etree._Element | None, key: str) -> dict[str, dict]:
    """{element id: {field: value}} of the flow elements and lanes of process ``key``."""
    process = _process(root, key)
    if process is None:
        return {}
    found: dict[str, dict] = {}
    flows = list(process.iter(f"{{{BPMN_NS}}}sequenceFlow"))
    incoming: dict[str, list[str]] = {}
    outgoing: dict[str, list[str]] = {}
    for flow in flows:
        outgoing.setdefault(flow.get("sourceRef"), []).append(flow.get("id"))
        incoming.setdefault(flow.get("targetRef"), []).append(flow.get("id"))
    for node in process.iter():
        local = _local(node)
        ident = node.get("id")
        if not ident or node is process:
            continue
        if local in DIFFED:
            fields = _fields(node)
            if local != "sequenceFlow":
                fields["incoming"] = sorted(incoming.get(ident, []))
                fields["outgoing"] = sorted(outgoing.get(ident, []))
            found[ident] = fields
        elif local == "lane":
            found[ident] = {
                "type": "lane",
                "name": node.get("name") or "",
                "flowNodeRef": sorted(
                    (ref.text or "").strip() for ref in node.findall("bpmn:flowNodeRef", NS)
                ),
            }
    return found


def _fields(node: etree._Element) -> dict:
    fields: dict = {"type": _local(node), "name": node.get("name") or ""}
    for attribute, value in node.attrib.items():
        name = etree.QName(attribute).localname
        if name in _RESERVED:
            prefix = "camunda" if attribute.startswith(f"{{{CAMUNDA_NS}}}") else "attribute"
            name = f"{prefix}:{name}"
        if name not in _SKIPPED_ATTRIBUTES:
            fields[name] = value
    for child in node:
        local = _local(child)
        if local in _CHILD_FIELDS:
            fields[_CHILD_FIELDS[local]] = _text(child)
        elif local.endswith("EventDefinition"):
            fields.setdefault("event", []).append(_event(child))
        elif local == "extensionElements":
            for extension in child:
                if _local(extension) == "properties" and extension.tag.startswith(
                    f"{{{CAMUNDA_NS}}}"
                ):
                    fields["properties"] = sorted(
                        (p.get("name") or "", p.get("value") or "") for p in extension
                    )
                elif isinstance(extension.tag, str):
                    key = f"extension:{_local(extension)}"
                    fields[key] = etree.tostring(extension, encoding="unicode")
    return fields


def _event(definition: etree._Element) -> str:
    """An event definition as one comparable text: its kind, references and timer."""
    parts = [_local(definition)]
    parts += [f"{etree.QName(k).localname}={v}" for k, v in sorted(definition.attrib.items())]
    for child in definition:
        if _local(child) in _TIMER_TAGS:
            parts.append(f"{_local(child)}={_text(child)}")
    return " ".join(part for part in parts if not part.startswith("id="))


def _changed_fields(before: dict, after: dict) -> list[str]:
    names = []
    for name in sorted(set(before) | set(after)):
        if before.get(name) != after.get(name):
            label = name.removeprefix("extension:")
            if name == "event" and any("time" in entry for entry in after.get(name, [])):
                label = "timer"
            if label not in names:
                names.append(label)
    return names


def diff(base: etree._Element | None, draft: etree._Element | None, key: str) -> dict:
    """{added, removed, changed} of process ``key``: draft against base."""
    before, after = elements(base, key), elements(draft, key)

    def row(ident: str, fields: dict) -> dict:
        return {"id": ident, "type": fields.get("type"), "name": fields.get("name") or None}

    return {
        "added": [row(i, after[i]) for i in sorted(after) if i not in before],
        "removed": [row(i, before[i]) for i in sorted(before) if i not in after],
        "changed": [
            {**row(i, after[i]), "fields": _changed_fields(before[i], after[i])}
            for i in sorted(after)
            if i in before and before[i] != after[i]
        ],
    }
