"""The service report: a bilingual PDF of an archived work order, made by a job or on first
download, made again after a rating, and never for an open work order."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import func, select

from app.attachments.models import Attachment
from app.attachments.service import Upload, add_attachments
from app.reports.jobs import make_missing_reports
from app.reports.service_report import refresh_report
from app.tickets.models import Satisfaction
from tests.conftest import backend
from tests.flows import Flow

ONSITE = {"fault_cause": "压缩机电容老化", "work_done": "更换电容并试运行 30 分钟"}


@pytest.fixture
def storage(app, monkeypatch, tmp_path):
    monkeypatch.setitem(app.config, "ATTACHMENT_DIR", str(tmp_path))
    return tmp_path


def photo() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (30, 120, 200)).save(buffer, "JPEG")
    return buffer.getvalue()


def finished_repair(db_session, title="3 号楼空调外机异响"):
    flow = Flow(
        db_session,
        "alice",
        "equipment_repair",
        title=title,
        category="facilities",
        priority="P2",
        region="shanghai",
        device_no="DEV-T-2",
    )
    flow.do("task_dispatch", "desk", engineer="fac1", parts_needed=True, parts_list="电容 × 1")
    flow.do("task_onsite", "fac1", **ONSITE)
    flow.do("task_parts", "parts", parts_issued=True, parts_note="已出库")
    add_attachments(
        db_session=db_session,
        ticket_id=flow.ticket.id,
        actor="fac1",
        uploads=[Upload("现场.jpg", io.BytesIO(photo()), "image/jpeg")],
    )
    db_session.commit()
    flow.do(
        "task_acceptance",
        "alice",
        acceptance_result="accept",
        acceptance_comment="已恢复正常",
        csat=5,
    )
    assert flow.ticket.status == "closed"
    return flow


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def reports_of(db_session, ticket_id) -> list[Attachment]:
    return list(
        db_session.scalars(
            select(Attachment)
            .where(Attachment.ticket_id == ticket_id, Attachment.kind == "service_report")
            .order_by(Attachment.id)
        )
    )


def test_the_report_has_the_title_steps_people_parts_and_acceptance(db_session, pages, storage):
    flow = finished_repair(db_session)
    answer = pages("alice").get(f"/tickets/{flow.ticket.id}/report.pdf")
    assert answer.status_code == 200 and answer.mimetype == "application/pdf"
    assert "filename*=UTF-8''" in answer.headers["Content-Disposition"]
    text = pdf_text(answer.data)
    assert "服务报告" in text and "Service report" in text
    assert flow.ticket.number in text and "3 号楼空调外机异响" in text
    lines = text.splitlines()
    steps = [(lines[i], lines[i + 1]) for i in range(len(lines) - 1)]
    for step in (("派单", "desk"), ("现场处理", "fac1"), ("备件申领", "parts"), ("验收", "alice")):
        assert step in steps, f"{step} is not a row of the steps table"
    assert "更换电容并试运行 30 分钟" in text and "电容 × 1" in text
    assert "备件费" in text and "¥ 0.00" in text
    assert "通过 / Accept" in text and "已恢复正常" in text
    reader = PdfReader(io.BytesIO(answer.data))
    assert sum(len(page.images) for page in reader.pages) == 1, "the photo is in the report"
    # made once, on first use; the second download serves the same file
    assert len(reports_of(db_session, flow.ticket.id)) == 1
    assert pages("desk").get(f"/tickets/{flow.ticket.id}/report.pdf").data == answer.data
    assert len(reports_of(db_session, flow.ticket.id)) == 1


def test_no_report_while_open_and_none_for_those_who_do_not_see_the_ticket(
    db_session, pages, storage
):
    flow = Flow(db_session, "alice", "it_service", title="VPN 无法连接")
    answer = pages("alice").get(f"/tickets/{flow.ticket.id}/report.pdf")
    assert answer.status_code == 404 and "尚未归档" in answer.get_data(as_text=True)
    assert reports_of(db_session, flow.ticket.id) == []
    page = pages("alice").get(f"/tickets/{flow.ticket.id}").get_data(as_text=True)
    assert "report.pdf" not in page

    done = finished_repair(db_session)
    assert pages("bob").get(f"/tickets/{done.ticket.id}/report.pdf").status_code == 404
    assert f"/tickets/{done.ticket.id}/report.pdf" in pages("alice").get(
        f"/tickets/{done.ticket.id}"
    ).get_data(as_text=True)


def test_the_job_makes_reports_for_closed_tickets_once(db_session, storage):
    first = finished_repair(db_session, title="第一台空调")
    second = finished_repair(db_session, title="第二台空调")
    still_open = Flow(db_session, "bob", "it_service", title="打印机卡纸")

    assert make_missing_reports(db_session=db_session) == 2
    assert make_missing_reports(db_session=db_session) == 0
    assert len(reports_of(db_session, first.ticket.id)) == 1
    assert len(reports_of(db_session, second.ticket.id)) == 1
    assert reports_of(db_session, still_open.ticket.id) == []
    report = reports_of(db_session, first.ticket.id)[0]
    assert report.content_type == "application/pdf" and report.filename.endswith(".pdf")
    assert (storage / report.sha256[:2] / report.sha256).is_file()


def test_a_rating_makes_a_new_report_and_the_newest_is_served(db_session, pages, storage):
    flow = finished_repair(db_session)
    old = pdf_text(pages("alice").get(f"/tickets/{flow.ticket.id}/report.pdf").data)
    assert "5 / 5" not in old

    db_session.add(
        Satisfaction(ticket_id=flow.ticket.id, rating=4, comment="响应很快", rated_by="alice")
    )
    refresh_report(db_session=db_session, ticket=flow.ticket)
    db_session.commit()

    assert len(reports_of(db_session, flow.ticket.id)) == 2
    new = pdf_text(pages("alice").get(f"/tickets/{flow.ticket.id}/report.pdf").data)
    assert "4 / 5" in new and "响应很快" in new
    assert db_session.scalar(select(func.count()).select_from(Attachment)) == 3


def test_a_photo_pillow_cannot_read_is_named_instead(db_session, storage):
    from app.reports.service_report import render_report

    flow = finished_repair(db_session)
    image = db_session.scalars(select(Attachment).where(Attachment.kind == "image")).one()
    (storage / image.sha256[:2] / image.sha256).write_bytes(b"\xff\xd8\xff\xe0 broken")
    text = pdf_text(render_report(db_session=db_session, ticket=flow.ticket))
    assert "照片无法显示" in text and "现场.jpg" in text


def test_a_photo_with_too_many_pixels_is_named_and_the_report_is_made(
    db_session, pages, storage, monkeypatch
):
    # A PNG of a few MB can claim billions of pixels; Pillow refuses it past twice this limit.
    flow = finished_repair(db_session)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    answer = pages("alice").get(f"/tickets/{flow.ticket.id}/report.pdf")
    assert answer.status_code == 200
    text = pdf_text(answer.data)
    assert "照片无法显示" in text and "现场.jpg" in text


@pytest.mark.skipif(
    backend() != "postgresql", reason="row locks are PostgreSQL's (SQLite: one writer)"
)
def test_two_workers_never_make_two_reports_and_never_wait(fresh_app, tmp_path):
    from sqlalchemy.orm import Session

    from app.extensions import db
    from app.reports.service_report import make_missing_report

    fresh_app.config["ATTACHMENT_DIR"] = str(tmp_path)
    with fresh_app.app_context():
        ticket_id = finished_repair(db.session).ticket.id
        db.session.remove()
        first, second = Session(db.engine), Session(db.engine)
        # A worker that waited for the lock instead of skipping would fail here, not hang.
        second.connection().exec_driver_sql("SET lock_timeout = '5s'")
        try:
            # The first worker holds the work order while it makes the report ...
            assert make_missing_report(db_session=first, ticket_id=ticket_id) is not None
            # ... the second skips it at once instead of waiting or making another.
            assert make_missing_reports(db_session=second) == 0
            first.commit()
            assert make_missing_reports(db_session=second) == 0
            assert len(reports_of(second, ticket_id)) == 1
        finally:
            first.close()
            second.close()
