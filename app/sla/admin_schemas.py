"""Marshmallow schemas of the SLA admin API (business calendars, their days, SLA policies), with
the examples the OpenAPI document shows.

The schemas check types and shapes; what the values mean (hours that overlap, a target of no
minutes, an unknown calendar) is checked by the services, whose problems name the field in
Chinese and English."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.api import PageArgs, PageSchema
from app.auth.schemas import printable
from app.sla.calendar import DAY_KINDS
from app.sla.policy_checks import MAX_MINUTES, NOTIFY_TARGETS
from app.sla.sla_models import RESPONSE_EVENTS
from app.tickets.models import PRIORITIES

# ---------------------------------------------------------------- examples

HOURS_EXAMPLE = {str(weekday): [["09:00", "12:00"], ["13:00", "18:00"]] for weekday in range(5)}
CALENDAR_EXAMPLE = {
    "id": 1,
    "code": "standard",
    "name": "标准工作时间（周一至周五 9:00–12:00、13:00–18:00）",
    "time_zone": "Asia/Shanghai",
    "working_hours": HOURS_EXAMPLE,
    "use_official_holidays": True,
    "is_24x7": False,
    "uncovered_years": [2027],
    "created_at": "2026-11-26T01:00:00+00:00",
    "updated_at": "2026-11-26T01:00:00+00:00",
}
DAY_EXAMPLE = {
    "id": 12,
    "date": "2027-02-06",
    "kind": "holiday",
    "name": "春节",
    "scope": "official",
    "calendar_id": None,
}
LEVELS_EXAMPLE = [
    {"percent": 50, "notify": ["assignee"]},
    {"percent": 75, "notify": ["assignee", "group_lead"]},
    {"percent": 100, "notify": ["group_lead", "manager", "user:zhangwei"]},
]
POLICY_EXAMPLE = {
    "id": 3,
    "name": "设施报修 P1",
    "position": 1,
    "process_key": "equipment_repair",
    "category": "facilities",
    "priority": "P1",
    "department_code": None,
    "response_minutes": 30,
    "resolution_minutes": 240,
    "response_event": "checkin",
    "calendar_id": 2,
    "calendar": {"id": 2, "code": "24x7", "name": "7×24 小时"},
    "pause_on": ["备件申领"],
    "escalation_levels": LEVELS_EXAMPLE,
    "reminder_percent": 75,
    "active": True,
    "created_at": "2026-11-26T01:00:00+00:00",
    "updated_at": "2026-11-26T01:00:00+00:00",
}
POLICY_ARGS_EXAMPLE = {
    name: POLICY_EXAMPLE[name]
    for name in (
        "name",
        "process_key",
        "category",
        "priority",
        "response_minutes",
        "resolution_minutes",
        "response_event",
        "calendar_id",
        "pause_on",
        "escalation_levels",
        "reminder_percent",
    )
}

# ---------------------------------------------------------------- parts


def _text(max_length: int = 100, **kwargs) -> fields.String:
    return fields.String(validate=[validate.Length(max=max_length), printable], **kwargs)


def _whole(**kwargs) -> fields.Integer:
    return fields.Integer(strict=True, **kwargs)


HOURS = fields.Dict(
    keys=fields.String(metadata={"description": '"0" Monday … "6" Sunday'}),
    values=fields.List(fields.List(fields.String(validate=printable))),
    metadata={
        "description": 'weekday -> [["HH:MM", "HH:MM"], …] in the calendar\'s time zone; '
        "a weekday left out rests; 24:00 ends a day",
        "example": HOURS_EXAMPLE,
    },
)


# ---------------------------------------------------------------- calendars


class CalendarSchema(Schema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()
    time_zone = fields.String()
    working_hours = fields.Dict(
        keys=fields.String(), values=fields.List(fields.List(fields.String()))
    )
    use_official_holidays = fields.Boolean()
    is_24x7 = fields.Boolean()
    uncovered_years = fields.List(
        fields.Integer(),
        metadata={
            "description": "years the calendar is used for (this year, the next one from "
            "October, and those of its running SLA clocks) without official holiday data: "
            "deadlines there cannot be computed until the holidays are entered or imported"
        },
    )
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class CalendarPageSchema(PageSchema):
    items = fields.List(fields.Nested(CalendarSchema))


class CalendarUpdateArgs(Schema):
    code = fields.String(
        validate=printable,
        metadata={"description": "lowercase letters, digits, - and _; at most 40"},
    )
    name = _text()
    time_zone = _text(64, metadata={"example": "Asia/Shanghai"})
    working_hours = HOURS
    use_official_holidays = fields.Boolean(
        metadata={"description": "official holidays rest and adjusted workdays (调休) work"}
    )
    is_24x7 = fields.Boolean(metadata={"description": "every minute counts; hours may be empty"})


class CalendarCreateArgs(CalendarUpdateArgs):
    code = fields.String(
        required=True,
        validate=printable,
        metadata={"description": "lowercase letters, digits, - and _; at most 40"},
    )
    name = _text(required=True)


# ---------------------------------------------------------------- days


class DaySchema(Schema):
    id = fields.Integer()
    date = fields.Date()
    kind = fields.String(metadata={"description": "holiday | workday (调休上班) | closure"})
    name = fields.String()
    scope = fields.Function(
        lambda day: "official" if day.calendar_id is None else "calendar",
        metadata={
            "type": "string",
            "description": "official: the table every calendar following the official "
            "holidays shares; calendar: this calendar's own closure",
        },
    )
    calendar_id = fields.Integer(allow_none=True)


class DayPageSchema(PageSchema):
    items = fields.List(fields.Nested(DaySchema))


class DayListArgs(PageArgs):
    year = fields.Integer(validate=validate.Range(min=1900, max=2200), metadata={"example": 2027})


class DayArgs(Schema):
    date = fields.String(
        required=True,
        validate=printable,
        metadata={"format": "date", "description": "YYYY-MM-DD", "example": "2027-02-06"},
    )
    kind = fields.String(
        required=True,
        validate=printable,
        metadata={"enum": list(DAY_KINDS), "description": "holiday | workday | closure"},
    )
    name = _text(load_default="", metadata={"example": "春节"})


class ImportFilesSchema(Schema):
    file = fields.Raw(
        metadata={
            "type": "string",
            "format": "binary",
            "description": 'CSV, one "date,kind,name" a line, UTF-8 or GBK',
        }
    )


class ImportResultSchema(Schema):
    imported = fields.Integer()
    days = fields.List(fields.Nested(DaySchema))
    uncovered_years = fields.List(fields.Integer())


# ---------------------------------------------------------------- policies


class LevelSchema(Schema):
    percent = _whole(
        required=True, metadata={"description": "of the target used, ascending, up to 1000"}
    )
    notify = fields.List(
        fields.String(validate=printable),
        required=True,
        metadata={
            "description": f"{', '.join(NOTIFY_TARGETS)} (the dispatchers), or user:<username>"
        },
    )


class CalendarRefSchema(Schema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()


class PolicySchema(Schema):
    id = fields.Integer()
    name = fields.String()
    position = fields.Integer(metadata={"description": "policies are tried in this order"})
    process_key = fields.String(allow_none=True, metadata={"description": "work order type"})
    category = fields.String(allow_none=True)
    priority = fields.String(allow_none=True)
    department_code = fields.String(
        allow_none=True, metadata={"description": "matches its sub-departments too"}
    )
    response_minutes = fields.Integer(metadata={"description": "working minutes"})
    resolution_minutes = fields.Integer(metadata={"description": "working minutes"})
    response_event = fields.String(metadata={"description": " | ".join(RESPONSE_EVENTS)})
    calendar_id = fields.Integer()
    calendar = fields.Nested(CalendarRefSchema)
    pause_on = fields.List(fields.String())
    escalation_levels = fields.List(fields.Nested(LevelSchema))
    reminder_percent = fields.Integer(metadata={"description": "超时提醒阈值, percent"})
    active = fields.Boolean()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class PolicyPageSchema(PageSchema):
    items = fields.List(fields.Nested(PolicySchema))


def _match_field(description: str, max_length: int = 100) -> fields.String:
    return _text(max_length, allow_none=True, metadata={"description": description})


class PolicyUpdateArgs(Schema):
    name = _text()
    process_key = _match_field("work order type (process key); empty or null: any")
    category = _match_field("empty or null: any", max_length=40)
    priority = _match_field(f"{', '.join(PRIORITIES)}; empty or null: any", max_length=4)
    department_code = _match_field(
        "a department (and those below it); empty or null: any", max_length=50
    )
    response_minutes = _whole(metadata={"description": f"working minutes, 1 to {MAX_MINUTES}"})
    resolution_minutes = _whole(metadata={"description": f"working minutes, 1 to {MAX_MINUTES}"})
    response_event = fields.String(
        validate=printable,
        metadata={"description": f"what stops the response clock: {' | '.join(RESPONSE_EVENTS)}"},
    )
    calendar_id = _whole()
    pause_on = fields.List(
        _text(),
        metadata={"description": "ticket statuses and open task ids or names that pause"},
    )
    escalation_levels = fields.List(fields.Nested(LevelSchema))
    reminder_percent = _whole(
        metadata={"description": "超时提醒阈值: percent of the target, 1–100"}
    )
    active = fields.Boolean()
    position = _whole(metadata={"description": "place in the order; leave out to keep it"})


class PolicyCreateArgs(PolicyUpdateArgs):
    name = _text(required=True)
    response_minutes = _whole(
        required=True, metadata={"description": f"working minutes, 1 to {MAX_MINUTES}"}
    )
    resolution_minutes = _whole(
        required=True, metadata={"description": f"working minutes, 1 to {MAX_MINUTES}"}
    )
    calendar_id = _whole(required=True)
    position = _whole(metadata={"description": "place in the order; leave out to come last"})


class OrderArgs(Schema):
    policy_ids = fields.List(
        _whole(),
        required=True,
        metadata={"description": "every policy's id exactly once, the first tried first"},
    )


class MatchArgs(Schema):
    process_key = _text(metadata={"example": "equipment_repair"})
    category = _text(metadata={"example": "facilities"})
    priority = _text(metadata={"example": "P1"})
    department = _text(metadata={"description": "department code", "example": "hq"})


class MatchSchema(Schema):
    policy = fields.Nested(
        PolicySchema, allow_none=True, metadata={"description": "null: no active policy matches"}
    )
