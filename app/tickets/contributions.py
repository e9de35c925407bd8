"""What people add to a work order from its page: progress notes (internal ones for staff only)
and files. Finance reads work orders and adds nothing."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.attachments.models import Attachment
from app.attachments.service import Upload, add_attachments
from app.audit.service import record
from app.auth.models import User
from app.errors import InvalidInput, NotAllowed
from app.tickets.models import Ticket, TicketNote
from app.timeutil import utcnow

STAFF_ROLES = frozenset({"admin", "dispatcher", "handler", "reviewer"})
NOTE_MAX_LENGTH = 4000
# Line breaks and tabs are kept; other control characters belong in no note (PostgreSQL
# refuses NUL in text).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def is_staff(user: User) -> bool:
    return user.role in STAFF_ROLES


def may_contribute(user: User) -> bool:
    """Whether ``user`` may add notes and files to a work order it sees (finance only reads)."""
    return user.role != "finance"


def _refuse_finance(user: User, ticket: Ticket, what_zh: str, what_en: str) -> None:
    if not may_contribute(user):
        raise NotAllowed(
            f"角色 {user.role} 只能查看工单 {ticket.number}，不能添加{what_zh}",
            f"the role {user.role} may read work order {ticket.number} but not add {what_en}",
        )


def visible_notes(*, db_session: Session, user: User, ticket: Ticket) -> list[TicketNote]:
    """The work order's notes, oldest first; internal ones only for staff."""
    query = (
        select(TicketNote)
        .where(TicketNote.ticket_id == ticket.id)
        .order_by(TicketNote.created_at, TicketNote.id)
    )
    if not is_staff(user):
        query = query.where(TicketNote.internal.is_(False))
    return list(db_session.scalars(query))


def add_note(
    *, db_session: Session, user: User, ticket: Ticket, body: str, internal: bool = False
) -> TicketNote:
    """Add a progress note (a visible ticket, checked by the caller); the caller commits."""
    _refuse_finance(user, ticket, "处理记录", "notes")
    if internal and not is_staff(user):
        raise NotAllowed(
            "只有服务人员可以写内部备注；请去掉“仅内部可见”后再提交",
            "only staff may write internal notes; untick “internal” and send the note again",
        )
    body = (body or "").strip()
    if not body:
        raise InvalidInput(
            "处理记录不能为空：请写下进展后再提交",
            "the note is empty: write what happened, then send it",
        )
    if len(body) > NOTE_MAX_LENGTH:
        raise InvalidInput(
            f"处理记录过长（{len(body)} 个字符，最多 {NOTE_MAX_LENGTH}）",
            f"the note is too long ({len(body)} characters, at most {NOTE_MAX_LENGTH})",
        )
    if _CONTROL.search(body):
        raise InvalidInput(
            "处理记录不能包含控制字符", "the note must not contain control characters"
        )
    note = TicketNote(ticket_id=ticket.id, author_id=user.id, body=body, internal=internal)
    note.author = user
    db_session.add(note)
    ticket.updated_at = utcnow()
    db_session.flush()
    record(
        db_session=db_session,
        action="ticket.note",
        object_type="ticket",
        object_id=ticket.id,
        actor=user.username,
        after={"note_id": note.id, "internal": internal, "length": len(body)},
    )
    return note


def add_files(
    *, db_session: Session, user: User, ticket: Ticket, uploads: list[Upload]
) -> list[Attachment]:
    """Add files to a visible ticket: every file is checked before any is stored."""
    _refuse_finance(user, ticket, "附件", "files")
    if not uploads:
        raise InvalidInput(
            "没有收到文件：请选择要上传的图片、视频、语音或 PDF",
            "no file was sent: choose the images, videos, audio or PDF files to upload",
        )
    attachments = add_attachments(
        db_session=db_session, ticket_id=ticket.id, actor=user.username, uploads=uploads
    )
    ticket.updated_at = utcnow()
    return attachments
