"""Marshmallow schemas of the dispatch API, with the examples the OpenAPI document shows."""

from __future__ import annotations

from datetime import UTC

from marshmallow import Schema, fields, validate

from app.api import PageSchema
from app.dispatch.models import MODES
from app.dispatch.settings import CAPACITY_MAX, POOL_WAIT_MAX
from app.workflows.schemas import TASK_EXAMPLE, TaskSchema, multi_line, one_line

REASON_MAX = 500

# ---------------------------------------------------------------- examples

JOB_EXAMPLE = {
    "key": "42",
    "priority": "P2",
    "required_skills": {"network": 2},
    "deadline": "2026-11-26T16:30:00+00:00",
    "lat": 39.9836,
    "lng": 116.3164,
    "device_no": "DEV-BJ-0001",
}
RANKED_EXAMPLE = {
    "username": "sunhao",
    "name": "孙浩",
    "position_source": "live",
    "total": 31.5,
    "parts": {"travel": 12.4, "load": 15.0, "sla_risk": 0.0, "fairness": 4.1, "familiarity": 0.0},
    "travel_minutes": 12.4,
    "eta": "2026-11-26T08:52:24+00:00",
}
EXCLUDED_EXAMPLE = {
    "username": "liqiang",
    "name": "李强",
    "code": "on_leave",
    "zh": "正在休假",
    "en": "on leave",
}
RECOMMENDATION_EXAMPLE = {
    "ticket_id": 42,
    "task": {**TASK_EXAMPLE, "candidate_groups": ["network"]},
    "mode": "dispatcher",
    "job": JOB_EXAMPLE,
    "candidates": 2,
    "eligible": 1,
    "ranked": [RANKED_EXAMPLE],
    "excluded": [EXCLUDED_EXAMPLE],
    "excluded_counts": {"on_leave": 1},
}
DECISION_EXAMPLE = {
    "id": 7,
    "ticket_id": 42,
    "task_id": TASK_EXAMPLE["id"],
    "mode": "dispatcher",
    "chosen": "sunhao",
    "decided_by": "zhangwei",
    "reason": None,
    "created_at": "2026-11-26T08:40:00+00:00",
    "ranking": {
        "ranked": [RANKED_EXAMPLE],
        "excluded": [EXCLUDED_EXAMPLE],
        "eligible": 1,
        "excluded_counts": {"on_leave": 1},
        "candidates": 2,
        "job": JOB_EXAMPLE,
        "mode": "dispatcher",
    },
}
POSITION_EXAMPLE = {
    "lat": 39.9841,
    "lng": 116.3172,
    "accuracy_m": 15.0,
    "source": "live",
    "at": "2026-11-26T08:41:00+00:00",
}
WEIGHTS_EXAMPLE = {
    "travel": 1.0,
    "load": 15.0,
    "sla_risk": 2.0,
    "fairness": 0.1,
    "familiarity": -20.0,
    "sla_margin_minutes": 15.0,
}
CONFIG_EXAMPLE = {
    "group": "network",
    "configured": True,
    "mode": "auto",
    "weights": WEIGHTS_EXAMPLE,
    "pool_wait_minutes": 30,
}
PROFILE_EXAMPLE = {
    "username": "sunhao",
    "name": "孙浩",
    "groups": ["network"],
    "skills": {"network": 3, "pc": 2},
    "home": {"lat": 31.2036, "lng": 121.5873},
    "capacity": 5,
    "position": {"lat": 31.2036, "lng": 121.5873, "source": "home", "at": None},
    "shifts": [{"weekday": 0, "start": "09:00", "end": "18:00"}],
    "leave": [
        {
            "starts_at": "2026-12-01T01:00:00+00:00",
            "ends_at": "2026-12-03T10:00:00+00:00",
            "reason": "年假",
        }
    ],
}

# ---------------------------------------------------------------- parts

_LAT = validate.Range(min=-90, max=90)
_LNG = validate.Range(min=-180, max=180)


class PointSchema(Schema):
    lat = fields.Float(required=True, validate=_LAT, metadata={"example": 31.2036})
    lng = fields.Float(required=True, validate=_LNG, metadata={"example": 121.5873})


class JobSchema(Schema):
    key = fields.String()
    priority = fields.String()
    required_skills = fields.Dict(keys=fields.String(), values=fields.Integer())
    deadline = fields.String(allow_none=True, metadata={"description": "ISO 8601"})
    lat = fields.Float(allow_none=True)
    lng = fields.Float(allow_none=True)
    device_no = fields.String(allow_none=True)


class RankedSchema(Schema):
    username = fields.String()
    name = fields.String()
    position_source = fields.String(metadata={"description": "live | checkin | home | none"})
    total = fields.Float(metadata={"description": "cost in minutes-equivalent; lower is better"})
    parts = fields.Dict(keys=fields.String(), values=fields.Float())
    travel_minutes = fields.Float()
    eta = fields.String(metadata={"description": "estimated arrival, ISO 8601"})


class ExcludedSchema(Schema):
    username = fields.String()
    name = fields.String()
    code = fields.String(
        metadata={
            "description": "skill | off_shift | on_leave | capacity | urgent_job | no_position"
        }
    )
    zh = fields.String()
    en = fields.String()


class RecommendationSchema(Schema):
    ticket_id = fields.Integer()
    task = fields.Nested(TaskSchema, allow_none=True)
    mode = fields.String(metadata={"description": "auto | pool | dispatcher"})
    job = fields.Nested(JobSchema)
    candidates = fields.Integer(metadata={"description": "engineers of the task's groups"})
    eligible = fields.Integer()
    ranked = fields.List(fields.Nested(RankedSchema), metadata={"description": "best first"})
    excluded = fields.List(fields.Nested(ExcludedSchema))
    excluded_counts = fields.Dict(keys=fields.String(), values=fields.Integer())


class DecisionSchema(Schema):
    id = fields.Integer()
    ticket_id = fields.Integer(allow_none=True)
    task_id = fields.String()
    mode = fields.String(metadata={"description": "auto | pool | dispatcher | batch"})
    chosen = fields.String()
    decided_by = fields.String(allow_none=True, metadata={"description": "null: the system"})
    reason = fields.String(allow_none=True)
    created_at = fields.DateTime()
    ranking = fields.Dict(metadata={"description": "the ranking the decision was made from"})


class AssignArgs(Schema):
    username = fields.String(
        required=True,
        validate=[validate.Length(min=1, max=100), one_line],
        metadata={"description": "the engineer"},
    )
    reason = fields.String(
        allow_none=True,
        validate=[validate.Length(max=REASON_MAX), multi_line],
        metadata={"description": "required when the engineer is not the top recommendation"},
    )


class PositionArgs(Schema):
    lat = fields.Float(required=True, validate=_LAT)
    lng = fields.Float(required=True, validate=_LNG)
    accuracy_m = fields.Float(
        allow_none=True, load_default=None, validate=validate.Range(min=0, max=1e6)
    )


class PositionSchema(Schema):
    lat = fields.Float()
    lng = fields.Float()
    accuracy_m = fields.Float(allow_none=True)
    source = fields.String(metadata={"description": "live | checkin | home"})
    at = fields.DateTime(allow_none=True)


class PoolItemSchema(TaskSchema):
    ticket_number = fields.String(allow_none=True)
    title = fields.String()
    priority = fields.String()
    distance_km = fields.Float(allow_none=True, metadata={"description": "from where I am"})


class PoolPageSchema(PageSchema):
    items = fields.List(fields.Nested(PoolItemSchema))


class WeightsSchema(Schema):
    travel = fields.Float(validate=validate.Range(min=0, max=1000))
    load = fields.Float(validate=validate.Range(min=0, max=1000))
    sla_risk = fields.Float(validate=validate.Range(min=0, max=1000))
    fairness = fields.Float(validate=validate.Range(min=0, max=1000))
    familiarity = fields.Float(validate=validate.Range(min=-1000, max=0))
    sla_margin_minutes = fields.Float(validate=validate.Range(min=0, max=POOL_WAIT_MAX))


class ConfigSchema(Schema):
    group = fields.String()
    configured = fields.Boolean(metadata={"description": "false: the defaults apply"})
    mode = fields.String(metadata={"description": "auto | pool | dispatcher"})
    weights = fields.Nested(WeightsSchema)
    pool_wait_minutes = fields.Integer()


class ConfigArgs(Schema):
    mode = fields.String(required=True, validate=validate.OneOf(MODES))
    weights = fields.Nested(WeightsSchema, load_default=dict)
    pool_wait_minutes = fields.Integer(
        load_default=None, validate=validate.Range(min=0, max=POOL_WAIT_MAX)
    )


class ShiftSchema(Schema):
    weekday = fields.Integer(
        required=True,
        validate=validate.Range(min=0, max=6),
        metadata={"description": "0 Monday … 6 Sunday"},
    )
    start = fields.String(
        required=True,
        validate=validate.Regexp(r"^([01]\d|2[0-3]):[0-5]\d$"),
        metadata={"example": "09:00"},
    )
    end = fields.String(
        required=True,
        validate=validate.Regexp(r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$"),
        metadata={"example": "18:00", "description": "at or before start: ends the next day"},
    )


class LeaveSchema(Schema):
    starts_at = fields.AwareDateTime(required=True, default_timezone=UTC)
    ends_at = fields.AwareDateTime(required=True, default_timezone=UTC)
    reason = fields.String(load_default="", validate=[validate.Length(max=200), one_line])


class ProfilePositionSchema(Schema):
    lat = fields.Float()
    lng = fields.Float()
    source = fields.String(metadata={"description": "live | checkin | home"})
    at = fields.DateTime(allow_none=True)


class ProfileSchema(Schema):
    username = fields.String()
    name = fields.String()
    groups = fields.List(fields.String())
    skills = fields.Dict(keys=fields.String(), values=fields.Integer())
    home = fields.Nested(PointSchema, allow_none=True)
    capacity = fields.Integer()
    position = fields.Nested(ProfilePositionSchema, allow_none=True)
    shifts = fields.List(fields.Nested(ShiftSchema))
    leave = fields.List(fields.Nested(LeaveSchema))


class ProfileArgs(Schema):
    home = fields.Nested(PointSchema, allow_none=True)
    capacity = fields.Integer(validate=validate.Range(min=1, max=CAPACITY_MAX))
    shifts = fields.List(fields.Nested(ShiftSchema), validate=validate.Length(max=50))
    leave = fields.List(fields.Nested(LeaveSchema), validate=validate.Length(max=100))
