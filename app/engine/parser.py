"""Reading uploaded BPMN/DMN safely and turning them into SpiffWorkflow specs.

Uploads are checked by defusedxml first (no DTD, no entities, no external references), then
parsed by lxml with entity resolution and network access off. Every expression in the files is
checked by the safe evaluator before SpiffWorkflow sees it, so a refused definition names
the element and the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeElementTree
from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import full_tag
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.camunda.parser import CamundaParser
from SpiffWorkflow.camunda.parser.task_spec import UserTaskParser
from SpiffWorkflow.camunda.specs.user_task import UserTask

from app.errors import InvalidInput
from app.rules.expressions import ExpressionError, check_expression, check_script

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
NS = {"bpmn": BPMN_NS, "camunda": CAMUNDA_NS}

# The Camunda 7 attributes of a user task that decide who works on it and when.
ASSIGNMENT_ATTRIBUTES = ("candidateGroups", "candidateUsers", "assignee", "dueDate", "formKey")
_PLACEHOLDER = re.compile(r"\$\{(.*?)\}", re.S)

_SAFE_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
)


class AssigningUserTaskParser(UserTaskParser):
    """Keeps the Camunda assignment attributes on the spec (CamundaParser drops them)."""

    def parse_extensions(self, node=None):
        extensions = super().parse_extensions(node)
        for name in ASSIGNMENT_ATTRIBUTES:
            value = self.node.get(f"{{{CAMUNDA_NS}}}{name}")
            if value:
                extensions[f"camunda:{name}"] = value
        if self.lane:
            extensions["lane"] = self.lane
        return extensions


class PaidanParser(CamundaParser):
    OVERRIDE_PARSER_CLASSES: ClassVar[dict] = {
        **CamundaParser.OVERRIDE_PARSER_CLASSES,
        full_tag("userTask"): (AssigningUserTaskParser, UserTask),
    }


@dataclass
class Bundle:
    """The files of one deploy, read and checked."""

    bpmn: dict[str, etree._Element] = field(default_factory=dict)  # filename -> root
    bpmn_text: dict[str, str] = field(default_factory=dict)
    dmn: dict[str, etree._Element] = field(default_factory=dict)
    dmn_text: dict[str, str] = field(default_factory=dict)
    forms: dict[str, dict] = field(default_factory=dict)  # form id -> schema


def load_xml(filename: str, data: bytes) -> etree._Element:
    """Parse an uploaded XML file, refusing DTDs, entities and external references."""
    try:
        SafeElementTree.fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise InvalidInput(
            f"文件 {filename} 含有不允许的 XML 结构（DTD、实体或外部引用）：{type(exc).__name__}",
            f"file {filename} contains forbidden XML (DTD, entity or external reference): "
            f"{type(exc).__name__}",
        ) from None
    except SafeElementTree.ParseError as exc:
        line, column = exc.position
        raise InvalidInput(
            f"文件 {filename} 不是格式正确的 XML（第 {line} 行第 {column} 列）",
            f"file {filename} is not well-formed XML (line {line}, column {column})",
        ) from None
    return etree.fromstring(data, _SAFE_PARSER)


def element_label(node: etree._Element) -> str:
    name = node.get("name")
    ident = node.get("id", "?")
    return f"{ident}（{name}）" if name else ident


def _refuse(filename: str, node: etree._Element, what: str, error: ExpressionError):
    label = element_label(node)
    raise InvalidInput(
        f"文件 {filename}：元素 {label} 的{what}不被允许：{error.zh}",
        f"file {filename}: {what_en(what)} of element {node.get('id', '?')} is refused: {error.en}",
    )


_WHAT_EN = {
    "条件": "condition",
    "脚本": "script",
    "定时器表达式": "timer expression",
    "表达式": "expression",
    "规则条目": "rule entry",
}


def what_en(what: str) -> str:
    return _WHAT_EN.get(what, what)


def _owner(node: etree._Element) -> etree._Element:
    """The nearest ancestor (or self) with an id: the element a person can find in the diagram."""
    while node is not None and (node.get("id") is None or node.tag.endswith("EventDefinition")):
        node = node.getparent()
    return node


def check_bpmn_expressions(filename: str, root: etree._Element) -> None:
    for condition in root.iterfind(".//bpmn:conditionExpression", NS):
        _check(filename, _owner(condition), "条件", check_expression, condition.text or "")
    for script in root.iterfind(".//bpmn:script", NS):
        _check(filename, _owner(script), "脚本", check_script, script.text or "")
    for tag in ("timeDuration", "timeDate", "timeCycle"):
        for timer in root.iterfind(f".//bpmn:{tag}", NS):
            _check(filename, _owner(timer), "定时器表达式", check_expression, timer.text or "")
    for node in root.iter():
        for attribute in ASSIGNMENT_ATTRIBUTES:
            value = node.get(f"{{{CAMUNDA_NS}}}{attribute}")
            for expression in _PLACEHOLDER.findall(value or ""):
                _check(filename, node, "表达式", check_expression, expression)
        language = node.get("scriptFormat")
        if language and language.lower() not in {"python", "py"}:
            raise InvalidInput(
                f"文件 {filename}：元素 {element_label(node)} 的脚本语言 {language} 不受支持，"
                "只支持 python",
                f"file {filename}: element {node.get('id')} uses script language {language}; "
                "only python is supported",
            )


def _check(filename, node, what, checker, text: str) -> None:
    if not text.strip():
        raise InvalidInput(
            f"文件 {filename}：元素 {element_label(node)} 的{what}为空",
            f"file {filename}: {what_en(what)} of element {node.get('id', '?')} is empty",
        )
    try:
        checker(text)
    except ExpressionError as error:
        _refuse(filename, node, what, error)


def check_dmn_expressions(filename: str, root: etree._Element) -> None:
    """DMN entries are Python: unary tests like `>= 3` become `v >= 3`, `?` the input."""
    for node in root.iter():
        local = etree.QName(node).localname
        if local not in {"inputEntry", "outputEntry", "inputExpression"}:
            continue
        text_node = next((c for c in node if etree.QName(c).localname == "text"), None)
        text = (text_node.text or "").strip() if text_node is not None else ""
        if local == "inputEntry":
            if text in {"", "-"}:
                continue
            candidate = text.replace("?", "dmninputexpr")
            try:
                check_expression(candidate)
            except ExpressionError as first:
                if not first.syntax:
                    _refuse(filename, _owner(node), "规则条目", first)
                try:  # a unary test such as `>= 3` reads as `input >= 3`
                    check_expression(f"dmninputexpr {candidate}")
                except ExpressionError as second:
                    _refuse(
                        filename, _owner(node), "规则条目", second if not second.syntax else first
                    )
        elif text:
            _check(filename, _owner(node), "表达式", check_expression, text)


def build_parser(bundle: Bundle) -> PaidanParser:
    parser = PaidanParser()
    try:
        for filename, root in bundle.dmn.items():
            parser.add_dmn_xml(root, filename=filename)
        for filename, root in bundle.bpmn.items():
            parser.add_bpmn_xml(root, filename=filename)
    except ValidationException as exc:
        raise _validation_error(exc) from None
    return parser


def check_references(bundle: Bundle, available_forms: set[str]) -> None:
    """Every decisionRef must name a deployed decision, every formKey a form."""
    decisions = {
        node.get("id")
        for root in bundle.dmn.values()
        for node in root.iter()
        if etree.QName(node).localname == "decision"
    }
    for filename, root in bundle.bpmn.items():
        for task in root.iterfind(".//bpmn:businessRuleTask", NS):
            ref = task.get(f"{{{CAMUNDA_NS}}}decisionRef")
            if not ref:
                raise InvalidInput(
                    f"文件 {filename}：业务规则任务 {element_label(task)} 没有 camunda:decisionRef",
                    f"file {filename}: business rule task {task.get('id')} has no "
                    "camunda:decisionRef",
                )
            if ref not in decisions:
                raise InvalidInput(
                    f"文件 {filename}：业务规则任务 {element_label(task)} 引用的决策表 {ref} "
                    "不存在，请把对应的 .dmn 文件一起上传",
                    f"file {filename}: business rule task {task.get('id')} refers to decision "
                    f"{ref}, which is not in this deploy; upload its .dmn file with the .bpmn",
                )
        for task in root.iterfind(".//bpmn:userTask", NS):
            key = task.get(f"{{{CAMUNDA_NS}}}formKey")
            if key and key not in available_forms:
                raise InvalidInput(
                    f"文件 {filename}：用户任务 {element_label(task)} 的表单 {key} 不存在，"
                    "请把对应的 .form 文件一起上传",
                    f"file {filename}: user task {task.get('id')} names form {key}, which is "
                    "not deployed; upload its .form file with the .bpmn",
                )


def _validation_error(exc: ValidationException) -> InvalidInput:
    where = f"文件 {exc.file_name}" if exc.file_name else "流程定义"
    where_en = f"file {exc.file_name}" if exc.file_name else "definition"
    element = f"，元素 {exc.id}" if getattr(exc, "id", "") else ""
    element_en = f", element {exc.id}" if getattr(exc, "id", "") else ""
    return InvalidInput(
        f"{where}{element}：流程定义无效：{exc}",
        f"{where_en}{element_en}: invalid definition: {exc}",
    )


def parse_spec(parser: PaidanParser, process_id: str):
    try:
        return parser.get_spec(process_id), parser.get_subprocess_specs(process_id)
    except ValidationException as exc:
        raise _validation_error(exc) from None


def executable_processes(root: etree._Element) -> list[etree._Element]:
    return [
        process
        for process in root.iterfind("bpmn:process", NS)
        if process.get("isExecutable", "true").lower() == "true"
    ]
