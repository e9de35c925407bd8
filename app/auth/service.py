"""Accounts and groups: create, find, check passwords."""

from __future__ import annotations

from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.models import ROLES, Group, LoginAttempt, User
from app.errors import Conflict, InvalidInput, NotFound, PaidanError
from app.timeutil import utcnow


def create_user(
    *,
    db_session: Session,
    username: str,
    password: str,
    role: str,
    display_name: str | None = None,
    group_codes: list[str] | None = None,
    email: str | None = None,
    phone: str | None = None,
) -> User:
    username = (username or "").strip()
    if not username:
        raise InvalidInput("用户名不能为空", "username must not be empty")
    if role not in ROLES:
        raise InvalidInput(
            f"角色 {role} 不存在（可选：{', '.join(ROLES)}）",
            f"role {role} does not exist (choose from {', '.join(ROLES)})",
        )
    if len(password or "") < 8:
        raise InvalidInput("密码至少 8 个字符", "the password needs at least 8 characters")
    if find_user(db_session=db_session, username=username) is not None:
        raise Conflict(f"用户 {username} 已存在", f"user {username} already exists")
    groups = [get_group(db_session=db_session, code=code) for code in group_codes or []]
    user = User(
        username=username,
        display_name=display_name or username,
        password_hash=hash_password(password),
        role=role,
        email=email,
        phone=phone,
        groups=groups,
    )
    db_session.add(user)
    db_session.flush()
    return user


def _hasher() -> PasswordHasher:
    config = current_app.config
    return PasswordHasher(
        time_cost=config["ARGON2_TIME_COST"], memory_cost=config["ARGON2_MEMORY_COST"]
    )


def hash_password(password: str) -> str:
    return _hasher().hash(password)


class TooManyAttempts(PaidanError):
    status = 429
    title = "Too Many Requests"


def authenticate(
    *, db_session: Session, username: str, password: str, remote_addr: str | None = None
) -> User | None:
    """Check a password; failures are recorded and, past the limit, refused for a while.

    The attempt rows are written in their own small transaction so that a failed sign-in is
    remembered even though the request that carried it fails.
    """
    config = current_app.config
    since = utcnow() - timedelta(seconds=config["LOGIN_WINDOW_SECONDS"])
    failures = db_session.scalar(
        select(func.count())
        .select_from(LoginAttempt)
        .where(LoginAttempt.username == username, LoginAttempt.at >= since, ~LoginAttempt.success)
    )
    if failures >= config["LOGIN_MAX_FAILURES"]:
        minutes = config["LOGIN_WINDOW_SECONDS"] // 60
        raise TooManyAttempts(
            f"用户 {username} 登录失败次数过多，请 {minutes} 分钟后再试",
            f"too many failed sign-ins for {username}; try again in {minutes} minutes",
        )
    user = find_user(db_session=db_session, username=username)
    ok = user is not None and user.is_active and user.kind == "person"
    if ok:
        try:
            _hasher().verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            ok = False
    db_session.add(LoginAttempt(username=username, remote_addr=remote_addr, success=ok))
    from app.audit.service import record

    record(
        db_session=db_session,
        action="login.success" if ok else "login.failure",
        object_type="user",
        object_id=username,
        actor=username,
    )
    db_session.commit()
    return user if ok else None


def find_user(*, db_session: Session, username: str) -> User | None:
    return db_session.execute(select(User).where(User.username == username)).scalar_one_or_none()


def create_group(
    *, db_session: Session, code: str, name: str, description: str | None = None
) -> Group:
    if db_session.execute(select(Group).where(Group.code == code)).scalar_one_or_none():
        raise Conflict(f"组 {code} 已存在", f"group {code} already exists")
    group = Group(code=code, name=name, description=description)
    db_session.add(group)
    db_session.flush()
    return group


def get_group(*, db_session: Session, code: str) -> Group:
    group = db_session.execute(select(Group).where(Group.code == code)).scalar_one_or_none()
    if group is None:
        raise NotFound(f"组 {code} 不存在", f"group {code} does not exist")
    return group


def group_lead(*, db_session: Session, code: str) -> str | None:
    """Username of the lead of group ``code``; None when the group has none."""
    return db_session.execute(
        select(User.username).join(Group, Group.lead_id == User.id).where(Group.code == code)
    ).scalar_one_or_none()
