"""Marshmallow schemas of the designer API, with the examples the OpenAPI document shows."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.designer.service import KEY_PATTERN
from app.workflows.schemas import one_line

# A draft is sent whole on every save: a size limit per file and a count of files keep a
# request within what the database and the parsers handle comfortably.
MAX_XML_CHARS = 2_000_000
MAX_DMN_FILES = 50
MAX_FORMS = 200
DMN_NAME = r"^[A-Za-z0-9_\u4e00-\u9fff][A-Za-z0-9_.\u4e00-\u9fff-]{0,95}\.dmn$"
FORM_ID = r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}$"

_KEY_ERROR = (
    "须以字母或下划线开头，只含字母、数字、_ . - / must start with a letter or underscore and "
    "hold only letters, digits, _ . -"
)
_DMN_ERROR = "须是以 .dmn 结尾的文件名 / must be a file name ending in .dmn"
_key = validate.Regexp(KEY_PATTERN, error=_KEY_ERROR)
_xml = validate.Length(max=MAX_XML_CHARS)

NEW_PROCESS_EXAMPLE = {"key": "it_service_v2", "name": "IT 服务请求（新版）"}
SMALL_BPMN = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'id="Definitions_1" targetNamespace="http://bpmn.io/schema/bpmn">\n'
    '  <bpmn:process id="it_service" name="IT 服务请求" isExecutable="true">\n'
    '    <bpmn:startEvent id="start" />\n'
    "  </bpmn:process>\n"
    "</bpmn:definitions>\n"
)
SMALL_DMN = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="d" name="分组" '
    'namespace="http://camunda.org/schema/1.0/dmn">\n'
    '  <decision id="group_by_category" name="按类别分组">\n'
    '    <decisionTable id="table" hitPolicy="UNIQUE">\n'
    '      <input id="in_category" label="类别"><inputExpression id="ie" typeRef="string">'
    "<text>category</text></inputExpression></input>\n"
    '      <output id="out_group" label="组" name="assigned_group" typeRef="string" />\n'
    '      <rule id="rule_network"><inputEntry id="r1i"><text>"network"</text></inputEntry>'
    '<outputEntry id="r1o"><text>"network"</text></outputEntry></rule>\n'
    '      <rule id="rule_other"><inputEntry id="r2i"><text>-</text></inputEntry>'
    '<outputEntry id="r2o"><text>"service_desk"</text></outputEntry></rule>\n'
    "    </decisionTable>\n"
    "  </decision>\n"
    "</definitions>\n"
)
DRAFT_EXAMPLE = {
    "key": "it_service",
    "name": "IT 服务请求",
    "bpmn_xml": SMALL_BPMN,
    "dmn": {},
    "forms": {},
    "base_version": 1,
    "lock_version": 3,
    "updated_by": "admin",
    "updated_at": "2026-11-28T02:30:00+00:00",
}
PROCESS_LIST_EXAMPLE = [
    {
        "key": "it_service",
        "name": "IT 服务台工单",
        "versions": [
            {
                "version": 2,
                "deployed_by": "admin",
                "deployed_at": "2026-11-28T02:40:00+00:00",
                "running": 5,
            },
            {
                "version": 1,
                "deployed_by": None,
                "deployed_at": "2026-11-20T01:00:00+00:00",
                "running": 2,
            },
        ],
        "draft": {
            "name": "IT 服务台工单",
            "updated_by": "admin",
            "updated_at": "2026-11-28T02:30:00+00:00",
            "lock_version": 3,
        },
    }
]
DIFF_EXAMPLE = {
    "base_version": 1,
    "added": [{"id": "task_callback", "type": "userTask", "name": "电话回访"}],
    "removed": [],
    "changed": [
        {"id": "flow_triage_gw", "type": "sequenceFlow", "name": None, "fields": ["targetRef"]}
    ],
}
LOOKUPS_EXAMPLE = {
    "groups": [{"code": "network", "name": "网络组"}],
    "users": [{"username": "net1", "display_name": "网络工程师一"}],
    "forms": [{"id": "it_triage", "title": "问题分级"}],
    "decisions": [{"id": "assignment", "name": "分配技术组与时限"}],
}
PROBLEM_EXAMPLE = {
    "element_id": "task_new",
    "file": "it_service.bpmn",
    "severity": "error",
    "code": "flow-node-unconnected",
    "message_zh": "文件 it_service.bpmn：元素 task_new（新步骤）没有连接任何顺序流",
    "message_en": "file it_service.bpmn: element task_new is not connected by any sequence flow",
}


class NewProcessArgs(Schema):
    # The pattern is checked by the service: a key that is no NCName is a 422 naming it.
    key = fields.String(
        required=True,
        validate=validate.Length(min=1, max=100),
        metadata={
            "description": "流程标识（BPMN 流程 id，XML NCName）/ the BPMN process id",
            "pattern": KEY_PATTERN,
        },
    )
    name = fields.String(required=True, validate=[validate.Length(min=1, max=200), one_line])


def _dmn_files(**options) -> fields.Dict:
    return fields.Dict(
        keys=fields.String(validate=validate.Regexp(DMN_NAME, error=_DMN_ERROR)),
        values=fields.String(validate=_xml),
        validate=validate.Length(max=MAX_DMN_FILES),
        metadata={"description": "DMN 文件名 → XML / DMN file name -> XML"},
        **options,
    )


def _forms(**options) -> fields.Dict:
    return fields.Dict(
        keys=fields.String(validate=validate.Regexp(FORM_ID, error=_KEY_ERROR)),
        values=fields.Dict(),
        validate=validate.Length(max=MAX_FORMS),
        metadata={"description": "表单 id → form-js 表单 / form id -> form-js schema"},
        **options,
    )


class DraftSourcesArgs(Schema):
    """A draft's files; on validate each field left out is taken from the stored draft."""

    bpmn_xml = fields.String(validate=_xml)
    dmn = _dmn_files()
    forms = _forms()


class SaveDraftArgs(Schema):
    bpmn_xml = fields.String(required=True, validate=_xml)
    dmn = _dmn_files(load_default=dict)
    forms = _forms(load_default=dict)
    lock_version = fields.Integer(
        required=True,
        validate=validate.Range(min=0, max=2**31 - 1),
        metadata={"description": "打开时的保存次数（0：尚未保存）/ the save the editor opened"},
    )


class DeployArgs(Schema):
    lock_version = fields.Integer(required=True, validate=validate.Range(min=0, max=2**31 - 1))


class TryDecisionArgs(Schema):
    dmn_xml = fields.String(required=True, validate=[validate.Length(min=1), _xml])
    decision_id = fields.String(required=True, validate=[validate.Length(min=1, max=200), one_line])
    inputs = fields.Dict(
        keys=fields.String(validate=validate.Length(max=100)),
        values=fields.Raw(allow_none=True),
        load_default=dict,
        validate=validate.Length(max=200),
    )


class LookupArgs(Schema):
    key = fields.String(validate=[validate.Length(min=1, max=100), _key])


# ---------------------------------------------------------------- answers


class VersionSummarySchema(Schema):
    version = fields.Integer()
    deployed_by = fields.String(allow_none=True)
    deployed_at = fields.DateTime()
    running = fields.Integer(metadata={"description": "在此版本上运行的实例 / instances running"})


class DraftSummarySchema(Schema):
    name = fields.String()
    updated_by = fields.String()
    updated_at = fields.DateTime()
    lock_version = fields.Integer()


class ProcessSummarySchema(Schema):
    key = fields.String()
    name = fields.String()
    versions = fields.List(fields.Nested(VersionSummarySchema))
    draft = fields.Nested(DraftSummarySchema, allow_none=True)


class DraftSchema(Schema):
    key = fields.String()
    name = fields.String()
    bpmn_xml = fields.String()
    dmn = fields.Dict(keys=fields.String(), values=fields.String())
    forms = fields.Dict(keys=fields.String(), values=fields.Dict())
    base_version = fields.Integer(allow_none=True)
    lock_version = fields.Integer()
    updated_by = fields.String(allow_none=True)
    updated_at = fields.DateTime(allow_none=True)


class ProblemItemSchema(Schema):
    element_id = fields.String(allow_none=True)
    file = fields.String(allow_none=True)
    severity = fields.String(validate=validate.OneOf(["error", "warning"]))
    code = fields.String()
    message_zh = fields.String()
    message_en = fields.String()


class ValidationSchema(Schema):
    ok = fields.Boolean()
    problems = fields.List(fields.Nested(ProblemItemSchema))


class DiffRowSchema(Schema):
    id = fields.String()
    type = fields.String()
    name = fields.String(allow_none=True)


class ChangedRowSchema(DiffRowSchema):
    fields = fields.List(fields.String(), metadata={"description": "改动的字段 / what changed"})


class DiffSchema(Schema):
    base_version = fields.Integer(allow_none=True)
    added = fields.List(fields.Nested(DiffRowSchema))
    removed = fields.List(fields.Nested(DiffRowSchema))
    changed = fields.List(fields.Nested(ChangedRowSchema))


class DeployedSchema(Schema):
    key = fields.String()
    version = fields.Integer()
    new_version = fields.Boolean(
        metadata={"description": "false：内容未变，沿用最新版本 / unchanged: the latest version"}
    )


class WaitingSchema(Schema):
    key = fields.String()
    version = fields.Integer()
    elements = fields.Dict(keys=fields.String(), values=fields.Integer())
    links = fields.Dict(keys=fields.String(), values=fields.String())


class GroupPickSchema(Schema):
    code = fields.String()
    name = fields.String()


class UserPickSchema(Schema):
    username = fields.String()
    display_name = fields.String()


class FormPickSchema(Schema):
    id = fields.String()
    title = fields.String()


class DecisionPickSchema(Schema):
    id = fields.String()
    name = fields.String()


class LookupsSchema(Schema):
    groups = fields.List(fields.Nested(GroupPickSchema))
    users = fields.List(fields.Nested(UserPickSchema))
    forms = fields.List(fields.Nested(FormPickSchema))
    decisions = fields.List(fields.Nested(DecisionPickSchema))


class TriedSchema(Schema):
    decision_id = fields.String()
    outputs = fields.List(fields.Dict(), metadata={"description": "每条命中规则的输出 / per rule"})
    matched_rules = fields.List(fields.String())
    result = fields.Dict(metadata={"description": "写入流程数据的结果 / what the task adds"})
