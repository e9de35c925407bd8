"""Marshmallow schemas of work orders, and which of their fields each role is shown."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from marshmallow import (
    Schema,
    ValidationError,
    fields,
    post_load,
    pre_dump,
    validate,
    validates,
    validates_schema,
)

from app.api import PageArgs, PageSchema
from app.tickets.models import PRIORITIES, REGIONS, STATUSES, Ticket
from app.tickets.service import RESERVED_VARIABLES, TICKET_TYPES, contact_of, location_of
from app.workflows.schemas import EventSchema, TaskSchema

# Field visibility per role, read by app.auth.access.schema_for for single tickets and lists
# alike. Finance sees what a work order cost and nothing about who or what it was for.
COST_FIELDS = ("parts_cost", "labour_cost", "total_cost", "currency")
TICKET_VIEWS: dict[str, dict] = {
    "finance": {"only": ("id", "number", *COST_FIELDS)},
    "requester": {"exclude": ("internal_note", *COST_FIELDS)},
    "*": {},
}

# Query times without an offset are Beijing time, as people in the service desk mean them.
LOCAL_TIME = ZoneInfo("Asia/Shanghai")
# Numeric(12, 2) holds up to 9 999 999 999.99 yuan.
MAX_COST = Decimal("9999999999.99")
MAX_CUSTOM_FIELDS = 30

# Text that reaches the database: control characters are refused (PostgreSQL refuses NUL in
# text, and none belongs in a title); descriptions and notes may keep tabs and line breaks.
ONE_LINE = re.compile(r"^[^\x00-\x1f\x7f]*$")
LINES = re.compile(r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$")
_NO_CONTROL = "不能包含控制字符 / must not contain control characters"
one_line = validate.Regexp(ONE_LINE, error=_NO_CONTROL)
multi_line = validate.Regexp(LINES, error=_NO_CONTROL)
PHONE = re.compile(r"^\+?[0-9][0-9 \-]{1,38}[0-9]$")
VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,59}$")


def not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("不能为空 / must not be blank")


def text_field(
    max_length: int, *, lines: bool = False, pattern: validate.Regexp | None = None, **kwargs
) -> fields.String:
    """A string of at most ``max_length`` characters without control characters (or matching
    ``pattern``, which must refuse them itself: OpenAPI documents one pattern per field)."""
    checks = [validate.Length(max=max_length), pattern or (multi_line if lines else one_line)]
    return fields.String(validate=checks + kwargs.pop("validate", []), **kwargs)


def money_field() -> fields.Decimal:
    """Yuan with two decimals, written as a string so no float ever rounds it."""
    return fields.Decimal(
        places=2,
        rounding=ROUND_HALF_UP,
        as_string=True,
        metadata={"type": "string", "format": "decimal", "example": "120.00"},
    )


def cost_field() -> fields.Decimal:
    """Yuan as sent: a number or a numeric string, rounded to fen."""
    return fields.Decimal(
        places=2,
        rounding=ROUND_HALF_UP,
        validate=_cost_in_range,
        # Documented by hand: apispec writes a Decimal field's Range bounds as strings.
        metadata={"minimum": 0, "maximum": float(MAX_COST), "example": 120},
    )


def _cost_in_range(value: Decimal) -> None:
    if not 0 <= value <= MAX_COST:
        raise ValidationError(
            f"金额须在 0 到 {MAX_COST} 元之间 / an amount is between 0 and {MAX_COST} yuan"
        )


class LocationSchema(Schema):
    """Where the work is: coordinates (WGS-84) and/or an address."""

    lat = fields.Float(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=-90, max=90),
        metadata={"example": 31.2304},
    )
    lng = fields.Float(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=-180, max=180),
        metadata={"example": 121.4737},
    )
    address = text_field(
        300, load_default=None, allow_none=True, metadata={"example": "上海市黄浦区"}
    )

    @validates_schema
    def _both_coordinates(self, data, **kwargs):
        if (data.get("lat") is None) != (data.get("lng") is None):
            raise ValidationError(
                "纬度 lat 和经度 lng 需同时提供 / give lat and lng together", "lat"
            )


class ContactSchema(Schema):
    """Whom the engineer calls on site."""

    name = text_field(100, load_default=None, allow_none=True, metadata={"example": "王工"})
    phone = text_field(
        40,
        load_default=None,
        allow_none=True,
        pattern=validate.Regexp(
            PHONE,
            error="电话号码只能包含数字、空格、- 和开头的 + / "
            "a phone number has digits, spaces, - and a leading + only",
        ),
        metadata={"example": "+86 138-0000-0000"},
    )


# ---------------------------------------------------------------- requests


class TicketCreateSchema(Schema):
    title = text_field(200, required=True, validate=[validate.Length(min=1), not_blank])
    description = text_field(20000, lines=True, load_default="")
    process_key = text_field(
        100,
        load_default=None,
        validate=[validate.Length(min=1)],
        metadata={"description": "the process to start; or give ticket_type"},
    )
    ticket_type = fields.String(
        load_default=None,
        validate=validate.OneOf(list(TICKET_TYPES)),
        metadata={
            "description": "it → it_service, repair → equipment_repair; "
            "without it or process_key: it_service"
        },
    )
    priority = fields.String(load_default="P3", validate=validate.OneOf(PRIORITIES))
    category = text_field(40, load_default="")
    region = fields.String(load_default="beijing", validate=validate.OneOf(list(REGIONS)))
    device_no = text_field(60, load_default=None, allow_none=True)
    location = fields.Nested(LocationSchema, load_default=None, allow_none=True)
    contact = fields.Nested(ContactSchema, load_default=None, allow_none=True)
    custom_fields = fields.Dict(
        load_default=dict,
        metadata={
            "description": f"up to {MAX_CUSTOM_FIELDS} extra values (text, numbers, yes/no) "
            "keyed by names; they become process variables"
        },
    )

    @validates("custom_fields")
    def _custom_fields(self, value: dict, **kwargs):
        check_custom_fields(value)

    @validates_schema
    def _one_process(self, data, **kwargs):
        key, kind = data.get("process_key"), data.get("ticket_type")
        if key and kind and TICKET_TYPES[kind] != key:
            raise ValidationError(
                f"ticket_type {kind} 对应流程 {TICKET_TYPES[kind]}，与 process_key {key} 不一致 / "
                f"ticket_type {kind} means process {TICKET_TYPES[kind]}, not process_key {key}; "
                "give one of them",
                "ticket_type",
            )

    @post_load
    def _resolve_process(self, data, **kwargs):
        kind = data.pop("ticket_type")
        data["process_key"] = data["process_key"] or TICKET_TYPES[kind or "it"]
        return data


def check_custom_fields(value: dict) -> None:
    if len(value) > MAX_CUSTOM_FIELDS:
        raise ValidationError(
            f"最多 {MAX_CUSTOM_FIELDS} 个自定义字段 / at most {MAX_CUSTOM_FIELDS} custom fields"
        )
    for name, item in value.items():
        if not VARIABLE_NAME.match(name):
            raise ValidationError(
                f"字段名 {name} 无效：以字母或 _ 开头，只含字母、数字和 _ / "
                f"field name {name} is not valid: letters, digits and _, not starting with a digit"
            )
        if name in RESERVED_VARIABLES:
            raise ValidationError(
                f"字段名 {name} 由工单本身填写，请换一个名字 / "
                f"field name {name} is set by the work order itself; choose another name"
            )
        if isinstance(item, float) and not math.isfinite(item):
            raise ValidationError(f"字段 {name} 不是有限数字 / field {name} is not a finite number")
        if isinstance(item, str):
            if len(item) > 1000 or not LINES.match(item):
                raise ValidationError(
                    f"字段 {name} 的文本过长（最多 1000 字）或含控制字符 / "
                    f"field {name}: text of at most 1000 characters without control characters"
                )
        elif not isinstance(item, bool | int | float | type(None)):
            raise ValidationError(
                f"字段 {name} 只能是文本、数字、是/否或 null / "
                f"field {name} must be text, a number, true/false or null"
            )


class TicketUpdateSchema(Schema):
    """The fields a PATCH may send; which of them the caller may change depends on its role."""

    title = text_field(200, validate=[validate.Length(min=1), not_blank])
    description = text_field(20000, lines=True)
    priority = fields.String(validate=validate.OneOf(PRIORITIES))
    category = text_field(40)
    internal_note = text_field(20000, lines=True, allow_none=True)
    location = fields.Nested(LocationSchema, allow_none=True)
    contact = fields.Nested(ContactSchema, allow_none=True)
    parts_cost = cost_field()
    labour_cost = cost_field()


class TicketListArgs(PageArgs):
    # A bound on the page keeps the OFFSET within what PostgreSQL accepts.
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100000))
    status = fields.String(validate=validate.OneOf(list(STATUSES)))
    priority = fields.String(validate=validate.OneOf(PRIORITIES))
    category = text_field(40, metadata={"example": "network"})
    assignee = text_field(
        100,
        metadata={"description": "username with an open task assigned", "example": "fac1"},
    )
    group = text_field(
        100,
        metadata={
            "description": "group code with an open unclaimed task offered",
            "example": "network",
        },
    )
    created_from = fields.AwareDateTime(
        default_timezone=LOCAL_TIME,
        validate=validate.Range(min=datetime(2000, 1, 1, tzinfo=UTC)),
        metadata={
            "description": "created at or after (without an offset: Beijing time)",
            "example": "2026-11-01T00:00:00+08:00",
        },
    )
    created_to = fields.AwareDateTime(
        default_timezone=LOCAL_TIME,
        validate=validate.Range(max=datetime(2200, 1, 1, tzinfo=UTC)),
        metadata={"description": "created before", "example": "2026-12-01T00:00:00+08:00"},
    )
    q = text_field(
        200,
        validate=[validate.Length(min=1)],
        metadata={
            "description": "text in the number, title or description",
            "example": "VPN",
        },
    )

    @validates_schema
    def _range(self, data, **kwargs):
        start, end = data.get("created_from"), data.get("created_to")
        if start and end and start > end:
            raise ValidationError(
                "created_from 晚于 created_to / created_from is after created_to", "created_from"
            )


# ---------------------------------------------------------------- responses


class TicketSchema(Schema):
    """A work order. Which fields a caller receives depends on its role (TICKET_VIEWS)."""

    id = fields.Integer(metadata={"example": 42})
    number = fields.String(metadata={"example": "RP-20261126-00042"})
    process_key = fields.String()
    title = fields.String()
    description = fields.String()
    status = fields.String()
    status_label = fields.Method("_status_label", metadata={"type": "string"})
    priority = fields.String()
    category = fields.String()
    region = fields.String()
    device_no = fields.String(allow_none=True)
    location = fields.Nested(LocationSchema, allow_none=True)
    contact = fields.Nested(ContactSchema, allow_none=True)
    current_step = fields.String(allow_none=True)
    custom_fields = fields.Dict()
    internal_note = fields.String(allow_none=True)
    parts_cost = money_field()
    labour_cost = money_field()
    total_cost = money_field()
    currency = fields.String(metadata={"enum": ["CNY"], "example": "CNY"})
    requester = fields.String()
    process_instance_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    closed_at = fields.DateTime(allow_none=True)
    open_tasks = fields.List(
        fields.Nested(TaskSchema),
        metadata={"description": "open tasks of this work order the caller may see"},
    )
    history = fields.List(
        fields.Nested(EventSchema),
        metadata={"description": "requesters: submission, steps reached, their own tasks, end"},
    )

    @pre_dump
    def _from_ticket(self, ticket, **kwargs):
        return ticket_record(ticket) if isinstance(ticket, Ticket) else ticket

    def _status_label(self, ticket):
        zh, en = STATUSES.get(ticket["status"], (ticket["status"], ticket["status"]))
        return f"{zh} / {en}"


class TicketSummarySchema(TicketSchema):
    """A work order in a list: without its tasks and history."""

    class Meta:
        exclude = ("open_tasks", "history")


class TicketPageSchema(PageSchema):
    items = fields.List(fields.Nested(TicketSummarySchema))


def ticket_record(ticket: Ticket) -> dict:
    """The ticket's own fields, with location and contact as the objects the API shows."""
    return {
        "id": ticket.id,
        "number": ticket.number,
        "process_key": ticket.process_key,
        "title": ticket.title,
        "description": ticket.description,
        "status": ticket.status,
        "priority": ticket.priority,
        "category": ticket.category,
        "region": ticket.region,
        "device_no": ticket.device_no,
        "location": location_of(ticket),
        "contact": contact_of(ticket),
        "current_step": ticket.current_step,
        "custom_fields": ticket.custom_fields,
        "internal_note": ticket.internal_note,
        "parts_cost": ticket.parts_cost,
        "labour_cost": ticket.labour_cost,
        "total_cost": ticket.total_cost,
        "currency": "CNY",
        "requester": ticket.requester.username,
        "process_instance_id": ticket.process_instance_id,
        "created_at": ticket.created_at,
        "updated_at": ticket.updated_at,
        "closed_at": ticket.closed_at,
    }
