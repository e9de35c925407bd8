"""A process draft: the sources an admin is drawing, before they become a deployed version."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.timeutil import UTCDateTime, utcnow


class ProcessDraft(db.Model):
    """One draft per process key; saved at will, validated and deployed on request.

    ``lock_version`` is optimistic locking by hand rather than SQLAlchemy's version column: a
    stale save must answer who saved in between, which needs the row read under its lock.
    """

    __tablename__ = "process_draft"

    id: Mapped[int] = mapped_column(primary_key=True)
    process_key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    bpmn_xml: Mapped[str] = mapped_column(Text)
    # {filename: DMN XML}, {form id: form-js schema}: the same shapes a deployed version keeps.
    dmn: Mapped[dict] = mapped_column(JSON, default=dict)
    forms: Mapped[dict] = mapped_column(JSON, default=dict)
    # The deployed version the draft started from (None for a process never deployed).
    base_version: Mapped[int | None] = mapped_column(Integer)
    updated_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lock_version: Mapped[int] = mapped_column(Integer, default=1)
