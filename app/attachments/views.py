"""Downloading attachments: the bytes of a file whose work order the signed-in person may see."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

from flask import Blueprint, Response, send_file
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.attachments.models import Attachment
from app.attachments.service import blob_path
from app.auth.access import login_required, ticket_condition
from app.auth.models import User
from app.errors import NotFound
from app.extensions import db
from app.tickets.models import Ticket

bp = Blueprint("attachment_pages", __name__)

# Shown in the page (players, thumbnails); anything else is saved, never rendered by the browser.
INLINE_KINDS = frozenset({"image", "video", "audio"})
MAX_ID = 2**63 - 1  # attachment.id is a 64-bit integer on PostgreSQL


def visible_attachment(*, db_session: Session, user: User, attachment_id: int) -> Attachment:
    """The attachment, if ``user`` may see its work order and its bytes are stored; else 404."""
    attachment = None
    # Finance sees the costs of work orders, never what they were about (TICKET_VIEWS).
    if 0 < attachment_id <= MAX_ID and user.role != "finance":
        attachment = db_session.scalar(
            select(Attachment)
            .join(Ticket, Ticket.id == Attachment.ticket_id)
            .where(Attachment.id == attachment_id, ticket_condition(db_session, user))
        )
    if attachment is None or not blob_path(attachment.sha256).is_file():
        raise NotFound(f"附件 {attachment_id} 不存在", f"attachment {attachment_id} does not exist")
    return attachment


def content_disposition(disposition: str, filename: str, fallback: str) -> str:
    """RFC 6266: an ASCII ``filename`` for old clients and the UTF-8 name in ``filename*``."""
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    ascii_name = re.sub(r"[^A-Za-z0-9._ -]", "_", ascii_name).strip(" ._") or fallback
    return f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def file_response(attachment: Attachment, *, inline: bool | None = None) -> Response:
    """The stored bytes with their type, revalidated by ETag and served in ranges (video)."""
    if inline is None:
        inline = attachment.kind in INLINE_KINDS
    response = send_file(
        blob_path(attachment.sha256),
        mimetype=attachment.content_type,
        conditional=True,
        etag=attachment.sha256,
        last_modified=attachment.created_at,
        max_age=None,
    )
    extension = attachment.filename.rsplit(".", 1)[-1] if "." in attachment.filename else "bin"
    response.headers["Content-Disposition"] = content_disposition(
        "inline" if inline else "attachment",
        attachment.filename,
        f"attachment-{attachment.id}.{extension}",
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    # Signed-in content: shared caches keep none; the browser revalidates with the ETag.
    response.cache_control.private = True
    response.cache_control.no_cache = True
    return response


@bp.app_template_filter("file_size")
def file_size(size: int) -> str:
    """Bytes as people read them (1 MB = 1024 KB, as the upload limits are counted)."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / 1024 / 1024:.1f}".removesuffix(".0") + " MB"


@bp.get("/attachments/<int:attachment_id>")
@login_required
def download(attachment_id: int):
    attachment = visible_attachment(
        db_session=db.session, user=current_user, attachment_id=attachment_id
    )
    return file_response(attachment)
