"""Marshmallow schemas of process definitions, instances, tasks, history and messages, with the
examples the OpenAPI document shows."""

import re

from marshmallow import Schema, fields, post_dump, validate

from app.api import PageSchema
from app.engine.models import HELD_YEAR

# A due time in the year HELD_YEAR is held by the work order's SLA clock (app.sla.clock.NEVER:
# paused, or an SLA deadline still unknown). It stays a date; `paused: true` says so beside it.
HELD_DESCRIPTION = (
    "9999-01-01T00:00:00+00:00 while the work order's SLA clock holds it (paused; for SLA "
    "timers also a deadline still unknown, or a target met before the timer's point); "
    "`paused` is then true"
)
PAUSED_DESCRIPTION = "the due time is held by the SLA clock (已暂停): show it as paused"


def _with_paused(_schema, data: dict, **_kwargs) -> dict:
    """Set `paused` from the dumped due time, whatever was dumped (a task row or a dict)."""
    due = data.get("due_at")
    data["paused"] = isinstance(due, str) and due.startswith(str(HELD_YEAR))
    return data


# ---------------------------------------------------------------- text

# No name, key or reason of ours holds a control character, and PostgreSQL refuses NUL in text.
# The patterns read the same in Python and in JSON Schema (ECMA-262); `(?!\n)` stops Python's
# `$` from accepting a final newline.
_ONE_LINE = re.compile(r"^[^\x00-\x1f\x7f]*$(?!\n)")
_CONTROL = "不能包含控制字符 / must not contain control characters"
one_line = validate.Regexp(_ONE_LINE, error=_CONTROL)
multi_line = validate.Regexp(r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$", error=_CONTROL)


def one_line_text(text: str) -> bool:
    return _ONE_LINE.match(text) is not None


# ---------------------------------------------------------------- examples

DEFINITION_EXAMPLE = {
    "id": 3,
    "key": "it_service",
    "version": 2,
    "name": "IT 服务请求",
    "content_hash": "9f2c4e0b7d1a5c3e8f6b2a4d0c9e7f1a3b5d7c9e1f3a5b7d9c1e3f5a7b9d1c3e",
    "bpmn_filename": "it_service.bpmn",
    "decisions": ["assignment.dmn"],
    "forms": ["it_handle", "it_review", "it_triage"],
    "deployed_at": "2026-11-26T08:30:00+00:00",
    "deployed_by": "admin",
}
TASK_EXAMPLE = {
    "id": "5d0c7c2e-1f7a-4c59-8d3e-6f1b2a9c4e01",
    "instance_id": 17,
    "ticket_id": 42,
    "element_id": "task_handle",
    "name": "技术组处理",
    "form_key": "it_handle",
    "candidate_groups": ["network"],
    "candidate_users": [],
    "assignee": None,
    "due_at": "2026-11-26T12:30:00+00:00",
    "paused": False,
    "status": "open",
    "created_at": "2026-11-26T08:30:00+00:00",
    "ended_at": None,
    "completed_by": None,
}
WAITING_EXAMPLE = {
    "element_id": "task_confirm",
    "name": "确认付款",
    "type": "userTask",
    "task_id": "5d0c7c2e-1f7a-4c59-8d3e-6f1b2a9c4e01",
}
INSTANCE_EXAMPLE = {
    "id": 17,
    "process_key": "it_service",
    "definition_version": 2,
    "business_key": "EXT-1",
    "ticket_id": None,
    "status": "running",
    "version": 2,
    "started_at": "2026-11-26T08:30:00+00:00",
    "ended_at": None,
    "active_elements": [
        {
            "element_id": "task_triage",
            "name": "问题分级",
            "type": "userTask",
            "task_id": "5d0c7c2e-1f7a-4c59-8d3e-6f1b2a9c4e01",
        }
    ],
    "open_tasks": [
        {
            **TASK_EXAMPLE,
            "element_id": "task_triage",
            "name": "问题分级",
            "form_key": "it_triage",
            "candidate_groups": ["service_desk"],
            "due_at": None,
        }
    ],
    "history": [
        {
            "id": 101,
            "element_id": "it_service",
            "element_type": "Process",
            "element_name": "IT 服务请求",
            "event_type": "process_started",
            "actor": "system:crm",
            "at": "2026-11-26T08:30:00+00:00",
            "data": {"title": "外部系统报障", "priority": "P3"},
        }
    ],
    "data": {"title": "外部系统报障", "priority": "P3"},
}

# ---------------------------------------------------------------- definitions


class DefinitionSchema(Schema):
    id = fields.Integer()
    key = fields.String()
    version = fields.Integer()
    name = fields.String()
    content_hash = fields.String()
    bpmn_filename = fields.String()
    decisions = fields.Method("_decisions", metadata={"description": "DMN files deployed with it"})
    forms = fields.Method("_forms", metadata={"description": "ids of the forms deployed with it"})
    deployed_at = fields.DateTime()
    deployed_by = fields.String(allow_none=True)

    def _decisions(self, definition):
        return sorted(definition.dmn_sources)

    def _forms(self, definition):
        return sorted(definition.forms)


class DefinitionPageSchema(PageSchema):
    items = fields.List(fields.Nested(DefinitionSchema))


class DefinitionSourcesSchema(Schema):
    key = fields.String()
    version = fields.Integer()
    content_hash = fields.String()
    bpmn_filename = fields.String()
    bpmn_xml = fields.String()
    dmn = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        attribute="dmn_sources",
        metadata={"description": "{filename: DMN XML}"},
    )
    forms = fields.Dict(metadata={"description": "{form id: form-js schema}"})


class DeployFilesSchema(Schema):
    files = fields.List(fields.Raw(metadata={"type": "string", "format": "binary"}))


# ---------------------------------------------------------------- instances and tasks


class TaskSchema(Schema):
    id = fields.String()
    instance_id = fields.Integer()
    ticket_id = fields.Integer(allow_none=True)
    element_id = fields.String()
    name = fields.String()
    form_key = fields.String(allow_none=True)
    candidate_groups = fields.List(fields.String())
    candidate_users = fields.List(fields.String())
    assignee = fields.String(allow_none=True)
    due_at = fields.DateTime(allow_none=True, metadata={"description": HELD_DESCRIPTION})
    paused = fields.Boolean(dump_only=True, metadata={"description": PAUSED_DESCRIPTION})
    status = fields.String()
    created_at = fields.DateTime()
    ended_at = fields.DateTime(allow_none=True)
    completed_by = fields.String(allow_none=True)

    add_paused = post_dump(_with_paused)


class EventSchema(Schema):
    id = fields.Integer()
    element_id = fields.String(allow_none=True)
    element_type = fields.String(allow_none=True)
    element_name = fields.String(allow_none=True)
    event_type = fields.String(
        metadata={
            "description": "process_started, task_created, task_claimed, task_unclaimed, "
            "task_transferred, task_dispatched, task_completed, element_completed, "
            "element_cancelled, "
            "timer_fired, message_received, process_completed"
        }
    )
    actor = fields.String(allow_none=True)
    at = fields.DateTime()
    data = fields.Dict(allow_none=True)


class ActiveElementSchema(Schema):
    element_id = fields.String()
    name = fields.String(allow_none=True)
    type = fields.String(metadata={"description": "userTask, timer or message"})
    task_id = fields.String()
    due_at = fields.DateTime(metadata={"description": HELD_DESCRIPTION})
    paused = fields.Boolean(dump_only=True, metadata={"description": PAUSED_DESCRIPTION})
    message_name = fields.String()

    add_paused = post_dump(_with_paused)


class InstanceSchema(Schema):
    id = fields.Integer()
    process_key = fields.String()
    definition_version = fields.Integer(attribute="definition.version")
    business_key = fields.String(allow_none=True)
    ticket_id = fields.Integer(allow_none=True)
    status = fields.String()
    version = fields.Integer()
    started_at = fields.DateTime()
    ended_at = fields.DateTime(allow_none=True)
    active_elements = fields.List(fields.Nested(ActiveElementSchema))
    open_tasks = fields.List(fields.Nested(TaskSchema))
    history = fields.List(fields.Nested(EventSchema))
    data = fields.Dict()


class StartInstanceSchema(Schema):
    process_key = fields.String(required=True, validate=[validate.Length(min=1, max=100), one_line])
    data = fields.Dict(load_default=dict)
    business_key = fields.String(
        load_default=None,
        validate=[validate.Length(max=100), one_line],
        metadata={"description": "the key messages correlate on"},
    )


# ---------------------------------------------------------------- messages


class MessageSchema(Schema):
    name = fields.String(required=True, validate=[validate.Length(min=1, max=200), one_line])
    correlation_key = fields.String(
        required=True,
        validate=[validate.Length(min=1, max=100), one_line],
        metadata={
            "description": "the business key of the waiting instance (a work order's number)"
        },
    )
    payload = fields.Dict(
        load_default=dict, metadata={"description": "merged into the instance's data"}
    )


class DeliveredSchema(Schema):
    instance_id = fields.Integer()
    process_key = fields.String()
    business_key = fields.String()
    ticket_id = fields.Integer(allow_none=True)
    status = fields.String()
    waiting_on = fields.List(
        fields.Nested(ActiveElementSchema),
        metadata={"description": "what the instance waits on after the message"},
    )
