"""Appending to the audit trail from requests, jobs and the shell alike."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from flask import g, has_app_context, has_request_context, request
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from app.audit.models import AuditEntry

SOURCES = ("page", "api", "api_token", "job", "cli")


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


def entries_query(
    *,
    action: str | None = None,
    actor: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    source: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Select:
    """Audit rows matching every filter given, newest first. ``since`` is inclusive,
    ``until`` exclusive. An ``action`` ending in ``.`` matches the actions it begins
    (``user.`` for every change of an account)."""
    query = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    if action:
        if action.endswith("."):
            query = query.where(AuditEntry.action.startswith(action, autoescape=True))
        else:
            query = query.where(AuditEntry.action == action)
    for column, value in (
        (AuditEntry.actor, actor),
        (AuditEntry.object_type, object_type),
        (AuditEntry.object_id, object_id),
        (AuditEntry.source, source),
    ):
        if value:
            query = query.where(column == value)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if until is not None:
        query = query.where(AuditEntry.at < until)
    return query


def record_changes(
    *,
    db_session: Session,
    action: str,
    object_type: str,
    object_id: object,
    before: dict,
    after: dict,
) -> AuditEntry | None:
    """One audit row with the keys whose values differ; none when nothing changed."""
    old, new = changes(before, after)
    if not new:
        return None
    return record(
        db_session=db_session,
        action=action,
        object_type=object_type,
        object_id=object_id,
        before=old,
        after=new,
    )


def changes(before: dict, after: dict) -> tuple[dict, dict]:
    """Only the keys whose values differ, for the before/after of an update."""
    keys = [key for key in after if before.get(key) != after.get(key)]
    return {key: before.get(key) for key in keys}, {key: after[key] for key in keys}


@contextmanager
def acting_as(source: str, actor: str | None = None) -> Iterator[None]:
    """Rows recorded inside the block name this source and actor: for the shell ("cli"),
    where no request says who acts. Needs an app context."""
    saved = g.get("audit_acting_as")
    g.audit_acting_as = (source, actor)
    try:
        yield
    finally:
        g.audit_acting_as = saved


def _acting_as() -> tuple[str, str | None] | None:
    return g.get("audit_acting_as") if has_app_context() else None


def current_actor() -> str | None:
    acting = _acting_as()
    if acting is not None:
        return acting[1]
    if not has_request_context():
        return None
    from flask_login import current_user

    return current_user.username if current_user.is_authenticated else None


def current_source() -> str:
    acting = _acting_as()
    if acting is not None:
        return acting[0]
    if not has_request_context():
        return "job"
    return g.get("auth_source", "page")


def _json_safe(value: dict | None) -> dict | None:
    if value is None:
        return None
    return json.loads(json.dumps(value, default=str))
