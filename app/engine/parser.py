"""Reading uploaded BPMN/DMN safely and turning them into SpiffWorkflow specs.

Uploads are checked by defusedxml first (no DTD, no entities, no external references), then
parsed by lxml with entity resolution and network access off. Every expression in the files is
checked by the safe evaluator before SpiffWorkflow sees it, so a refused definition names
the element and the reason. The checks collect `Problem`s rather than raising: deploy raises the
first error, the designer's "validate" lists them all.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from functools import partial
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

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class Problem:
    """One reason a deploy is refused (severity "error"), or a likely mistake ("warning"), with
    the file and the element it is about when they are known."""

    code: str
    zh: str
    en: str
    file: str | None = None
    element_id: str | None = None
    severity: str = "error"

    def refusal(self) -> InvalidInput:
        return InvalidInput(self.zh, self.en)


def raise_first_error(problems: list[Problem]) -> None:
    """Deploy stops at the first error, with the same message a collected check lists."""
    for problem in problems:
        if problem.severity == "error":
            raise problem.refusal()


def load_xml(filename: str, data: bytes) -> etree._Element:
    """Parse an uploaded XML file, refusing DTDs, entities and external references."""
    root, problem = read_xml(filename, data)
    if problem is not None:
        raise problem.refusal()
    return root


def read_xml(filename: str, data: bytes) -> tuple[etree._Element | None, Problem | None]:
    """(root, None) for a safe, well-formed UTF-8 file, else (None, the problem)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, Problem(
            "xml-encoding",
            f"文件 {filename} 不是 UTF-8 编码（第 {exc.start} 个字节）",
            f"file {filename} is not UTF-8 encoded (byte {exc.start})",
            filename,
        )
    try:
        SafeElementTree.fromstring(data, forbid_dtd=True)
        return etree.fromstring(data, _SAFE_PARSER), None
    except DefusedXmlException as exc:
        return None, Problem(
            "xml-forbidden",
            f"文件 {filename} 含有不允许的 XML 结构（DTD、实体或外部引用）：{type(exc).__name__}",
            f"file {filename} contains forbidden XML (DTD, entity or external reference): "
            f"{type(exc).__name__}",
            filename,
        )
    except (SafeElementTree.ParseError, etree.XMLSyntaxError) as exc:
        line, column = exc.position
        return None, Problem(
            "xml-malformed",
            f"文件 {filename} 不是格式正确的 XML（第 {line} 行第 {column} 列）",
            f"file {filename} is not well-formed XML (line {line}, column {column})",
            filename,
        )


def element_label(node: etree._Element) -> str:
    name = node.get("name")
    ident = node.get("id", "?")
    return f"{ident}（{name}）" if name else ident


def _refused(filename: str, node: etree._Element, what: str, error: ExpressionError) -> Problem:
    return Problem(
        "expression-refused",
        f"文件 {filename}：元素 {element_label(node)} 的{what}不被允许：{error.zh}",
        f"file {filename}: {what_en(what)} of element {node.get('id', '?')} is refused: {error.en}",
        filename,
        node.get("id"),
    )


_WHAT_EN = {
    "条件": "condition",
    "脚本": "script",
    "定时器表达式": "timer expression",
    "表达式": "expression",
    "规则条目": "rule entry",
}
# Texts inside an element; an id of their own (some modelers give one) is not what people find.
_EXPRESSION_TAGS = {"conditionExpression", "script", "timeDuration", "timeDate", "timeCycle"}


def what_en(what: str) -> str:
    return _WHAT_EN.get(what, what)


def _owner(node: etree._Element) -> etree._Element:
    """The nearest ancestor (or self) with an id: the element a person can find in the diagram."""
    while node is not None and (
        node.get("id") is None
        or node.tag.endswith("EventDefinition")
        or etree.QName(node).localname in _EXPRESSION_TAGS
    ):
        node = node.getparent()
    return node


def bpmn_expression_problems(filename: str, root: etree._Element) -> list[Problem]:
    """Every condition, script, timer and ``${…}`` attribute that the safe evaluator refuses."""
    found: list[Problem] = []
    for condition in root.iterfind(".//bpmn:conditionExpression", NS):
        found += _checked(filename, _owner(condition), "条件", check_expression, condition.text)
    for script in root.iterfind(".//bpmn:script", NS):
        found += _checked(filename, _owner(script), "脚本", check_script, script.text)
    for tag in ("timeDuration", "timeDate", "timeCycle"):
        for timer in root.iterfind(f".//bpmn:{tag}", NS):
            found += _checked(filename, _owner(timer), "定时器表达式", check_expression, timer.text)
    for node in root.iter():
        for attribute in ASSIGNMENT_ATTRIBUTES:
            value = node.get(f"{{{CAMUNDA_NS}}}{attribute}")
            for expression in _PLACEHOLDER.findall(value or ""):
                found += _checked(filename, node, "表达式", check_expression, expression)
        language = node.get("scriptFormat")
        if language and language.lower() not in {"python", "py"}:
            found.append(
                Problem(
                    "script-language",
                    f"文件 {filename}：元素 {element_label(node)} 的脚本语言 {language} 不受支持，"
                    "只支持 python",
                    f"file {filename}: element {node.get('id')} uses script language {language}; "
                    "only python is supported",
                    filename,
                    node.get("id"),
                )
            )
    return found


def _checked(filename, node, what, checker, text: str | None) -> list[Problem]:
    if not (text or "").strip():
        return [
            Problem(
                "expression-empty",
                f"文件 {filename}：元素 {element_label(node)} 的{what}为空",
                f"file {filename}: {what_en(what)} of element {node.get('id', '?')} is empty",
                filename,
                node.get("id"),
            )
        ]
    try:
        checker(text)
    except ExpressionError as error:
        return [_refused(filename, node, what, error)]
    return []


def dmn_expression_problems(filename: str, root: etree._Element) -> list[Problem]:
    """DMN entries are Python: unary tests like `>= 3` become `v >= 3`, `?` the input."""
    found: list[Problem] = []
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
                    found.append(_refused(filename, _owner(node), "规则条目", first))
                    continue
                try:  # a unary test such as `>= 3` reads as `input >= 3`
                    check_expression(f"dmninputexpr {candidate}")
                except ExpressionError as second:
                    reason = second if not second.syntax else first
                    found.append(_refused(filename, _owner(node), "规则条目", reason))
        elif text:
            found += _checked(filename, _owner(node), "表达式", check_expression, text)
    return found


def build_parser(bundle: Bundle) -> tuple[PaidanParser, list[Problem]]:
    """A parser holding every file SpiffWorkflow accepts, and a problem for each it refuses."""
    parser = PaidanParser()
    found: list[Problem] = []
    for filename, root in bundle.dmn.items():
        found += _spiff_problems(
            filename, None, partial(parser.add_dmn_xml, root, filename=filename)
        )
    for filename, root in bundle.bpmn.items():
        found += _spiff_problems(
            filename, None, partial(parser.add_bpmn_xml, root, filename=filename)
        )
    return parser, found


def _spiff_problems(filename: str | None, element_id: str | None, call) -> list[Problem]:
    """SpiffWorkflow's refusal of a file or spec as problems. Anything it raises on an upload is
    the upload's fault, not the server's: a crash inside the library is a refusal too."""
    try:
        call()
    except ValidationException as exc:
        return [_validation_problem(exc, filename, element_id)]
    except Exception as exc:  # third-party code fed with uploaded files: never a 500
        log.info("SpiffWorkflow failed on %s: %r", filename or element_id, exc)
        where = f"文件 {filename}" if filename else f"流程 {element_id}"
        where_en = f"file {filename}" if filename else f"process {element_id}"
        return [
            Problem(
                "spiff-invalid",
                f"{where}：流程引擎无法读取该定义：{type(exc).__name__}: {exc}",
                f"{where_en}: the process engine cannot read the definition: "
                f"{type(exc).__name__}: {exc}",
                filename,
                element_id,
            )
        ]
    return []


def reference_problems(bundle: Bundle, available_forms: set[str]) -> list[Problem]:
    """Every decisionRef must name a deployed decision, every formKey a form."""
    decisions = {
        node.get("id")
        for root in bundle.dmn.values()
        for node in root.iter()
        if etree.QName(node).localname == "decision"
    }
    found: list[Problem] = []
    for filename, root in bundle.bpmn.items():
        for task in root.iterfind(".//bpmn:businessRuleTask", NS):
            ref = task.get(f"{{{CAMUNDA_NS}}}decisionRef")
            if not ref:
                found.append(
                    Problem(
                        "decision-ref-missing",
                        f"文件 {filename}：业务规则任务 {element_label(task)} 没有 "
                        "camunda:decisionRef",
                        f"file {filename}: business rule task {task.get('id')} has no "
                        "camunda:decisionRef",
                        filename,
                        task.get("id"),
                    )
                )
            elif ref not in decisions:
                found.append(
                    Problem(
                        "decision-unknown",
                        f"文件 {filename}：业务规则任务 {element_label(task)} 引用的决策表 {ref} "
                        "不存在，请把对应的 .dmn 文件一起上传",
                        f"file {filename}: business rule task {task.get('id')} refers to decision "
                        f"{ref}, which is not in this deploy; upload its .dmn file with the .bpmn",
                        filename,
                        task.get("id"),
                    )
                )
        for task in root.iterfind(".//bpmn:userTask", NS):
            key = task.get(f"{{{CAMUNDA_NS}}}formKey")
            if key and key not in available_forms:
                found.append(
                    Problem(
                        "form-unknown",
                        f"文件 {filename}：用户任务 {element_label(task)} 的表单 {key} 不存在，"
                        "请把对应的 .form 文件一起上传",
                        f"file {filename}: user task {task.get('id')} names form {key}, which "
                        "is not deployed; upload its .form file with the .bpmn",
                        filename,
                        task.get("id"),
                    )
                )
    return found


def _validation_problem(
    exc: ValidationException, filename: str | None = None, element_id: str | None = None
) -> Problem:
    filename = exc.file_name or filename
    ident = getattr(exc, "id", "") or element_id
    where = f"文件 {filename}" if filename else "流程定义"
    where_en = f"file {filename}" if filename else "definition"
    element = f"，元素 {ident}" if ident else ""
    element_en = f", element {ident}" if ident else ""
    return Problem(
        "spiff-invalid",
        f"{where}{element}：流程定义无效：{exc}",
        f"{where_en}{element_en}: invalid definition: {exc}",
        filename,
        ident or None,
    )


def parse_spec(parser: PaidanParser, process_id: str, filename: str | None = None):
    """(spec, subprocess specs, problems) of one process; the specs are None when refused."""
    parsed = {}

    def parse():
        parsed["spec"] = parser.get_spec(process_id)
        parsed["subprocesses"] = parser.get_subprocess_specs(process_id)

    problems = _spiff_problems(filename, process_id, parse)
    return parsed.get("spec"), parsed.get("subprocesses"), problems


def executable_processes(root: etree._Element) -> list[etree._Element]:
    return [
        process
        for process in root.iterfind("bpmn:process", NS)
        if process.get("isExecutable", "true").lower() == "true"
    ]
