"""Idempotency-Key on writes: the same key and body from the same caller answer the first
result again and do nothing new; the same key with another body is a conflict.

Concurrent duplicates are settled by the database, not by a check in Python: the key's row is
inserted in the work's own transaction before the work. On PostgreSQL a second request with
the key blocks on the unique index (user_id, key) until the first commits, then fails to
insert and replays the stored answer; on SQLite the second waits for the write lock that
every transaction takes (BEGIN IMMEDIATE) and then finds the row. Only successful answers are
kept: a failed request rolls back with its row, so the same key may be sent again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import wraps

from flask import Response, jsonify, make_response, request
from flask_login import current_user
from marshmallow import Schema, fields, validate
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import Conflict
from app.extensions import db
from app.integrations.models import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# Status of a row whose request has not finished; others see it only if a view commits itself.
IN_PROGRESS = 0


class IdempotencyKeyHeader(Schema):
    idempotency_key = fields.String(
        data_key=HEADER,
        validate=[
            validate.Length(min=1, max=200),
            validate.Regexp(
                r"^[\x21-\x7e]+$",
                error="只能包含可见的 ASCII 字符（如 UUID）/ visible ASCII characters only "
                "(a UUID, for example)",
            ),
        ],
        metadata={
            "description": "A key of the caller's choosing (a UUID, say), new for every "
            "operation. The same key with the same body returns the first answer again "
            f"with the header `{REPLAYED_HEADER}: true` and creates nothing; the same key "
            "with another body answers 409. Keys are per caller; only successful answers "
            "are kept.",
            "example": "crm-5f0c6a1e-7d2b-4c1a-9a47-0b6e8f3d2c11",
        },
    )


def idempotent(blueprint) -> Callable:
    """Decorate a write endpoint of ``blueprint`` to honour `Idempotency-Key`.

    Put it right below ``@blueprint.route`` (it must see the finished response) and list 409
    in the endpoint's ``problems(…)``. The view does its work and returns without committing:
    this decorator commits the work together with the stored answer, so a duplicate never
    sees one without the other. (A view that commits itself still does its work once, but a
    duplicate arriving between that commit and the answer's is told to retry: 409.)
    """

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def run(*args, idempotency_key: str | None = None, **kwargs):
            def work() -> Response:
                return make_response(view(*args, **kwargs))

            if idempotency_key is None or not current_user.is_authenticated:
                return _finish(db.session, work, None)
            return _run_once(db.session, idempotency_key, work)

        return blueprint.arguments(IdempotencyKeyHeader, location="headers", as_kwargs=True)(run)

    return decorate


def _run_once(db_session: Session, key: str, work: Callable) -> Response:
    fingerprint = request_hash()
    stored = _find(db_session, current_user.id, key)
    if stored is None:
        claim = IdempotencyRecord(
            user_id=current_user.id,
            key=key,
            method=request.method,
            path=request.path,
            request_hash=fingerprint,
            status=IN_PROGRESS,
        )
        try:
            with db_session.begin_nested():
                db_session.add(claim)
        except IntegrityError:
            # A request with this key committed while this one waited on the unique index.
            stored = _find(db_session, current_user.id, key)
        else:
            return _finish(db_session, work, claim)
    return _replay(stored, key, fingerprint)


def _finish(
    db_session: Session, work: Callable[[], Response], claim: IdempotencyRecord | None
) -> Response:
    try:
        response = work()
    except Exception:
        # Invalid bodies are refused by HTTP exceptions, whose handlers do not roll back:
        # the claim must not outlive the failed request.
        db_session.rollback()
        raise
    if response.status_code >= 400:
        db_session.rollback()
        return response
    if claim is not None:
        claim.status = response.status_code
        claim.body = response.get_json(silent=True)
    db_session.commit()
    return response


def _replay(stored: IdempotencyRecord, key: str, fingerprint: str) -> Response:
    if (stored.method, stored.path) != (request.method, request.path):
        raise Conflict(
            f"{HEADER} {key} 已用于 {stored.method} {stored.path}；每个新操作请使用新的键",
            f"{HEADER} {key} was used for {stored.method} {stored.path}; use a new key for "
            "every new operation",
        )
    if stored.request_hash != fingerprint:
        raise Conflict(
            f"{HEADER} {key} 已用于内容不同的请求；重试请发送相同的内容，新操作请使用新的键",
            f"{HEADER} {key} was used with a different body; send the same body to retry, "
            "or a new key for a new operation",
        )
    if stored.status == IN_PROGRESS:
        raise Conflict(
            f"使用 {HEADER} {key} 的请求仍在处理中，请稍后重试",
            f"the request with {HEADER} {key} is still being processed; retry shortly",
        )
    response = jsonify(stored.body) if stored.body is not None else Response()
    response.status_code = stored.status
    response.headers[REPLAYED_HEADER] = "true"
    return response


def _find(db_session: Session, user_id: int, key: str) -> IdempotencyRecord | None:
    return db_session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key
        )
    )


def request_hash() -> str:
    """SHA-256 of the body; JSON is compared by content, not by spacing or key order."""
    raw = request.get_data(cache=True)
    try:
        canonical = json.dumps(
            json.loads(raw), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    except ValueError:
        canonical = raw
    return hashlib.sha256(canonical).hexdigest()
