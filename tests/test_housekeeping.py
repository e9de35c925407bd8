"""Housekeeping removes what has outlived its use, and nothing else."""

from datetime import timedelta

from sqlalchemy import func, select

from app.auth.models import ApiToken, LoginAttempt, User
from app.auth.tokens import issue_personal_token
from app.integrations.models import IdempotencyRecord
from app.jobs.housekeeping import purge
from app.timeutil import utcnow


def count(db_session, model, *where):
    return db_session.scalar(select(func.count()).select_from(model).where(*where))


def test_old_rows_go_and_recent_ones_stay(app, db_session):
    now = utcnow()
    alice = db_session.scalars(select(User).where(User.username == "alice")).one()
    old_token, _ = issue_personal_token(db_session=db_session, user=alice)
    old_token.expires_at = now - timedelta(days=8)
    fresh_token, _ = issue_personal_token(db_session=db_session, user=alice)
    for key, age in (("old", timedelta(hours=49)), ("new", timedelta(hours=1))):
        db_session.add(
            IdempotencyRecord(
                user_id=alice.id,
                key=key,
                method="POST",
                path="/x",
                request_hash="0" * 64,
                status=201,
                body={},
                created_at=now - age,
            )
        )
    db_session.add_all(
        [
            LoginAttempt(username="alice", success=False, at=now - timedelta(days=91)),
            LoginAttempt(username="alice", success=False, at=now - timedelta(days=1)),
        ]
    )
    db_session.commit()
    tokens_before = count(db_session, ApiToken)

    purged = purge(db_session=db_session, config=app.config, now=now)
    db_session.commit()

    assert (purged.idempotency_records, purged.tokens, purged.login_attempts) == (1, 1, 1)
    assert [r.key for r in db_session.scalars(select(IdempotencyRecord))] == ["new"]
    assert count(db_session, ApiToken) == tokens_before - 1
    assert db_session.get(ApiToken, fresh_token.id) is not None
    assert count(db_session, LoginAttempt, LoginAttempt.username == "alice") == 1
