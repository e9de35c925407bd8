"""/api/v1/audit: reading the audit trail (admins). Nothing here changes or deletes a row."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.api import Blueprint, PageArgs, PageSchema, paginate, problems
from app.audit.models import AuditEntry
from app.audit.service import SOURCES, entries_query
from app.auth.access import roles_required
from app.auth.schemas import printable
from app.errors import NotFound
from app.extensions import db

# A time given without an offset is read as the company's local time.
LOCAL = ZoneInfo("Asia/Shanghai")
# Far enough apart for any real query, near enough that converting to UTC cannot overflow.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)
MAX_ID = 2**63 - 1  # a larger id names nothing and must not reach the database driver
ENTRY_ID = [{"in": "path", "name": "entry_id", "example": 412}]

audit_blp = Blueprint(
    "audit", __name__, url_prefix="/api/v1/audit", description="审计日志 / audit trail"
)


def _time(description: str, **kwargs) -> fields.AwareDateTime:
    return fields.AwareDateTime(
        default_timezone=LOCAL,
        validate=validate.Range(min=EARLIEST, max=LATEST),
        metadata={"description": description},
        **kwargs,
    )


def _filter(description: str, example: str, max_length: int = 100) -> fields.String:
    return fields.String(
        validate=[validate.Length(min=1, max=max_length), printable],
        metadata={"description": description, "example": example},
    )


class AuditListArgs(PageArgs):
    action = _filter(
        "an action, or its beginning ending in a dot (`user.` for every account change)",
        "user.role_change",
        60,
    )
    actor = _filter("username of whoever acted", "admin")
    object_type = _filter("user, group, department, skill, api_token, ticket…", "user", 40)
    object_id = _filter("the object's id or code (a user's username)", "liqiang", 64)
    source = fields.String(
        validate=validate.OneOf(SOURCES),
        metadata={"description": "page, api (personal token), api_token (a system), job, cli"},
    )
    since = _time(
        "from this time on (inclusive; ISO 8601, without offset: Asia/Shanghai)", data_key="from"
    )
    until = _time("before this time (exclusive)", data_key="to")

    @validates_schema
    def _ordered(self, data: dict, **_kwargs) -> None:
        if data.get("since") and data.get("until") and data["since"] >= data["until"]:
            raise ValidationError(
                "`from` must be earlier than `to` / `from` 应早于 `to`", field_name="to"
            )


class AuditEntrySchema(Schema):
    id = fields.Integer()
    at = fields.DateTime()
    actor = fields.String(allow_none=True)
    source = fields.String(metadata={"description": "page, api, api_token, job or cli"})
    action = fields.String()
    object_type = fields.String(allow_none=True)
    object_id = fields.String(allow_none=True)
    before = fields.Dict(allow_none=True)
    after = fields.Dict(allow_none=True)
    remote_addr = fields.String(allow_none=True)


class AuditPageSchema(PageSchema):
    items = fields.List(fields.Nested(AuditEntrySchema))


_ENTRY_EXAMPLE = {
    "id": 412,
    "at": "2026-11-26T03:15:00+00:00",
    "actor": "admin",
    "source": "api",
    "action": "user.role_change",
    "object_type": "user",
    "object_id": "liuyang",
    "before": {"role": "handler"},
    "after": {"role": "dispatcher"},
    "remote_addr": "10.0.8.21",
}


@audit_blp.route("", methods=["GET"])
@roles_required("admin")
@audit_blp.arguments(AuditListArgs, location="query")
@audit_blp.response(
    200,
    AuditPageSchema,
    example={"items": [_ENTRY_EXAMPLE], "total": 1, "page": 1, "per_page": 20},
)
@problems(audit_blp, 400, 401, 403)
def list_entries(args):
    """The audit trail, newest first, filtered by action, actor, object, source and time."""
    query = entries_query(
        action=args.get("action"),
        actor=args.get("actor"),
        object_type=args.get("object_type"),
        object_id=args.get("object_id"),
        source=args.get("source"),
        since=args.get("since"),
        until=args.get("until"),
    )
    return paginate(db.session, query, args["page"], args["per_page"])


@audit_blp.route("/<int:entry_id>", methods=["GET"], parameters=ENTRY_ID)
@roles_required("admin")
@audit_blp.response(200, AuditEntrySchema, example=_ENTRY_EXAMPLE)
@problems(audit_blp, 401, 403, 404)
def get_entry(entry_id: int):
    """One audit row."""
    entry = db.session.get(AuditEntry, entry_id) if entry_id <= MAX_ID else None
    if entry is None:
        raise NotFound(f"审计记录 {entry_id} 不存在", f"audit entry {entry_id} not found")
    return entry
