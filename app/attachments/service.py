"""Storing and reading attachments: every file is checked (count, size, sniffed type, extension)
before anything is written; bytes go to the storage folder under their SHA-256, rows to the
caller's transaction. A file whose row is never committed leaves at most an unreferenced blob,
never a row without its bytes."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import filetype
from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.attachments.models import Attachment
from app.audit.service import record
from app.errors import InvalidInput, TooLarge

# Sniffed type -> the kind it is stored as, and the file extensions that may carry it.
ALLOWED: dict[str, tuple[str, frozenset[str]]] = {
    "image/jpeg": ("image", frozenset({"jpg", "jpeg", "jfif"})),
    "image/png": ("image", frozenset({"png"})),
    "image/gif": ("image", frozenset({"gif"})),
    "image/webp": ("image", frozenset({"webp"})),
    "image/heic": ("image", frozenset({"heic", "heif"})),
    "video/mp4": ("video", frozenset({"mp4", "m4v"})),
    "video/quicktime": ("video", frozenset({"mov", "qt"})),
    # A WebM file is a video or a voice note recorded in the page; its extension says which.
    "video/webm": ("video", frozenset({"webm"})),
    "audio/mp4": ("audio", frozenset({"m4a", "mp4"})),
    "audio/mpeg": ("audio", frozenset({"mp3"})),
    "audio/ogg": ("audio", frozenset({"ogg", "oga", "opus"})),
    "audio/x-wav": ("audio", frozenset({"wav"})),
    "audio/amr": ("audio", frozenset({"amr"})),
    "application/pdf": ("document", frozenset({"pdf"})),
}
ALLOWED_EXTENSIONS = sorted({ext for _, exts in ALLOWED.values() for ext in exts})
LIMIT_SETTING = {
    "image": "ATTACHMENT_IMAGE_MAX_BYTES",
    "video": "ATTACHMENT_VIDEO_MAX_BYTES",
    "audio": "ATTACHMENT_AUDIO_MAX_BYTES",
    "document": "ATTACHMENT_DOCUMENT_MAX_BYTES",
}
KIND_NAMES = {
    "image": ("图片", "image"),
    "video": ("视频", "video"),
    "audio": ("语音", "audio"),
    "document": ("文档", "document"),
    "service_report": ("服务报告", "service report"),
}
CHUNK = 1024 * 1024


@dataclass
class Upload:
    """One file as it arrived: a name, the type the client claimed, and a readable stream."""

    filename: str
    stream: BinaryIO
    declared_type: str = ""


@dataclass
class _Checked:
    filename: str
    kind: str
    content_type: str
    size: int
    sha256: str
    stream: BinaryIO


def storage_root() -> Path:
    return Path(current_app.config["ATTACHMENT_DIR"])


def blob_path(sha256: str) -> Path:
    return storage_root() / sha256[:2] / sha256


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.0f} MB" if size >= 1024 * 1024 else f"{size / 1024:.0f} KB"


def _check(upload: Upload) -> _Checked:
    name = Path(upload.filename or "").name.strip()
    if not name:
        raise InvalidInput("上传的文件没有文件名", "an uploaded file has no file name")
    if len(name) > 200:
        raise InvalidInput(
            f"文件名过长（{len(name)} 个字符，最多 200）：{name[:40]}…",
            f"the file name is too long ({len(name)} characters, at most 200): {name[:40]}…",
        )
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if extension not in ALLOWED_EXTENSIONS:
        allowed = ", ".join(ALLOWED_EXTENSIONS)
        raise InvalidInput(
            f"不允许上传 .{extension or '（无扩展名）'} 文件：{name}（允许：{allowed}）",
            f"files of type .{extension or '(none)'} may not be uploaded: {name} (allowed: {allowed})",
        )
    stream = upload.stream
    stream.seek(0)
    head = stream.read(8192)
    guess = filetype.guess(head)
    if guess is None or guess.mime not in ALLOWED:
        found = guess.mime if guess else "未知 / unknown"
        raise InvalidInput(
            f"文件 {name} 的内容不是允许的图片、视频、语音或 PDF（识别为 {found}）",
            f"the content of {name} is not an allowed image, video, audio or PDF (found {found})",
        )
    kind, extensions = ALLOWED[guess.mime]
    if extension not in extensions:
        raise InvalidInput(
            f"文件 {name} 的扩展名 .{extension} 与内容（{guess.mime}）不符",
            f"the extension .{extension} of {name} does not match its content ({guess.mime})",
        )
    content_type = guess.mime
    if guess.mime == "video/webm" and upload.declared_type.startswith("audio/"):
        kind, content_type = "audio", "audio/webm"
    digest = hashlib.sha256(head)
    size = len(head)
    limit = current_app.config[LIMIT_SETTING[kind]]
    while chunk := stream.read(CHUNK):
        size += len(chunk)
        if size > limit:
            break
        digest.update(chunk)
    if size > limit:
        zh, en = KIND_NAMES[kind]
        raise TooLarge(
            f"{zh}文件 {name} 超过大小上限 {_mb(limit)}",
            f"the {en} file {name} is larger than the limit of {_mb(limit)}",
        )
    if size == 0:
        raise InvalidInput(f"文件 {name} 是空的", f"the file {name} is empty")
    return _Checked(name, kind, content_type, size, digest.hexdigest(), stream)


def _write_blob(checked: _Checked) -> None:
    target = blob_path(checked.sha256)
    if target.exists() and target.stat().st_size == checked.size:
        return  # the same bytes are stored already
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written beside its final name and renamed: a reader never sees half a file.
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
    try:
        with os.fdopen(handle, "wb") as out:
            checked.stream.seek(0)
            while chunk := checked.stream.read(CHUNK):
                out.write(chunk)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def check_uploads(uploads: list[Upload]) -> list[_Checked]:
    """Every check, for every file, before anything is stored."""
    limit = current_app.config["ATTACHMENTS_PER_REQUEST"]
    if len(uploads) > limit:
        raise InvalidInput(
            f"一次最多上传 {limit} 个文件（收到 {len(uploads)} 个）",
            f"at most {limit} files per upload ({len(uploads)} were sent)",
        )
    return [_check(upload) for upload in uploads]


def add_attachments(
    *,
    db_session: Session,
    ticket_id: int,
    actor: str,
    uploads: list[Upload],
    task_id: str | None = None,
) -> list[Attachment]:
    """Check all files, store their bytes, and add their rows in the caller's transaction."""
    checked = check_uploads(uploads)
    attachments = []
    for item in checked:
        _write_blob(item)
        attachment = Attachment(
            ticket_id=ticket_id,
            task_id=task_id,
            kind=item.kind,
            filename=item.filename,
            content_type=item.content_type,
            size=item.size,
            sha256=item.sha256,
            uploaded_by=actor,
        )
        db_session.add(attachment)
        attachments.append(attachment)
    db_session.flush()
    for attachment in attachments:
        record(
            db_session=db_session,
            action="attachment.add",
            object_type="ticket",
            object_id=ticket_id,
            actor=actor,
            after={
                "attachment_id": attachment.id,
                "filename": attachment.filename,
                "kind": attachment.kind,
                "size": attachment.size,
                "sha256": attachment.sha256,
            },
        )
    return attachments


def add_generated(
    *,
    db_session: Session,
    ticket_id: int,
    actor: str,
    kind: str,
    filename: str,
    content_type: str,
    data: bytes,
) -> Attachment:
    """Store a file the platform made itself (the service report)."""
    sha256 = hashlib.sha256(data).hexdigest()
    _write_blob(_Checked(filename, kind, content_type, len(data), sha256, io.BytesIO(data)))
    attachment = Attachment(
        ticket_id=ticket_id,
        kind=kind,
        filename=filename,
        content_type=content_type,
        size=len(data),
        sha256=sha256,
        uploaded_by=actor,
    )
    db_session.add(attachment)
    db_session.flush()
    return attachment


def attachments_of(*, db_session: Session, ticket_id: int) -> list[Attachment]:
    return list(
        db_session.scalars(
            select(Attachment)
            .where(Attachment.ticket_id == ticket_id)
            .order_by(Attachment.created_at, Attachment.id)
        )
    )
