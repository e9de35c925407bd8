"""At the site: device list and QR labels, the page a QR code opens, check-in with its distance
from the device, photos and voice notes from the phone, and spare-parts requests."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from flask import g, render_template
from flask_login import login_user
from PIL import Image
from sqlalchemy import event, func, select

from app.attachments.models import Attachment
from app.audit.models import AuditEntry
from app.auth.service import find_user
from app.extensions import db
from app.site.models import CheckIn
from app.site.service import distance_m
from app.tickets.models import Device, TicketNote
from tests.flows import Flow

# A WebM file as MediaRecorder starts one: the EBML header with the DocType "webm".
WEBM = (
    b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08"
    b"\x42\x82\x84webm\x42\x87\x81\x04\x42\x85\x81\x02" + b"\x18\x53\x80\x67" + bytes(64)
)
# The device on the roof in Shanghai, and a phone 30 m or so away from it.
DEVICE_AT = (31.2304, 121.4737)
PHONE_AT = (31.2306, 121.4739)


@pytest.fixture
def storage(app, tmp_path, monkeypatch) -> Path:
    monkeypatch.setitem(app.config, "ATTACHMENT_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def located(db_session) -> Device:
    device = db_session.scalar(select(Device).where(Device.device_no == "DEV-T-2"))
    device.lat, device.lng = DEVICE_AT
    db_session.commit()
    return device


def repair(db_session, requester="alice", engineer="fac1", title="空调外机异响") -> Flow:
    """A repair of DEV-T-2 dispatched to ``engineer``: their on-site task is open."""
    flow = Flow(
        db_session,
        requester,
        "equipment_repair",
        title=title,
        category="facilities",
        priority="P2",
        region="shanghai",
        device_no="DEV-T-2",
    )
    flow.do("task_dispatch", "desk", engineer=engineer, parts_needed=False)
    return flow


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (30, 30, 200)).save(out, "PNG")
    return out.getvalue()


# ---------------------------------------------------------------- devices and QR labels


def test_the_qr_label_holds_an_svg_of_the_site_url(pages):
    answer = pages("desk").get("/devices/DEV-T-1/qr")
    assert answer.status_code == 200
    html = answer.text
    assert "<svg" in html and 'class="qr"' in html
    assert "http://localhost/site/DEV-T-1?scan=1" in html
    assert "测试交换机" in html and "北京测试机房" in html and "data-print" in html


def test_staff_list_devices_and_others_may_not(pages):
    html = pages("fac1").get("/devices").text
    assert "/site/DEV-T-1" in html and "/devices/DEV-T-2/qr" in html
    found = pages("fac1").get("/devices?q=交换机").text
    assert "/site/DEV-T-1" in found and "/site/DEV-T-2" not in found
    for username in ("alice", "fin1"):
        assert pages(username).get("/devices").status_code == 403
        assert pages(username).get("/devices/DEV-T-1/qr").status_code == 403
    assert pages("desk").get("/devices/NO-SUCH/qr").status_code == 404


def test_signing_in_leads_back_to_the_scanned_device(pages):
    answer = pages(None).get("/site/DEV-T-1")
    assert answer.status_code == 302
    assert answer.headers["Location"].endswith("/login?next=/site/DEV-T-1")


# ---------------------------------------------------------------- the site page


def test_the_engineer_sees_their_own_job_first_and_checks_in_on_arrival(pages, db_session):
    mine = repair(db_session, title="我的现场任务")
    earlier = repair(db_session, title="已做完的现场任务")
    earlier.do("task_onsite", "fac1", fault_cause="风扇松动", work_done="紧固")
    later = repair(db_session, title="另一位工程师的任务", engineer="fac_lead")

    html = pages("fac1").get("/site/DEV-T-2?scan=1").text
    assert html.index(f'data-site-ticket="{mine.ticket.id}"') < html.index(
        f'data-site-ticket="{earlier.ticket.id}"'
    )
    assert f'data-site-ticket="{later.ticket.id}"' not in html, "not visible to fac1"
    onsite = mine.task("task_onsite")
    assert f'href="/tasks/{onsite.id}" data-my-task' in html
    auto = html.split(f'data-ticket-id="{mine.ticket.id}"')[1].split(">")[0]
    assert "data-auto" in auto
    assert "尚未签到" in html
    from_a_link = pages("fac1").get("/site/DEV-T-2").text
    assert f'data-ticket-id="{mine.ticket.id}"' in from_a_link
    assert "data-auto" not in from_a_link, "opened from a link"


def test_the_engineers_task_leads_to_the_site_page_of_its_device(pages, db_session):
    flow = repair(db_session)
    onsite = flow.task("task_onsite")
    html = pages("fac1").get(f"/tasks/{onsite.id}").text
    assert 'href="/site/DEV-T-2" data-site-link' in html and "现场：签到、拍照、备件" in html
    assert 'href="/site/DEV-T-2" data-device' in html
    # Done: the task still names its device, but no longer sends the engineer to the site.
    flow.do("task_onsite", "fac1", fault_cause="风扇松动", work_done="紧固")
    done = pages("fac1").get(f"/tasks/{onsite.id}")
    assert done.status_code == 200
    assert "data-device" in done.text and "data-site-link" not in done.text
    # The requester's acceptance of the same repair is theirs, but not work on site.
    acceptance = flow.task("task_acceptance")
    theirs = pages("alice").get(f"/tasks/{acceptance.id}")
    assert theirs.status_code == 200 and "data-site-link" not in theirs.text


def test_a_check_in_stores_the_position_and_the_distance_to_the_device(pages, db_session, located):
    flow = repair(db_session)
    fac1 = pages("fac1")
    answer = fac1.fetch(
        "/site/DEV-T-2/checkin",
        json={"ticket_id": flow.ticket.id, "lat": PHONE_AT[0], "lng": PHONE_AT[1], "accuracy": 12},
    )
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["label"].startswith("已签到 ") and body["distance"].endswith(" 米")
    row = db_session.get(CheckIn, body["id"])
    assert row.user_id == find_user(db_session=db_session, username="fac1").id
    assert (row.ticket_id, row.device_no, row.lat, row.lng, row.accuracy_m) == (
        flow.ticket.id,
        "DEV-T-2",
        pytest.approx(PHONE_AT[0]),
        pytest.approx(PHONE_AT[1]),
        12,
    )
    expected = distance_m(*DEVICE_AT, *PHONE_AT)
    assert 20 < expected < 40 and row.distance_m == pytest.approx(expected, abs=0.1)
    audit = db_session.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "site.checkin", AuditEntry.object_id == str(flow.ticket.id)
        )
    ).one()
    assert audit.actor == "fac1" and audit.after["distance_m"] == row.distance_m

    page = fac1.get("/site/DEV-T-2").text
    assert f"已签到 {body['time']}" in page and "data-checked" in page


def test_a_check_in_without_a_position_is_kept_without_one(pages, db_session, located):
    flow = repair(db_session)
    answer = pages("fac1").fetch(
        "/site/DEV-T-2/checkin", json={"ticket_id": flow.ticket.id, "lat": None, "lng": None}
    )
    assert answer.status_code == 200
    row = db_session.get(CheckIn, answer.get_json()["id"])
    assert (row.lat, row.lng, row.accuracy_m, row.distance_m) == (None, None, None, None)


def test_check_in_input_and_place_are_checked(pages, db_session):
    flow = repair(db_session)
    fac1 = pages("fac1")
    wrong = fac1.fetch("/site/DEV-T-2/checkin", json={"ticket_id": flow.ticket.id, "lat": 95})
    assert wrong.status_code == 400 and "lat" in wrong.get_json()["errors"]
    assert fac1.fetch("/site/DEV-T-2/checkin", json={"ticket_id": "x"}).status_code == 400
    elsewhere = fac1.fetch("/site/DEV-T-1/checkin", json={"ticket_id": flow.ticket.id})
    assert elsewhere.status_code == 404
    hidden = repair(db_session, engineer="fac_lead")
    assert (
        fac1.fetch("/site/DEV-T-2/checkin", json={"ticket_id": hidden.ticket.id}).status_code == 404
    )
    assert db_session.scalar(select(func.count()).select_from(CheckIn)) == 0


def test_requesters_and_finance_cannot_check_in_and_the_requester_sees_the_report(
    pages, db_session
):
    flow = repair(db_session)
    for username in ("alice", "fin1"):
        answer = pages(username).fetch("/site/DEV-T-2/checkin", json={"ticket_id": flow.ticket.id})
        assert answer.status_code == 403, username

    flow.do("task_onsite", "fac1", fault_cause="电容老化", work_done="更换电容")
    flow.do("task_acceptance", "alice", acceptance_result="accept")
    html = pages("alice").get("/site/DEV-T-2").text
    assert f'href="/tickets/{flow.ticket.id}/report.pdf"' in html
    assert "/portal/new/equipment_repair?device_no=DEV-T-2" in html
    assert "data-checkin" not in html and "data-site-actions" not in html
    finance = pages("fin1").get("/site/DEV-T-2")
    assert finance.status_code == 200 and flow.ticket.number in finance.text
    assert "report.pdf" not in finance.text and "空调外机异响" not in finance.text


def test_a_voice_note_recorded_in_the_page_is_stored_as_audio(pages, db_session, storage):
    flow = repair(db_session)
    answer = pages("fac1").fetch(
        f"/site/DEV-T-2/tickets/{flow.ticket.id}/files",
        data={"files": (io.BytesIO(WEBM), "voice-20261126-140501.webm", "audio/webm")},
    )
    assert answer.status_code == 200, answer.get_json()
    [stored] = answer.get_json()["attachments"]
    row = db_session.get(Attachment, stored["id"])
    assert (row.kind, row.content_type, row.filename) == (
        "audio",
        "audio/webm",
        "voice-20261126-140501.webm",
    )
    assert row.task_id == flow.task("task_onsite").id and row.uploaded_by == "fac1"
    listing = pages("fac1").htmx(f"/site/DEV-T-2/tickets/{flow.ticket.id}/files").text
    assert f'<audio controls preload="none" src="/attachments/{row.id}">' in listing


def test_photos_from_the_site_are_shown_in_the_list(pages, db_session, storage):
    flow = repair(db_session)
    answer = pages("fac1").htmx(
        f"/site/DEV-T-2/tickets/{flow.ticket.id}/files",
        "POST",
        data={"files": (io.BytesIO(png_bytes()), "现场.png", "image/png")},
    )
    assert answer.status_code == 200
    row = db_session.scalars(select(Attachment).where(Attachment.ticket_id == flow.ticket.id)).one()
    assert row.kind == "image" and f'<img src="/attachments/{row.id}"' in answer.text
    nothing = pages("fac1").htmx(f"/site/DEV-T-2/tickets/{flow.ticket.id}/files", "POST", data={})
    assert nothing.status_code == 400 and 'class="error"' in nothing.text
    refused = pages("alice").fetch(
        f"/site/DEV-T-2/tickets/{flow.ticket.id}/files",
        data={"files": (io.BytesIO(png_bytes()), "a.png", "image/png")},
    )
    assert refused.status_code == 403


def test_a_spare_parts_request_is_a_note_for_staff_and_an_audit_entry(pages, db_session):
    flow = repair(db_session)
    answer = pages("fac1").htmx(
        f"/site/DEV-T-2/tickets/{flow.ticket.id}/parts",
        "POST",
        data={"part": "压缩机启动电容 35μF", "quantity": "2", "note": "原件鼓包"},
    )
    assert answer.status_code == 200
    assert "压缩机启动电容 35μF × 2" in answer.text and "原件鼓包" in answer.text
    note = db_session.scalars(
        select(TicketNote).where(TicketNote.ticket_id == flow.ticket.id)
    ).one()
    assert note.body == "备件申领：压缩机启动电容 35μF × 2（原件鼓包）" and note.internal
    audit = db_session.scalars(
        select(AuditEntry).where(AuditEntry.action == "spare_parts.request")
    ).one()
    assert audit.after == {
        "part": "压缩机启动电容 35μF",
        "quantity": 2,
        "note": "原件鼓包",
        "ticket_note_id": note.id,
    }
    assert "压缩机启动电容 35μF × 2" in pages("fac1").get("/site/DEV-T-2").text

    wrong = pages("fac1").fetch(
        f"/site/DEV-T-2/tickets/{flow.ticket.id}/parts", data={"part": "电容", "quantity": "0"}
    )
    assert wrong.status_code == 400 and "quantity" in wrong.get_json()["errors"]
    assert (
        pages("alice")
        .fetch(
            f"/site/DEV-T-2/tickets/{flow.ticket.id}/parts", data={"part": "电容", "quantity": "1"}
        )
        .status_code
        == 403
    )


def test_the_site_page_reads_files_and_parts_of_all_work_orders_at_once(pages, db_session, storage):
    """The queries of the site page do not grow with the work orders on the device."""
    fac1 = pages("fac1")

    def statements() -> int:
        fac1.get("/site/DEV-T-2")  # the first request warms caches (forms, sessions)
        seen = []

        def count(*args):
            seen.append(args)

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            page = fac1.get("/site/DEV-T-2")
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        assert page.status_code == 200
        return len(seen)

    first = repair(db_session, title="第一单")
    one = statements()
    flows = [first] + [repair(db_session, title=f"第{n}单") for n in range(2, 6)]
    for flow in flows:
        fac1.fetch("/site/DEV-T-2/checkin", json={"ticket_id": flow.ticket.id})
        fac1.fetch(
            f"/site/DEV-T-2/tickets/{flow.ticket.id}/parts", data={"part": "电容", "quantity": "1"}
        )
        fac1.fetch(
            f"/site/DEV-T-2/tickets/{flow.ticket.id}/files",
            data={"files": (io.BytesIO(png_bytes()), f"{flow.ticket.number}.png", "image/png")},
        )
    assert statements() == one
    page = fac1.get("/site/DEV-T-2").text
    for flow in flows:
        box = page.split(f'data-site-ticket="{flow.ticket.id}"')[1].split("data-site-ticket=")[0]
        assert f"{flow.ticket.number}.png" in box and "电容 × 1" in box


def test_a_step_named_in_both_languages_shows_one_side(pages, db_session):
    onsite = repair(db_session).task("task_onsite")
    onsite.name = "现场处理 / On-site work"
    db_session.commit()
    assert "处理我的任务：现场处理<" in pages("fac1").get("/site/DEV-T-2").text
    assert "Open my task: On-site work<" in pages("fac1", "en").get("/site/DEV-T-2").text


def test_the_work_order_page_partial_lists_check_ins(app, pages, db_session, located):
    flow = repair(db_session)
    pages("fac1").fetch(
        "/site/DEV-T-2/checkin",
        json={"ticket_id": flow.ticket.id, "lat": PHONE_AT[0], "lng": PHONE_AT[1]},
    )
    pages("fac1").fetch("/site/DEV-T-2/checkin", json={"ticket_id": flow.ticket.id})
    checkins = list(db_session.scalars(select(CheckIn).order_by(CheckIn.id)))
    with app.test_request_context(headers={"Cookie": "paidan_lang=en"}):
        g.pop("_flask_babel", None)  # the language is chosen per request (app.i18n)
        login_user(find_user(db_session=db_session, username="desk"))
        html = render_template("site/_ticket_site.html", ticket=flow.ticket, checkins=checkins)
    display_name = find_user(db_session=db_session, username="fac1").display_name
    assert html.count(display_name) == 2
    assert " m from the device" in html and "without a position" in html


@pytest.mark.parametrize("username", ["fac1", "alice", "desk"])
def test_site_pages_are_in_one_language(pages, db_session, located, storage, username):
    from tests.crawl import (
        chinese_in_english_page,
        english_words_in_chinese_page,
        stored_strings,
        visible_texts,
    )

    flow = repair(db_session)
    pages("fac1").fetch("/site/DEV-T-2/checkin", json={"ticket_id": flow.ticket.id})
    pages("fac1").fetch(
        f"/site/DEV-T-2/tickets/{flow.ticket.id}/parts", data={"part": "电容", "quantity": "1"}
    )
    urls = ["/site/DEV-T-2"]
    if username != "alice":
        urls += ["/devices", "/devices/DEV-T-2/qr"]
    usernames = {"alice", "bob", "fac1", "desk"}
    data = [*stored_strings(), "电容"]  # the part as the engineer typed it
    for url in urls:
        page = pages(username).get(url)
        assert page.status_code == 200, url
        chinese = visible_texts(page.text)
        assert english_words_in_chinese_page(chinese, usernames) == [], url
        page = pages(username, "en").get(url)
        assert page.status_code == 200, url
        english = visible_texts(page.text)
        assert chinese_in_english_page(english, data) == [], url
