"""Marshmallow schemas of a work order's SLA ledger, with the example the OpenAPI document shows."""

from __future__ import annotations

from marshmallow import Schema, fields

LEDGER_EXAMPLE = {
    "clocks": [
        {
            "kind": "resolution",
            "policy": {"id": 3, "name": "设施报修 P2"},
            "calendar_id": 1,
            "state": "running",
            "paused": False,
            "started_at": "2026-11-26T01:00:00+00:00",
            "target_minutes": 480,
            "deadline": "2026-11-27T05:00:00+00:00",
            "deadline_unknown": False,
            "missing_holiday_year": None,
            "stopped_at": None,
            "breached": False,
            "breached_at": None,
            "elapsed_minutes": 150.0,
            "paused_minutes": 60.0,
            "remaining_minutes": 330.0,
            "percent_used": 31.2,
            "intervals": [
                {
                    "state": "running",
                    "starts_at": "2026-11-26T01:00:00+00:00",
                    "ends_at": "2026-11-26T03:00:00+00:00",
                    "reason": None,
                    "working_minutes": 120.0,
                },
                {
                    "state": "paused",
                    "starts_at": "2026-11-26T03:00:00+00:00",
                    "ends_at": "2026-11-26T04:00:00+00:00",
                    "reason": "备件申领",
                    "working_minutes": 60.0,
                },
            ],
        }
    ]
}


class IntervalSchema(Schema):
    state = fields.String(metadata={"description": "running | paused"})
    starts_at = fields.String()
    ends_at = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    working_minutes = fields.Float(
        allow_none=True, metadata={"description": "null while a year it spans has no holiday data"}
    )


class PolicyRefSchema(Schema):
    id = fields.Integer()
    name = fields.String()


class ClockSchema(Schema):
    kind = fields.String(metadata={"description": "response | resolution"})
    policy = fields.Nested(PolicyRefSchema, allow_none=True)
    calendar_id = fields.Integer()
    state = fields.String(metadata={"description": "running | paused | stopped"})
    paused = fields.Boolean(metadata={"description": "state is paused: the deadline is on hold"})
    started_at = fields.String()
    target_minutes = fields.Integer(metadata={"description": "working minutes"})
    deadline = fields.String(
        allow_none=True,
        metadata={
            "description": "while paused: the deadline if work resumed now; null when unknown"
        },
    )
    deadline_unknown = fields.Boolean(
        metadata={
            "description": "the deadline falls in a year without official holiday data "
            "(截止时间未知): it is computed when an admin enters that year's days, and the "
            "clock does not escalate meanwhile"
        }
    )
    missing_holiday_year = fields.Integer(
        allow_none=True,
        metadata={"description": "the year without holiday data that the clock reaches"},
    )
    stopped_at = fields.String(allow_none=True)
    breached = fields.Boolean()
    breached_at = fields.String(allow_none=True)
    elapsed_minutes = fields.Float(allow_none=True)
    paused_minutes = fields.Float(allow_none=True)
    remaining_minutes = fields.Float(allow_none=True)
    percent_used = fields.Float(allow_none=True)
    intervals = fields.List(fields.Nested(IntervalSchema))


class LedgerSchema(Schema):
    clocks = fields.List(fields.Nested(ClockSchema))
