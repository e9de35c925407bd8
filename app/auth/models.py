"""Users and groups (roles are a single name per user until the access-control issue)."""

from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import Column, ForeignKey, String, Table
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


class User(UserMixin, db.Model):
    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(40))
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(20))
    is_active_account: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    groups: Mapped[list[Group]] = relationship(
        secondary=group_member, back_populates="members", lazy="selectin"
    )

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
