"""Housekeeping: rows that only matter for a while (replay answers, expired sign-in tokens,
old sign-in attempts) are removed once their time is over. The audit trail is never touched."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from app.auth.models import ApiToken, LoginAttempt
from app.integrations.models import IdempotencyRecord
from app.timeutil import utcnow


@dataclass
class Purged:
    idempotency_records: int
    tokens: int
    login_attempts: int


def purge(*, db_session: Session, config, now: datetime | None = None) -> Purged:
    """Delete what has outlived its use; the caller commits.

    Only personal tokens that expired long ago go: a system token stays after revocation,
    because its account and the audit rows that name it do.
    """
    now = now or utcnow()
    idempotency = db_session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.created_at < now - timedelta(hours=config["IDEMPOTENCY_KEEP_HOURS"])
        )
    ).rowcount
    tokens = db_session.execute(
        delete(ApiToken).where(
            ApiToken.kind == "personal",
            ApiToken.expires_at < now - timedelta(days=config["EXPIRED_TOKEN_KEEP_DAYS"]),
        )
    ).rowcount
    attempts = db_session.execute(
        delete(LoginAttempt).where(
            LoginAttempt.at < now - timedelta(days=config["LOGIN_ATTEMPT_KEEP_DAYS"])
        )
    ).rowcount
    return Purged(idempotency, tokens, attempts)
