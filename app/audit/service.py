"""Appending to the audit trail from requests, jobs and the shell alike."""

from __future__ import annotations

import json

from flask import g, has_request_context, request
from sqlalchemy.orm import Session

from app.audit.models import AuditEntry


def record(
    *,
    db_session: Session,
    action: str,
    object_type: str | None = None,
    object_id: object = None,
    before: dict | None = None,
    after: dict | None = None,
    actor: str | None = None,
    source: str | None = None,
) -> AuditEntry:
    """Append one audit row in the caller's transaction (it commits with the change)."""
    actor = actor if actor is not None else current_actor()
    entry = AuditEntry(
        actor=actor,
        source=source or current_source(),
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        before=_json_safe(before),
        after=_json_safe(after),
        remote_addr=request.remote_addr if has_request_context() else None,
    )
    db_session.add(entry)
    return entry


def changes(before: dict, after: dict) -> tuple[dict, dict]:
    """Only the keys whose values differ, for the before/after of an update."""
    keys = [key for key in after if before.get(key) != after.get(key)]
    return {key: before.get(key) for key in keys}, {key: after[key] for key in keys}


def current_actor() -> str | None:
    if not has_request_context():
        return None
    from flask_login import current_user

    return current_user.username if current_user.is_authenticated else None


def current_source() -> str:
    if not has_request_context():
        return "job"
    return g.get("auth_source", "page")


def _json_safe(value: dict | None) -> dict | None:
    if value is None:
        return None
    return json.loads(json.dumps(value, default=str))
