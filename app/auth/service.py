"""Accounts and groups: create, find, check passwords."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from app.auth.models import ROLES, Group, User
from app.errors import Conflict, InvalidInput, NotFound


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


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


def authenticate(*, db_session: Session, username: str, password: str) -> User | None:
    user = find_user(db_session=db_session, username=username)
    if user is None or not user.is_active or not check_password_hash(user.password_hash, password):
        return None
    return user


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
