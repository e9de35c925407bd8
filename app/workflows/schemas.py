"""Marshmallow schemas of process definitions, instances, tasks and history."""

from marshmallow import Schema, fields, validate


class DefinitionSchema(Schema):
    id = fields.Integer()
    key = fields.String()
    version = fields.Integer()
    name = fields.String()
    content_hash = fields.String()
    bpmn_filename = fields.String()
    decisions = fields.Method("_decisions")
    forms = fields.Method("_forms")
    deployed_at = fields.DateTime()
    deployed_by = fields.String(allow_none=True)

    def _decisions(self, definition):
        return sorted(definition.dmn_sources)

    def _forms(self, definition):
        return sorted(definition.forms)


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
    due_at = fields.DateTime(allow_none=True)
    status = fields.String()
    created_at = fields.DateTime()
    ended_at = fields.DateTime(allow_none=True)
    completed_by = fields.String(allow_none=True)


class EventSchema(Schema):
    id = fields.Integer()
    element_id = fields.String(allow_none=True)
    element_type = fields.String(allow_none=True)
    element_name = fields.String(allow_none=True)
    event_type = fields.String()
    actor = fields.String(allow_none=True)
    at = fields.DateTime()
    data = fields.Dict(allow_none=True)


class ActiveElementSchema(Schema):
    element_id = fields.String()
    name = fields.String(allow_none=True)
    type = fields.String()
    task_id = fields.String()
    due_at = fields.DateTime()
    message_name = fields.String()


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
    process_key = fields.String(required=True, validate=validate.Length(min=1, max=100))
    data = fields.Dict(load_default=dict)
    business_key = fields.String(load_default=None, validate=validate.Length(max=100))


class DeployFilesSchema(Schema):
    files = fields.List(fields.Raw(metadata={"type": "string", "format": "binary"}))
