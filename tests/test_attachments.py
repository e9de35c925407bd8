"""Files on the work-order page: uploads checked all-or-nothing, shown by kind, and served only
to those who may see the work order."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from app.attachments.models import Attachment
from tests.flows import Flow

PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
# The smallest WebM/Matroska header filetype recognises as video/webm.
WEBM = (
    bytes.fromhex("1a45dfa3") + b"\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82\x84webm" + b"\0" * 64
)


def png(size=(8, 8), padding: int = 0) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, "PNG")
    # Bytes after IEND keep it a PNG to the sniffer and make it as large as a test needs.
    return buffer.getvalue() + b"\0" * padding


@pytest.fixture
def storage(app, monkeypatch, tmp_path) -> Path:
    """An empty storage folder of this test's own."""
    monkeypatch.setitem(app.config, "ATTACHMENT_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def ticket(db_session):
    flow = Flow(
        db_session,
        "alice",
        "equipment_repair",
        title="机房空调漏水",
        category="facilities",
        priority="P2",
        region="shanghai",
        device_no="DEV-T-2",
    )
    flow.do("task_dispatch", "desk", engineer="fac1", parts_needed=False)
    return flow.ticket


def upload(client, ticket, *files, htmx=False):
    data = {"files": [(io.BytesIO(content), name) for name, content in files]}
    url = f"/tickets/{ticket.id}/attachments"
    if htmx:
        return client.htmx(url, "POST", data={"csrf_token": client.csrf, **data})
    return client.post(url, data=data)


def stored(db_session, storage: Path) -> tuple[int, list[Path]]:
    rows = db_session.scalar(select(func.count()).select_from(Attachment))
    return rows, [path for path in storage.rglob("*") if path.is_file()]


def test_an_image_is_stored_and_shown_inline(db_session, pages, storage, ticket):
    alice = pages("alice")
    answer = upload(alice, ticket, ("漏水照片.png", png()))
    assert answer.status_code == 303
    attachment = db_session.scalars(select(Attachment)).one()
    assert (attachment.kind, attachment.content_type, attachment.uploaded_by) == (
        "image",
        "image/png",
        "alice",
    )
    html = alice.get(f"/tickets/{ticket.id}").get_data(as_text=True)
    assert f'<img src="/attachments/{attachment.id}"' in html

    served = alice.get(f"/attachments/{attachment.id}")
    assert served.status_code == 200 and served.data == png()
    assert served.mimetype == "image/png"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    disposition = served.headers["Content-Disposition"]
    assert disposition.startswith("inline;")
    assert "filename*=UTF-8''%E6%BC%8F%E6%B0%B4%E7%85%A7%E7%89%87.png" in disposition
    assert "private" in served.headers["Cache-Control"]
    again = alice.get(
        f"/attachments/{attachment.id}", headers={"If-None-Match": served.headers["ETag"]}
    )
    assert again.status_code == 304


def test_htmx_upload_answers_the_file_list_and_the_timeline(db_session, pages, storage, ticket):
    fragment = upload(pages("fac1"), ticket, ("现场.png", png()), htmx=True)
    assert fragment.status_code == 200
    html = fragment.get_data(as_text=True)
    assert 'id="upload-form"' in html
    assert 'id="timeline" hx-swap-oob="true"' in html and "添加了文件 现场.png" in html


def test_video_audio_and_pdf_get_players_and_download_links(db_session, pages, storage, ticket):
    client = pages("fac1")
    webm = ("现场视频.webm", WEBM)
    assert upload(client, ticket, webm, ("说明.pdf", PDF)).status_code == 303
    html = client.get(f"/tickets/{ticket.id}").get_data(as_text=True)
    video, document = db_session.scalars(select(Attachment).order_by(Attachment.id)).all()
    assert f'<video controls playsinline preload="metadata" src="/attachments/{video.id}">' in html
    assert f'href="/attachments/{document.id}" download' in html
    served = client.get(f"/attachments/{document.id}")
    assert served.mimetype == "application/pdf"
    assert served.headers["Content-Disposition"].startswith("attachment;")
    part = client.get(f"/attachments/{video.id}", headers={"Range": "bytes=0-3"})
    assert part.status_code == 206 and part.data == WEBM[:4]


def test_a_file_over_the_size_limit_is_refused_with_the_limit_and_nothing_stored(
    app, db_session, pages, storage, ticket, monkeypatch
):
    monkeypatch.setitem(app.config, "ATTACHMENT_IMAGE_MAX_BYTES", 2048)
    answer = upload(pages("alice"), ticket, ("大图.png", png(padding=4096)))
    assert answer.status_code == 413
    assert "超过大小上限 2 KB" in answer.get_data(as_text=True)
    assert stored(db_session, storage) == (0, [])

    english = pages("alice", "en")
    fragment = upload(english, ticket, ("big.png", png(padding=4096)), htmx=True)
    assert fragment.status_code == 413
    assert "larger than the limit of 2 KB" in fragment.get_data(as_text=True)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("setup.exe", b"MZ\x90\x00" + b"\0" * 64, "不允许上传 .exe 文件"),
        ("photo.jpg", png(), "扩展名 .jpg 与内容（image/png）不符"),
        # Pages a browser would run if it were ever served inline: refused by name or content.
        ("logo.svg", SVG, "不允许上传 .svg 文件"),
        ("page.html", b"<html><script>alert(1)</script></html>", "不允许上传 .html 文件"),
        ("photo.png", SVG, "内容不是允许的图片、视频、语音或 PDF"),
    ],
)
def test_a_forbidden_or_disguised_file_is_refused(
    db_session, pages, storage, ticket, name, content, message
):
    answer = upload(pages("alice"), ticket, (name, content))
    assert answer.status_code == 400
    assert message in answer.get_data(as_text=True)
    assert stored(db_session, storage) == (0, [])


def test_one_bad_file_among_good_ones_stores_nothing(db_session, pages, storage, ticket):
    answer = upload(
        pages("fac1"),
        ticket,
        ("一.png", png()),
        ("二.pdf", PDF),
        ("三.jpg", png((4, 4))),
    )
    assert answer.status_code == 400
    assert stored(db_session, storage) == (0, [])


def test_finance_may_not_upload_and_an_empty_upload_is_refused(db_session, pages, storage, ticket):
    assert upload(pages("fin1"), ticket, ("a.png", png())).status_code == 403
    empty = pages("alice").post(f"/tickets/{ticket.id}/attachments", data={})
    assert empty.status_code == 400 and "没有收到文件" in empty.get_data(as_text=True)
    assert stored(db_session, storage) == (0, [])


@pytest.mark.parametrize(
    ("username", "status"),
    [
        ("alice", 200),  # her own work order
        ("fac1", 200),  # the engineer with its on-site task
        ("desk", 200),  # the dispatcher who dispatched it
        ("fin1", 404),  # finance sees costs, not what the work was
        ("admin", 200),
        ("bob", 404),  # another requester
        ("hw1", 404),  # an engineer of another group
        ("net_lead", 404),
    ],
)
def test_a_file_is_served_only_to_those_who_see_its_work_order(
    db_session, pages, storage, ticket, username, status
):
    upload(pages("alice"), ticket, ("照片.png", png()))
    attachment = db_session.scalars(select(Attachment)).one()
    assert pages(username).get(f"/attachments/{attachment.id}").status_code == status


def test_unknown_and_anonymous_downloads(db_session, pages, storage, ticket):
    upload(pages("alice"), ticket, ("照片.png", png()))
    attachment = db_session.scalars(select(Attachment)).one()
    assert pages(None).get(f"/attachments/{attachment.id}").status_code == 302
    assert pages("admin").get("/attachments/999999999").status_code == 404
    assert pages("admin").get(f"/attachments/{2**64}").status_code == 404
