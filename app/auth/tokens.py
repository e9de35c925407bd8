"""Bearer tokens: personal ones from a password sign-in, and system ones an admin issues."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.service import record
from app.auth.models import ROLES, ApiToken, User
from app.auth.service import find_user, named_department, named_groups
from app.errors import Conflict, InvalidInput, NotFound
from app.timeutil import utcnow

PREFIX = "pd_"
NAME = re.compile(r"[\w.-]{1,80}")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def issue_personal_token(*, db_session: Session, user: User) -> tuple[ApiToken, str]:
    """A token for a person who signed in with a password; it expires."""
    token = _new_token()
    row = ApiToken(
        name=f"{user.username} sign-in",
        token_hash=_digest(token),
        prefix=token[:10],
        kind="personal",
        user_id=user.id,
        user=user,
        created_by=user.username,
        expires_at=utcnow() + timedelta(hours=current_app.config["PERSONAL_TOKEN_HOURS"]),
    )
    db_session.add(row)
    db_session.flush()
    return row, token


def issue_system_token(
    *,
    db_session: Session,
    name: str,
    role: str,
    group_codes: list[str] | None = None,
    department_code: str | None = None,
    issued_by: str,
) -> tuple[ApiToken, str]:
    """A token for another system. It acts as its own account `system:<name>` with ``role``,
    in ``group_codes`` and ``department_code`` (a dispatcher system sees that subtree)."""
    if not NAME.fullmatch(name or ""):
        raise InvalidInput(
            f"令牌名称 {name} 无效：只能包含字母、数字、汉字和 . _ -，最多 80 个字符",
            f"token name {name} is not valid: use letters, digits, . _ - (80 at most)",
        )
    if role not in ROLES:
        raise InvalidInput(
            f"角色 {role} 不存在（可选：{', '.join(ROLES)}）",
            f"role {role} does not exist (choose from {', '.join(ROLES)})",
        )
    username = f"system:{name}"
    department = named_department(db_session=db_session, code=department_code)
    if find_user(db_session=db_session, username=username) is not None:
        raise Conflict(f"令牌名称 {name} 已被使用", f"token name {name} is already taken")
    account = User(
        username=username,
        display_name=name,
        password_hash="!",  # no password: a system signs in only with its token
        role=role,
        kind="system",
        department=department,
        groups=named_groups(db_session=db_session, codes=group_codes or []),
    )
    db_session.add(account)
    db_session.flush()
    token = _new_token()
    row = ApiToken(
        name=name,
        token_hash=_digest(token),
        prefix=token[:10],
        kind="system",
        user_id=account.id,
        user=account,
        created_by=issued_by,
    )
    db_session.add(row)
    db_session.flush()
    record(
        db_session=db_session,
        action="token.issue",
        object_type="api_token",
        object_id=row.id,
        after={
            "name": name,
            "role": role,
            "groups": sorted(g.code for g in account.groups),
            "department": department_code,
            "prefix": row.prefix,
        },
    )
    return row, token


def revoke_token(*, db_session: Session, token_id: int) -> ApiToken:
    row = db_session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(f"令牌 {token_id} 不存在", f"token {token_id} not found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        if row.kind == "system":
            row.user.is_active_account = False
        record(
            db_session=db_session,
            action="token.revoke",
            object_type="api_token",
            object_id=row.id,
            before={"revoked_at": None},
            after={"revoked_at": row.revoked_at},
        )
    return row


def revoke_personal_tokens(*, db_session: Session, user: User) -> list[ApiToken]:
    """Sign ``user`` out everywhere (after an admin sets a new password for them)."""
    rows = db_session.scalars(
        select(ApiToken).where(
            ApiToken.user_id == user.id,
            ApiToken.kind == "personal",
            ApiToken.revoked_at.is_(None),
        )
    ).all()
    return [revoke_token(db_session=db_session, token_id=row.id) for row in rows]


def token_id_for(*, db_session: Session, token: str) -> int | None:
    """The id of the stored token ``token`` (valid or not), without touching it."""
    return db_session.scalar(select(ApiToken.id).where(ApiToken.token_hash == _digest(token)))


def user_for_token(*, db_session: Session, token: str) -> tuple[User, ApiToken] | None:
    """The account a bearer token acts as, if the token is valid now."""
    row = db_session.execute(
        select(ApiToken).where(ApiToken.token_hash == _digest(token))
    ).scalar_one_or_none()
    now = utcnow()
    if row is None or row.revoked_at is not None or not row.user.is_active:
        return None
    if row.expires_at is not None and row.expires_at <= now:
        return None
    # Remember use coarsely: a write on every request would serialize readers on SQLite.
    # Committed here, before the request does anything (a request that only reads never
    # commits); skipped if the session already holds changes, which are not ours to commit.
    stale = row.last_used_at is None or now - row.last_used_at > timedelta(minutes=10)
    if stale and not (db_session.new or db_session.dirty or db_session.deleted):
        row.last_used_at = now
        db_session.commit()
    return row.user, row
