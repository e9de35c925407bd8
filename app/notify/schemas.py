"""Marshmallow schemas of the notification API, with the examples the OpenAPI document shows."""

from __future__ import annotations

from marshmallow import Schema, fields

from app.api import PageArgs, PageSchema

NOTIFICATION_EXAMPLE = {
    "id": 7,
    "kind": "sla_reminder",
    "ticket_id": 42,
    "title_zh": "工单 GD-20261127-0042 即将超时",
    "title_en": "Work order GD-20261127-0042 is nearly due",
    "body_zh": "响应时限还剩 30 分钟（已用 75%）",
    "body_en": "30 minutes left to respond (75% used)",
    "link": "/tickets/42",
    "created_at": "2026-11-27T02:30:00+00:00",
    "read_at": None,
    "read": False,
}


class NotificationSchema(Schema):
    id = fields.Integer()
    kind = fields.String(metadata={"description": "sla_reminder, sla_escalation, …"})
    ticket_id = fields.Integer(allow_none=True)
    title_zh = fields.String()
    title_en = fields.String()
    body_zh = fields.String()
    body_en = fields.String()
    link = fields.String(allow_none=True, metadata={"description": "the page it is about"})
    created_at = fields.DateTime()
    read_at = fields.DateTime(allow_none=True)
    read = fields.Function(lambda notification: notification.read_at is not None)


class NotificationListArgs(PageArgs):
    unread = fields.Boolean(
        load_default=False, metadata={"description": "only the unread ones", "example": True}
    )


class NotificationPageSchema(PageSchema):
    items = fields.List(fields.Nested(NotificationSchema))
    unread = fields.Integer(metadata={"description": "how many of mine are unread"})


class ReadAllSchema(Schema):
    marked = fields.Integer(metadata={"description": "how many were unread until now"})
    unread = fields.Integer()
