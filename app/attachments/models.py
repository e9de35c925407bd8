"""Files attached to work orders: photos, videos, voice notes, documents, service reports."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.timeutil import UTCDateTime, utcnow

BigId = BigInteger().with_variant(Integer(), "sqlite")
# image | video | audio | document | service_report
KINDS = ("image", "video", "audio", "document", "service_report")


class Attachment(db.Model):
    """Metadata of one stored file; the bytes sit in the storage folder under their SHA-256."""

    __tablename__ = "attachment"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), index=True)
    # The task it was added for (photos of on-site work), when there was one.
    task_id: Mapped[str | None] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(20))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    uploaded_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
