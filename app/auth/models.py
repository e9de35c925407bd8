"""Identities: users, groups, departments (a tree), skills, API tokens, sign-in attempts."""

from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.timeutil import UTCDateTime, utcnow

ROLES = {
    "admin": ("管理员", "administrator"),
    "dispatcher": ("调度员", "dispatcher"),
    "handler": ("工程师", "handler / engineer"),
    "reviewer": ("复核员", "reviewer"),
    "requester": ("报修人", "requester"),
    "finance": ("财务", "finance"),
}

group_member = Table(
    "group_member",
    db.metadata,
    Column("group_id", ForeignKey("user_group.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True),
)


class Department(db.Model):
    """A department (部门); departments form a tree. Dispatchers see their subtree's tickets."""

    __tablename__ = "department"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"), index=True)

    parent: Mapped[Department | None] = relationship(remote_side=[id])


class Skill(db.Model):
    """A skill tag (技能标签) engineers hold at a level."""

    __tablename__ = "skill"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(100))


class UserSkill(db.Model):
    __tablename__ = "user_skill"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True
    )
    skill_id: Mapped[int] = mapped_column(
        ForeignKey("skill.id", ondelete="CASCADE"), primary_key=True
    )
    level: Mapped[int] = mapped_column(Integer, default=1)  # 1 (novice) .. 5 (expert)

    skill: Mapped[Skill] = relationship(lazy="joined")


class User(UserMixin, db.Model):
    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(40))
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(20))
    # "person" signs in; "system" exists for an API token and has no password.
    kind: Mapped[str] = mapped_column(String(10), default="person", server_default="person")
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"), index=True)
    is_active_account: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    groups: Mapped[list[Group]] = relationship(
        secondary=group_member, back_populates="members", lazy="selectin"
    )
    department: Mapped[Department | None] = relationship()
    skills: Mapped[list[UserSkill]] = relationship(cascade="all, delete-orphan")

    @property
    def is_active(self) -> bool:
        return self.is_active_account

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def group_names(self) -> set[str]:
        """Codes and names of the user's groups: a lane may name a group by either."""
        return {g.code for g in self.groups} | {g.name for g in self.groups}


class Group(db.Model):
    __tablename__ = "user_group"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(String(500))
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))

    members: Mapped[list[User]] = relationship(secondary=group_member, back_populates="groups")
    lead: Mapped[User | None] = relationship(foreign_keys=[lead_id])


class ApiToken(db.Model):
    """A bearer token: personal (from /auth/token, expires) or a system's (admin-issued).

    Only the SHA-256 of the token is stored; the token itself is shown once. Tokens are 256
    random bits, so a fast hash is enough (a password hash would only slow every request).
    """

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    kind: Mapped[str] = mapped_column(String(10))  # personal | system
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(lazy="joined")


class LoginAttempt(db.Model):
    """Sign-in attempts, for throttling repeated failures (kept in the database: many nodes)."""

    __tablename__ = "login_attempt"
    __table_args__ = (Index("ix_login_attempt_username_at", "username", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100))
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    success: Mapped[bool]
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
