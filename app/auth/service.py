"""The organisation: accounts, groups, departments and skills. Every change is audited."""

from __future__ import annotations

import re
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlalchemy import ColumnElement, and_, func, select, true
from sqlalchemy.orm import Session

from app.audit.service import record, record_changes
from app.auth.models import ROLES, Department, Group, LoginAttempt, Skill, User, UserSkill
from app.errors import Conflict, InvalidInput, NotFound, PaidanError
from app.timeutil import utcnow

# No ":" in a person's name: "system:<name>" is the account of an API token. At most 64
# characters: the audit trail names a user by username in its 64-character object_id.
USERNAME = re.compile(r"[\w.@-]{1,64}")
# Codes of groups, departments and skills are referenced by diagrams and other systems.
CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,49}")
LEVELS = range(1, 6)  # skill level: 1 novice .. 5 expert
PROFILE_FIELDS = ("display_name", "email", "phone")
MIN_PASSWORD = 8


# ---------------------------------------------------------------- users


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
    department_code: str | None = None,
    skills: dict[str, int] | None = None,
) -> User:
    """A person's account, with its groups, department and skills ({code: level})."""
    username = (username or "").strip()
    if not username:
        raise InvalidInput("用户名不能为空", "username must not be empty")
    if not USERNAME.fullmatch(username):
        raise InvalidInput(
            f"用户名 {username} 无效：只能包含字母、数字、汉字和 . _ @ -，最多 64 个字符",
            f"username {username} is not valid: use letters, digits, . _ @ - (64 at most)",
        )
    _check_role(role)
    _check_password(password)
    if find_user(db_session=db_session, username=username) is not None:
        raise Conflict(f"用户 {username} 已存在", f"user {username} already exists")
    user = User(
        username=username,
        display_name=(display_name or "").strip() or username,
        password_hash=hash_password(password),
        role=role,
        email=email or None,
        phone=phone or None,
        groups=named_groups(db_session=db_session, codes=group_codes or []),
        department=named_department(db_session=db_session, code=department_code),
    )
    db_session.add(user)
    db_session.flush()
    _replace_skills(db_session, user, skills or {})
    db_session.flush()
    record(
        db_session=db_session,
        action="user.create",
        object_type="user",
        object_id=user.username,
        after=user_snapshot(user),
    )
    return user


def user_snapshot(user: User) -> dict:
    """What the audit trail keeps of an account (never its password hash)."""
    return {
        "username": user.username,
        "display_name": user.display_name,
        "email": user.email,
        "phone": user.phone,
        "role": user.role,
        "kind": user.kind,
        "active": user.is_active_account,
        "department": user.department.code if user.department else None,
        "groups": sorted(g.code for g in user.groups),
        "skills": _skill_levels(user),
    }


def get_user(*, db_session: Session, user_id: int) -> User:
    user = db_session.get(User, user_id)
    if user is None:
        raise NotFound(f"用户 {user_id} 不存在", f"user {user_id} not found")
    return user


def find_user(*, db_session: Session, username: str) -> User | None:
    return db_session.execute(select(User).where(User.username == username)).scalar_one_or_none()


def visible_users(viewer: User) -> ColumnElement[bool]:
    """SQL condition on User: the accounts ``viewer`` may look up.

    Admins see every account; dispatchers, who assign work, the active people; everybody
    else only themselves.
    """
    if viewer.role == "admin":
        return true()
    if viewer.role == "dispatcher":
        return and_(User.kind == "person", User.is_active_account)
    return User.id == viewer.id


def update_user(
    *, db_session: Session, user: User, acting_user: User | None = None, **updates: object
) -> User:
    """Change an account; each aspect changed (profile, role, department, groups, skills) is
    one audit row with its before and after.

    ``updates`` holds only what changes: display_name, email, phone, role, department (a
    code, or None for none), groups (codes), skills ({code: level}).
    """
    unknown = set(updates) - {*PROFILE_FIELDS, "role", "department", "groups", "skills"}
    if unknown:
        raise InvalidInput(
            f"不能修改用户的 {', '.join(sorted(unknown))}",
            f"{', '.join(sorted(unknown))} of a user cannot be changed",
        )
    profile = {key: updates[key] or None for key in PROFILE_FIELDS if key in updates}
    if "display_name" in profile:
        profile["display_name"] = (profile["display_name"] or "").strip() or user.username
    if profile:
        before = {key: getattr(user, key) for key in profile}
        for key, value in profile.items():
            setattr(user, key, value)
        _audit_change(db_session, user, "user.update", before, profile)
    if "role" in updates and updates["role"] != user.role:
        role = str(updates["role"])
        _check_role(role)
        if user.role == "admin":
            _keep_an_admin(db_session, user, acting_user, "角色", "role")
        before = {"role": user.role}
        user.role = role
        _audit_change(db_session, user, "user.role_change", before, {"role": role})
    if "department" in updates:
        department = named_department(db_session=db_session, code=updates["department"])
        before = {"department": user.department.code if user.department else None}
        user.department = department
        after = {"department": department.code if department else None}
        _audit_change(db_session, user, "user.department_change", before, after)
    if "groups" in updates:
        groups = named_groups(db_session=db_session, codes=list(updates["groups"] or []))
        before = {"groups": sorted(g.code for g in user.groups)}
        user.groups = groups
        after = {"groups": sorted(g.code for g in groups)}
        _audit_change(db_session, user, "user.groups_change", before, after)
    if "skills" in updates:
        before = {"skills": _skill_levels(user)}
        _replace_skills(db_session, user, dict(updates["skills"] or {}))
        _audit_change(
            db_session, user, "user.skills_change", before, {"skills": _skill_levels(user)}
        )
    db_session.flush()
    return user


def deactivate_user(*, db_session: Session, user: User, acting_user: User | None = None) -> User:
    """Accounts are never deleted (the trail names them); a deactivated one cannot sign in,
    and its tokens stop working."""
    if user.is_active_account:
        if user.role == "admin":
            _keep_an_admin(db_session, user, acting_user, "账号状态", "account")
        user.is_active_account = False
        _audit_change(
            db_session, user, "user.deactivate", {"active": True}, {"active": False}, force=True
        )
    return user


def activate_user(*, db_session: Session, user: User) -> User:
    if not user.is_active_account:
        user.is_active_account = True
        _audit_change(
            db_session, user, "user.activate", {"active": False}, {"active": True}, force=True
        )
    return user


def set_password(
    *, db_session: Session, user: User, password: str, acting_user: User | None = None
) -> User:
    """An admin sets a new password for someone (forgotten password)."""
    if acting_user is not None and acting_user.id == user.id:
        raise Conflict(
            "不能在这里重置自己的密码，请使用 /api/v1/users/me/password 并提供旧密码",
            "you cannot reset your own password here; use /api/v1/users/me/password with the old one",
        )
    _check_person(user)
    _check_password(password)
    user.password_hash = hash_password(password)
    record(
        db_session=db_session,
        action="user.password_reset",
        object_type="user",
        object_id=user.username,
    )
    return user


def change_own_password(
    *,
    db_session: Session,
    user: User,
    old_password: str,
    new_password: str,
    remote_addr: str | None = None,
) -> User:
    """A person changes their password with the old one. The old one is checked like a
    sign-in: failures count towards the same lock, so a stolen token cannot guess it."""
    _check_person(user)
    _check_password(new_password)
    if (
        authenticate(
            db_session=db_session,
            username=user.username,
            password=old_password,
            remote_addr=remote_addr,
        )
        is None
    ):
        raise InvalidInput(
            "旧密码不正确，请重新输入 old_password",
            "the old password is wrong; send the current one as old_password",
            errors={"json": {"old_password": ["wrong password"]}},
        )
    user.password_hash = hash_password(new_password)
    record(
        db_session=db_session,
        action="user.password_change",
        object_type="user",
        object_id=user.username,
    )
    return user


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise InvalidInput(
            f"角色 {role} 不存在（可选：{', '.join(ROLES)}）",
            f"role {role} does not exist (choose from {', '.join(ROLES)})",
        )


def _check_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD:
        raise InvalidInput(
            f"密码至少 {MIN_PASSWORD} 个字符",
            f"the password needs at least {MIN_PASSWORD} characters",
        )


def _check_person(user: User) -> None:
    if user.kind != "person":
        raise InvalidInput(
            f"{user.username} 是系统账号，没有密码，只能用它的 API 令牌",
            f"{user.username} is a system account: it has no password, only its API token",
        )


def _keep_an_admin(
    db_session: Session, user: User, acting_user: User | None, zh_what: str, en_what: str
) -> None:
    """Nobody locks themselves out, and one active admin always remains."""
    if acting_user is not None and acting_user.id == user.id:
        raise Conflict(
            f"不能修改自己的{zh_what}：请让另一位管理员操作",
            f"you cannot change your own {en_what}; ask another admin",
        )
    others = db_session.scalar(
        select(func.count())
        .select_from(User)
        .where(
            User.role == "admin",
            User.kind == "person",
            User.is_active_account,
            User.id != user.id,
        )
    )
    if not others:
        raise Conflict(
            f"{user.username} 是最后一位管理员：请先任命另一位管理员",
            f"{user.username} is the last admin; make someone else admin first",
        )


def _audit_change(
    db_session: Session,
    user: User,
    action: str,
    before: dict,
    after: dict,
    *,
    force: bool = False,
) -> None:
    """One audit row for an aspect of ``user`` that changed; nothing when nothing did
    (``force``: always, e.g. a password reset, whose values are never shown)."""
    audit = record if force else record_changes
    audit(
        db_session=db_session,
        action=action,
        object_type="user",
        object_id=user.username,
        before=before,
        after=after,
    )


def _skill_levels(user: User) -> dict[str, int]:
    return {entry.skill.code: entry.level for entry in sorted(user.skills, key=_skill_code)}


def _skill_code(entry: UserSkill) -> str:
    return entry.skill.code


def _replace_skills(db_session: Session, user: User, levels: dict[str, int]) -> None:
    """Set the user's skills to exactly ``levels``, updating rows in place (one row per skill)."""
    for code, level in levels.items():
        if level not in LEVELS:
            raise InvalidInput(
                f"技能 {code} 的等级 {level} 无效：应为 1（入门）到 5（专家）",
                f"level {level} of skill {code} is not valid: use 1 (novice) to 5 (expert)",
            )
    skills = {code: _named(db_session, Skill, code, "技能", "skill") for code in levels}
    held = {entry.skill.code: entry for entry in user.skills}
    for code, entry in held.items():
        if code not in levels:
            user.skills.remove(entry)
    for code, level in levels.items():
        if code in held:
            held[code].level = level
        else:
            user.skills.append(UserSkill(skill_id=skills[code].id, skill=skills[code], level=level))


def named_groups(*, db_session: Session, codes: list[str]) -> list[Group]:
    """The groups a request names by code, each once."""
    return [_named(db_session, Group, code, "组", "group") for code in dict.fromkeys(codes)]


def named_department(*, db_session: Session, code: str | None) -> Department | None:
    """The department a request names by code; None for none."""
    return None if code is None else _named(db_session, Department, str(code), "部门", "department")


def _named(db_session: Session, model, code: str, zh_kind: str, en_kind: str):
    """A group, department or skill a request refers to by code: a wrong code is invalid input
    (400), not a missing resource, since the address of the request itself exists."""
    found = db_session.scalar(select(model).where(model.code == code))
    if found is None:
        raise InvalidInput(
            f"{zh_kind} {code} 不存在：请填写已有{zh_kind}的代码",
            f"{en_kind} {code} does not exist; give the code of an existing {en_kind}",
        )
    return found


# ---------------------------------------------------------------- passwords and sign-in


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
            headers={"Retry-After": str(config["LOGIN_WINDOW_SECONDS"])},
        )
    user = find_user(db_session=db_session, username=username)
    ok = user is not None and user.is_active and user.kind == "person"
    if ok:
        try:
            _hasher().verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            ok = False
    db_session.add(LoginAttempt(username=username, remote_addr=remote_addr, success=ok))
    record(
        db_session=db_session,
        action="login.success" if ok else "login.failure",
        object_type="user",
        object_id=username,
        actor=username,
    )
    db_session.commit()
    return user if ok else None
