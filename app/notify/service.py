"""Notifying people: in-app rows and outbox rows written in the caller's transaction, and
reading and marking one's own notifications.

`notify` never commits: the notifications of a change are kept or lost with the change. A
cause that runs twice (a retried job, an escalation level reached again) passes the same
`dedupe_key` and notifies each person once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from flask import current_app, has_app_context
from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.api import paginate
from app.auth.models import User
from app.errors import InvalidInput, NotFound
from app.notify.models import Notification, OutboxMessage
from app.timeutil import utcnow

DEFAULT_CHANNELS = ("email",)
DEFAULT_BASE_URL = "http://127.0.0.1:5000"
# Both titles fit in one email subject (outbox.subject holds 500 characters).
TITLE_MAX = 240


@dataclass
class Written:
    """What one call of `notify` added (duplicates by dedupe_key are left out)."""

    notifications: list[Notification] = field(default_factory=list)
    outbox: list[OutboxMessage] = field(default_factory=list)


def _setting(name: str, default):
    return current_app.config.get(name, default) if has_app_context() else default


def _insert(db_session: Session, model):
    """INSERT … ON CONFLICT DO NOTHING in the session's dialect: a row that a concurrent
    transaction wrote between our check and our insert is skipped, and the caller's
    transaction goes on (a plain INSERT would abort it on PostgreSQL)."""
    dialect = postgresql if db_session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(model).on_conflict_do_nothing()


def notify(
    db_session: Session,
    *,
    users: Iterable[User],
    kind: str,
    title: tuple[str, str],
    body: tuple[str, str] = ("", ""),
    ticket_id: int | None = None,
    link: str | None = None,
    dedupe_key: str | None = None,
    channels: Sequence[str] | None = None,
) -> Written:
    """Notify each user in the app and on each channel (email only to users with an address;
    other channels get the username as recipient and everything in the payload)."""
    title_zh, title_en = title
    if not title_zh.strip() or not title_en.strip():
        raise InvalidInput(
            "通知需要中英文标题", "a notification needs a title in Chinese and in English"
        )
    body_zh, body_en = body
    if link is None and ticket_id is not None:
        link = f"/tickets/{ticket_id}"
    if channels is None:
        channels = _setting("NOTIFY_CHANNELS", DEFAULT_CHANNELS)
    people = {user.id: user for user in users}
    written = Written()
    if not people:
        return written
    already = set()
    if dedupe_key is not None:
        already = set(
            db_session.scalars(
                select(Notification.user_id).where(
                    Notification.dedupe_key == dedupe_key, Notification.user_id.in_(people)
                )
            )
        )
    now = utcnow()
    texts = {
        "kind": kind,
        "title_zh": title_zh[:TITLE_MAX],
        "title_en": title_en[:TITLE_MAX],
        "body_zh": body_zh,
        "body_en": body_en,
        "link": link,
    }
    notified = []
    for user_id, user in people.items():
        if user_id in already:
            continue
        new_id = db_session.scalar(
            _insert(db_session, Notification)
            .values(
                user_id=user_id,
                ticket_id=ticket_id,
                created_at=now,
                dedupe_key=dedupe_key,
                **texts,
            )
            .returning(Notification.id)
        )
        if new_id is not None:
            notified.append((new_id, user))
    subject, text = compose(texts, _setting("PUBLIC_BASE_URL", DEFAULT_BASE_URL))
    outbox_ids = []
    for new_id, user in notified:
        for channel in channels:
            recipient = user.email if channel == "email" else user.username
            if not recipient:
                continue
            outbox_id = db_session.scalar(
                _insert(db_session, OutboxMessage)
                .values(
                    channel=channel,
                    recipient=recipient,
                    subject=subject,
                    body=text,
                    payload={
                        "notification_id": new_id,
                        "user_id": user.id,
                        "username": user.username,
                        "ticket_id": ticket_id,
                        **texts,
                    },
                    dedupe_key=dedupe_key,
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
                .returning(OutboxMessage.id)
            )
            if outbox_id is not None:
                outbox_ids.append(outbox_id)
    ids = [new_id for new_id, _user in notified]
    written.notifications = _load(db_session, Notification, ids)
    written.outbox = _load(db_session, OutboxMessage, outbox_ids)
    return written


def _load(db_session: Session, model, ids: list[int]) -> list:
    if not ids:
        return []
    return list(db_session.scalars(select(model).where(model.id.in_(ids)).order_by(model.id)))


def compose(texts: dict, base_url: str) -> tuple[str, str]:
    """A message's subject and plain-text body: Chinese first, English beside it."""
    subject = f"{texts['title_zh']} / {texts['title_en']}"
    link = texts.get("link")
    if link and link.startswith("/"):
        link = base_url.rstrip("/") + link
    parts = [texts["title_zh"], texts["body_zh"], link, "—", texts["title_en"], texts["body_en"]]
    if link:
        parts.append(link)
    return subject, "\n\n".join(part for part in parts if part) + "\n"


# ---------------------------------------------------------------- one's own notifications


def mine_query(user: User, *, unread_only: bool = False):
    query = select(Notification).where(Notification.user_id == user.id)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    return query.order_by(Notification.created_at.desc(), Notification.id.desc())


def list_for(
    db_session: Session, *, user: User, unread_only: bool = False, page: int = 1, per_page: int = 20
) -> dict:
    """One page of the user's notifications, newest first: items, total, page, per_page."""
    return paginate(db_session, mine_query(user, unread_only=unread_only), page, per_page)


def unread_count(db_session: Session, *, user: User) -> int:
    return db_session.scalar(
        select(func.count())
        .select_from(Notification)
        .where(Notification.user_id == user.id, Notification.read_at.is_(None))
    )


def get_mine(db_session: Session, *, user: User, notification_id: int) -> Notification:
    """The user's own notification; another person's is not found (ids cannot be probed)."""
    notification = None
    if 0 < notification_id < 2**63:  # larger ids cannot be stored, so they do not exist
        notification = db_session.get(Notification, notification_id)
    if notification is None or notification.user_id != user.id:
        raise NotFound(
            f"通知 {notification_id} 不存在", f"notification {notification_id} not found"
        )
    return notification


def mark_read(
    db_session: Session, *, user: User, notification_id: int, now: datetime | None = None
) -> Notification:
    """Mark one of the user's notifications read (again: it keeps when it was first read)."""
    notification = get_mine(db_session, user=user, notification_id=notification_id)
    if notification.read_at is None:
        notification.read_at = now or utcnow()
        db_session.flush()
    return notification


def mark_all_read(db_session: Session, *, user: User, now: datetime | None = None) -> int:
    """Mark every unread notification of the user read; returns how many were unread."""
    result = db_session.execute(
        update(Notification)
        .where(Notification.user_id == user.id, Notification.read_at.is_(None))
        .values(read_at=now or utcnow())
        .execution_options(synchronize_session="fetch")
    )
    return result.rowcount
