"""The engine's own rules for executable processes, beyond what SpiffWorkflow checks.

Each one catches a diagram SpiffWorkflow accepts but that would strand work: a flow node no
token can reach or leave, a user task nobody is offered, a timer written as an ISO literal
(Python reads `PT4H` as a name and fails only when the timer starts), an SLA property on a
timer that the SLA clock cannot use (the timer would keep its wall-clock expression unnoticed).
The browser designer runs the same rules as bpmnlint rules (designer/bpmnlint-plugin-paidan),
so an admin sees them while drawing; deploy refuses them here whatever made the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from app.engine.parser import (
    ASSIGNMENT_ATTRIBUTES,
    BPMN_NS,
    CAMUNDA_NS,
    NS,
    Problem,
    element_label,
    executable_processes,
)

FLOW_NODES = {
    "startEvent",
    "endEvent",
    "intermediateCatchEvent",
    "intermediateThrowEvent",
    "boundaryEvent",
    "task",
    "userTask",
    "manualTask",
    "serviceTask",
    "scriptTask",
    "businessRuleTask",
    "sendTask",
    "receiveTask",
    "callActivity",
    "subProcess",
    "transaction",
    "adHocSubProcess",
    "exclusiveGateway",
    "inclusiveGateway",
    "parallelGateway",
    "eventBasedGateway",
    "complexGateway",
}
CONTAINERS = {"process", "subProcess", "transaction", "adHocSubProcess"}
# Who may work on a user task (dueDate and formKey say nothing about that).
_WHO = tuple(name for name in ASSIGNMENT_ATTRIBUTES if name not in {"dueDate", "formKey"})
# Camunda properties that tie a timer boundary event to an SLA clock (read by app/sla/bpmn_timers):
# the clock kinds are spelled out here because the engine imports no domain package.
SLA_PROPERTY, SLA_PERCENT_PROPERTY = "sla", "sla_percent"
SLA_KINDS = ("response", "resolution")
SLA_PERCENT_MAX = 1000
# A user task's property: does its camunda:dueDate follow the SLA clock (app/sla/task_due)?
SLA_DUE_PROPERTY, SLA_DUE_CLOCK, SLA_DUE_OWN = "sla_due", "clock", "own"
# A user task's dispatch mode (app/dispatch/work.settings_for; the modes of app/dispatch/models).
DISPATCH_MODE_PROPERTY = "dispatch_mode"
DISPATCH_MODES = ("dispatcher", "auto", "pool")
# An ISO 8601 duration or repeating interval written bare, where an expression is read.
_ISO_LITERAL = re.compile(
    r"^(R\d*/)?P(?=\d|T\d)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$"
)


def _local(node: etree._Element) -> str:
    return etree.QName(node).localname if isinstance(node.tag, str) else ""


def _has_definition(node: etree._Element, kind: str) -> bool:
    return node.find(f"bpmn:{kind}EventDefinition", NS) is not None


def lint_problems(filename: str, root: etree._Element) -> list[Problem]:
    """Problems of every executable process in one BPMN file."""
    found: list[Problem] = []
    for process in executable_processes(root):
        found += _unconnected(filename, process)
        found += _unassigned(filename, process)
        found += _bare_timers(filename, process)
        found += _sla_timer_properties(filename, process)
        found += _task_properties(filename, process)
    return found


def _containers(process: etree._Element):
    yield process
    yield from process.iter(*(f"{{{BPMN_NS}}}{tag}" for tag in CONTAINERS - {"process"}))


def _unconnected(filename: str, process: etree._Element) -> list[Problem]:
    found = []
    for container in _containers(process):
        if _local(container) == "adHocSubProcess":
            continue  # its activities run in any order, without flows
        flows = container.findall("bpmn:sequenceFlow", NS)
        sources = {flow.get("sourceRef") for flow in flows}
        targets = {flow.get("targetRef") for flow in flows}
        for node in container:
            local = _local(node)
            if local not in FLOW_NODES or node.get("isForCompensation") == "true":
                continue
            if local == "subProcess" and node.get("triggeredByEvent") == "true":
                continue
            if local == "boundaryEvent" and _has_definition(node, "compensate"):
                continue
            link = _has_definition(node, "link")
            needs_in = local not in {"startEvent", "boundaryEvent"} and not (
                local == "intermediateCatchEvent" and link
            )
            needs_out = local != "endEvent" and not (local == "intermediateThrowEvent" and link)
            missing_in = needs_in and node.get("id") not in targets
            missing_out = needs_out and node.get("id") not in sources
            if not (missing_in or missing_out):
                continue
            if missing_in and missing_out:
                zh, en = "没有连接任何顺序流", "is not connected by any sequence flow"
            elif missing_in:
                zh, en = (
                    "没有连入的顺序流，永远不会执行",
                    "has no incoming sequence flow: it never runs",
                )
            else:
                zh, en = "没有连出的顺序流", "has no outgoing sequence flow"
            found.append(
                Problem(
                    "flow-node-unconnected",
                    f"文件 {filename}：元素 {element_label(node)} {zh}",
                    f"file {filename}: element {node.get('id')} {en}",
                    filename,
                    node.get("id"),
                )
            )
    return found


def _named_lane_members(process: etree._Element) -> set[str]:
    members = set()
    for lane in process.iter(f"{{{BPMN_NS}}}lane"):
        if (lane.get("name") or "").strip():
            members.update((ref.text or "").strip() for ref in lane.findall("bpmn:flowNodeRef", NS))
    return members


def _unassigned(filename: str, process: etree._Element) -> list[Problem]:
    in_lanes = _named_lane_members(process)
    found = []
    for task in process.iter(f"{{{BPMN_NS}}}userTask"):
        named = any((task.get(f"{{{CAMUNDA_NS}}}{name}") or "").strip() for name in _WHO)
        if named or task.get("id") in in_lanes:
            continue
        found.append(
            Problem(
                "user-task-unassigned",
                f"文件 {filename}：用户任务 {element_label(task)} 没有处理人、候选组或候选人"
                "（camunda:assignee、candidateGroups、candidateUsers，或放进一个有名字的泳道），"
                "没有人能收到它",
                f"file {filename}: user task {task.get('id')} has no assignee, candidate group "
                "or candidate user (camunda:assignee, candidateGroups, candidateUsers, or a "
                "named lane): nobody would receive it",
                filename,
                task.get("id"),
            )
        )
    return found


def _bare_timers(filename: str, process: etree._Element) -> list[Problem]:
    found = []
    for tag in ("timeDuration", "timeDate", "timeCycle"):
        for timer in process.iter(f"{{{BPMN_NS}}}{tag}"):
            text = (timer.text or "").strip()
            if not _ISO_LITERAL.match(text):
                continue
            event = timer.getparent().getparent()
            found.append(
                Problem(
                    "timer-unquoted",
                    f"文件 {filename}：元素 {element_label(event)} 的定时器表达式 {text} 会被当作"
                    f'变量名：定时器写的是 Python 表达式，ISO 8601 时长要加引号，写成 "{text}"',
                    f"file {filename}: the timer expression {text} of element {event.get('id')} "
                    "would be read as a variable name: timers are Python expressions, so an "
                    f'ISO 8601 value needs quotes: "{text}"',
                    filename,
                    event.get("id"),
                )
            )
    return found


def camunda_properties(node: etree._Element) -> dict[str, str]:
    """name -> value (stripped) of an element's camunda:properties."""
    return {
        prop.get("name"): (prop.get("value") or "").strip()
        for prop in node.iterfind("bpmn:extensionElements/camunda:properties/camunda:property", NS)
    }


def _sla_percent_problem(text: str) -> tuple[str, str] | None:
    try:
        value = float(text)
    except ValueError:
        return f"「{text}」不是数字", f"{text!r} is not a number"
    if not 0 < value <= SLA_PERCENT_MAX:  # NaN fails this too
        return (
            f"{text} 不在 0（不含）到 {SLA_PERCENT_MAX} 之间",
            f"{text} is not above 0 and at most {SLA_PERCENT_MAX}",
        )
    return None


def _sla_timer_properties(filename: str, process: etree._Element) -> list[Problem]:
    """An `sla` / `sla_percent` property that the SLA clock could not use: the timer would
    silently keep its own wall-clock expression instead of following the clock."""
    found = []
    for event in process.iter(f"{{{BPMN_NS}}}boundaryEvent"):
        properties = camunda_properties(event)
        if SLA_PROPERTY not in properties and SLA_PERCENT_PROPERTY not in properties:
            continue
        kind = properties.get(SLA_PROPERTY)
        reasons = []
        if not _has_definition(event, "timer"):
            reasons.append(
                (
                    "SLA 属性只能用在定时器边界事件上",
                    "SLA properties apply to timer boundary events only",
                )
            )
        if kind is None:
            reasons.append(
                (
                    f"有 {SLA_PERCENT_PROPERTY} 但没有 {SLA_PROPERTY}（应为 response 或 resolution）",
                    f"has {SLA_PERCENT_PROPERTY} but no {SLA_PROPERTY} (response or resolution)",
                )
            )
        elif kind not in SLA_KINDS:
            reasons.append(
                (
                    f"属性 {SLA_PROPERTY} 的值「{kind}」无效，应为 response（响应）或 "
                    "resolution（解决）",
                    f"property {SLA_PROPERTY} is {kind!r}; it must be response or resolution",
                )
            )
        percent = properties.get(SLA_PERCENT_PROPERTY)
        if percent is not None:
            problem = _sla_percent_problem(percent)
            if problem is not None:
                reasons.append(
                    (
                        f"属性 {SLA_PERCENT_PROPERTY} {problem[0]}，应为大于 0、不超过 "
                        f"{SLA_PERCENT_MAX} 的数（时限的百分比，默认 100）",
                        f"property {SLA_PERCENT_PROPERTY}: {problem[1]}; it must be a number "
                        f"above 0 and at most {SLA_PERCENT_MAX} (percent of the target, default 100)",
                    )
                )
        for zh, en in reasons:
            found.append(
                Problem(
                    "sla-timer-property",
                    f"文件 {filename}：边界事件 {element_label(event)} 的 SLA 设置有误：{zh}",
                    f"file {filename}: boundary event {event.get('id')} has a bad SLA setting: {en}",
                    filename,
                    event.get("id"),
                )
            )
    return found


@dataclass(frozen=True)
class _TaskProperty:
    """A camunda property of user tasks that another part of Paidan reads: the values it can
    use, in the words of the problem deploy reports."""

    code: str
    values: tuple[str, ...]
    what_zh: str
    what_en: str
    allowed_zh: str
    allowed_en: str


_TASK_PROPERTIES = {
    SLA_DUE_PROPERTY: _TaskProperty(
        "sla-due-property",
        (SLA_DUE_CLOCK, SLA_DUE_OWN),
        "SLA 设置",
        "SLA setting",
        f"{SLA_DUE_CLOCK}（截止时间跟随 SLA）或 {SLA_DUE_OWN}（用任务自己的 dueDate）",
        f"{SLA_DUE_CLOCK} (the due date follows the SLA) or {SLA_DUE_OWN} (the task's own dueDate)",
    ),
    DISPATCH_MODE_PROPERTY: _TaskProperty(
        "dispatch-mode-property",
        DISPATCH_MODES,
        "派单方式",
        "dispatch mode",
        "dispatcher（调度员选择）、auto（自动派单）或 pool（工单池）",
        "dispatcher, auto or pool",
    ),
}


def _task_properties(filename: str, process: etree._Element) -> list[Problem]:
    """A property of _TASK_PROPERTIES that would be ignored without anyone noticing: on
    anything but a user task, or with a value its reader cannot use."""
    found = []
    for node in process.iter():
        if not isinstance(node.tag, str):
            continue
        for name, value in camunda_properties(node).items():
            rule = _TASK_PROPERTIES.get(name)
            if rule is None:
                continue
            if _local(node) != "userTask":
                zh = f"属性 {name} 只能用在用户任务上"
                en = f"property {name} applies to user tasks only"
            elif value not in rule.values:
                zh = f"属性 {name} 的值「{value}」无效，应为 {rule.allowed_zh}"
                en = f"property {name} is {value!r}; it must be {rule.allowed_en}"
            else:
                continue
            found.append(
                Problem(
                    rule.code,
                    f"文件 {filename}：元素 {element_label(node)} 的{rule.what_zh}有误：{zh}",
                    f"file {filename}: element {node.get('id')} has a bad {rule.what_en}: {en}",
                    filename,
                    node.get("id"),
                )
            )
    return found
