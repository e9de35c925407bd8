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
            "started_at": "2026-11-26T01:00:00+00:00",
            "target_minutes": 480,
            "deadline": "2026-11-27T05:00:00+00:00",
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
    working_minutes = fields.Float()


class PolicyRefSchema(Schema):
    id = fields.Integer()
    name = fields.String()


class ClockSchema(Schema):
    kind = fields.String(metadata={"description": "response | resolution"})
    policy = fields.Nested(PolicyRefSchema, allow_none=True)
    calendar_id = fields.Integer()
    state = fields.String(metadata={"description": "running | paused | stopped"})
    started_at = fields.String()
    target_minutes = fields.Integer(metadata={"description": "working minutes"})
    deadline = fields.String(
        allow_none=True, metadata={"description": "while paused: the deadline if work resumed now"}
    )
    stopped_at = fields.String(allow_none=True)
    breached = fields.Boolean()
    breached_at = fields.String(allow_none=True)
    elapsed_minutes = fields.Float()
    paused_minutes = fields.Float()
    remaining_minutes = fields.Float()
    percent_used = fields.Float()
    intervals = fields.List(fields.Nested(IntervalSchema))


class LedgerSchema(Schema):
    clocks = fields.List(fields.Nested(ClockSchema))
