"""Marshmallow schemas of work orders."""

from marshmallow import Schema, fields, validate

from app.tickets.models import PRIORITIES, REGIONS, STATUSES
from app.workflows.schemas import EventSchema, TaskSchema


class TicketCreateSchema(Schema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(load_default="", validate=validate.Length(max=20000))
    process_key = fields.String(load_default="it_service", validate=validate.Length(min=1, max=100))
    priority = fields.String(load_default="P3", validate=validate.OneOf(PRIORITIES))
    category = fields.String(load_default="", validate=validate.Length(max=40))
    region = fields.String(load_default="beijing", validate=validate.OneOf(list(REGIONS)))
    device_no = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=60))
    custom_fields = fields.Dict(load_default=dict)


class TicketSchema(Schema):
    id = fields.Integer()
    number = fields.String()
    process_key = fields.String()
    title = fields.String()
    description = fields.String()
    status = fields.String()
    status_label = fields.Method("_status_label")
    priority = fields.String()
    category = fields.String()
    region = fields.String()
    device_no = fields.String(allow_none=True)
    current_step = fields.String(allow_none=True)
    custom_fields = fields.Dict()
    requester = fields.String(attribute="requester.username")
    process_instance_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    closed_at = fields.DateTime(allow_none=True)
    open_tasks = fields.List(fields.Nested(TaskSchema))
    history = fields.List(fields.Nested(EventSchema))

    def _status_label(self, ticket):
        status = ticket["status"] if isinstance(ticket, dict) else ticket.status
        zh, en = STATUSES.get(status, (status, status))
        return f"{zh} / {en}"


class TicketSummarySchema(TicketSchema):
    """A ticket in a list: without its tasks and history."""

    class Meta:
        exclude = ("open_tasks", "history")


class TicketPageSchema(Schema):
    items = fields.List(fields.Nested(TicketSummarySchema))
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()
