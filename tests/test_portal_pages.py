"""The requester portal: reporting a fault with photos and a position, my reports with what waits
for me, and the satisfaction rating of an archived work order."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from flask_login import login_user
from PIL import Image
from sqlalchemy import func, select

from app.attachments.models import Attachment
from app.audit.models import AuditEntry
from app.auth.service import find_user
from app.tickets.models import Satisfaction, Ticket
from tests.flows import Flow

REPORT = {
    "title": "打印机卡纸",
    "description": "三楼打印机每次打印都卡纸",
    "category": "hardware",
    "priority": "P3",
    "region": "beijing",
    "device_no": "DEV-T-1",
    "extra": None,
}


@pytest.fixture
def storage(app, tmp_path, monkeypatch) -> Path:
    """Attachments go to a folder of the test's own."""
    monkeypatch.setitem(app.config, "ATTACHMENT_DIR", str(tmp_path))
    return tmp_path


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def report_data(**changes) -> dict:
    data = {key: value for key, value in REPORT.items() if value is not None}
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def count(db_session, model) -> int:
    return db_session.scalar(select(func.count()).select_from(model))


def stored_files(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


def to_acceptance(db_session, requester="alice", **fields) -> Flow:
    flow = Flow(
        db_session,
        requester,
        "equipment_repair",
        category="facilities",
        priority="P2",
        region="shanghai",
        device_no="DEV-T-2",
        **fields,
    )
    flow.do("task_dispatch", "desk", engineer="fac1", parts_needed=False)
    flow.do("task_onsite", "fac1", fault_cause="电容老化", work_done="更换电容")
    return flow


def closed_ticket(db_session, requester="alice", csat=None) -> Flow:
    flow = to_acceptance(db_session, requester, title="空调不制冷")
    extra = {"csat": csat} if csat is not None else {}
    flow.do("task_acceptance", requester, acceptance_result="accept", **extra)
    assert flow.ticket.status == "closed"
    return flow


# ---------------------------------------------------------------- reporting


def test_report_with_a_photo_and_a_position_creates_the_ticket_and_its_attachment(
    pages, db_session, storage
):
    alice = pages("alice")
    answer = alice.fetch(
        "/portal/new/equipment_repair",
        data={
            "data": json.dumps(report_data()),
            "address": "北京测试机房 3 楼",
            "lat": "39.9042",
            "lng": "116.4074",
            "files": (io.BytesIO(png_bytes()), "卡纸.png", "image/png"),
        },
    )
    assert answer.status_code == 200, answer.get_json()
    ticket = db_session.get(Ticket, answer.get_json()["ticket_id"])
    assert answer.get_json()["redirect"] == f"/tickets/{ticket.id}"
    assert ticket.title == "打印机卡纸" and ticket.device_no == "DEV-T-1"
    assert ticket.requester.username == "alice" and ticket.process_instance_id
    assert (ticket.location_address, ticket.location_lat, ticket.location_lng) == (
        "北京测试机房 3 楼",
        pytest.approx(39.9042),
        pytest.approx(116.4074),
    )
    [photo] = db_session.scalars(select(Attachment).where(Attachment.ticket_id == ticket.id))
    assert (photo.kind, photo.filename, photo.content_type) == ("image", "卡纸.png", "image/png")
    assert len(stored_files(storage)) == 1


def test_fields_that_are_not_ticket_columns_become_custom_fields():
    from app.portal.service import ticket_arguments

    arguments = ticket_arguments({**report_data(), "floor": "3F", "device_no": ""})
    assert arguments["custom_fields"] == {"floor": "3F"}
    assert "device_no" not in arguments and arguments["title"] == "打印机卡纸"


def test_a_missing_title_is_refused_naming_the_field_and_nothing_is_stored(
    pages, db_session, storage
):
    before = count(db_session, Ticket)
    answer = pages("alice").fetch(
        "/portal/new/equipment_repair",
        data={
            "data": json.dumps(report_data(title="")),
            "files": (io.BytesIO(png_bytes()), "photo.png", "image/png"),
        },
    )
    assert answer.status_code == 400
    problem = answer.get_json()
    assert "title" in problem["errors"] and "title" in problem["detail"]
    assert count(db_session, Ticket) == before
    assert stored_files(storage) == []


def test_a_refused_file_leaves_no_ticket_and_no_attachment(pages, db_session, storage):
    tickets, attachments = count(db_session, Ticket), count(db_session, Attachment)
    answer = pages("alice").fetch(
        "/portal/new/equipment_repair",
        data={
            "data": json.dumps(report_data()),
            "files": [
                (io.BytesIO(png_bytes()), "good.png", "image/png"),
                (io.BytesIO(b"MZ\x90\x00" + b"\x00" * 64), "setup.exe", "application/octet-stream"),
            ],
        },
    )
    assert answer.status_code == 400
    assert ".exe" in answer.get_json()["detail"]
    assert count(db_session, Ticket) == tickets
    assert count(db_session, Attachment) == attachments
    assert stored_files(storage) == []


def test_position_out_of_range_is_refused(pages, db_session, storage):
    answer = pages("alice").fetch(
        "/portal/new/equipment_repair",
        data={"data": json.dumps(report_data()), "lat": "123", "lng": "116"},
    )
    assert answer.status_code == 400 and "lat" in answer.get_json()["errors"]


def test_staff_who_report_a_fault_can_follow_it(pages, db_session):
    net1 = pages("net1")
    answer = net1.fetch(
        "/portal/new/it_service",
        data={
            "data": json.dumps(
                {"title": "我的显示器闪烁", "description": "一直闪", "region": "beijing"}
            )
        },
    )
    assert answer.status_code == 200, answer.get_json()
    ticket_url = answer.get_json()["redirect"]
    page = net1.get(ticket_url)
    assert page.status_code == 200 and "我的显示器闪烁" in page.text
    assert f'href="{ticket_url}"' in net1.get("/portal").text
    assert pages("hw1").get(ticket_url).status_code == 404  # still nobody else's


def test_choosing_a_type_lists_the_deployed_start_forms_in_the_page_language(pages):
    chinese = pages("alice").get("/portal/new").get_data(as_text=True)
    assert "/portal/new/equipment_repair" in chinese and "/portal/new/it_service" in chinese
    assert "设备报修" in chinese
    english = pages("alice", "en").get("/portal/new").get_data(as_text=True)
    assert "Equipment repair" in english and "IT service request" in english


def test_the_start_form_is_localized_and_prefilled_from_the_device(pages):
    page = pages("alice", "en").get("/portal/new/equipment_repair?device_no=DEV-T-2")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    schema = json.loads(html.split("data-form-schema>")[1].split("</script>")[0])
    data = json.loads(html.split("data-form-data>")[1].split("</script>")[0])
    labels = {c["key"]: c["label"] for c in schema["components"] if c.get("key")}
    assert labels["title"] == "Title" and all(c["id"] == c["key"] for c in schema["components"])
    assert data == {"device_no": "DEV-T-2", "region": "shanghai"}
    assert 'value="上海测试楼顶"' in html  # the device's address
    assert 'capture="environment"' in html and 'name="lat" data-extra' in html


def test_unknown_types_are_404_and_finance_reports_nothing(pages):
    assert pages("alice").get("/portal/new/no_such_process").status_code == 404
    finance = pages("fin1")
    assert finance.get("/portal/new").status_code == 403
    assert finance.get("/portal/new/it_service").status_code == 403


# ---------------------------------------------------------------- my reports


def test_my_reports_show_only_my_own_work_orders(pages, db_session):
    mine = Flow(db_session, "alice", "it_service", title="爱丽丝的电脑蓝屏")
    theirs = Flow(db_session, "bob", "it_service", title="鲍勃的键盘失灵")
    html = pages("alice").get("/portal").get_data(as_text=True)
    assert "爱丽丝的电脑蓝屏" in html and f"/tickets/{mine.ticket.id}" in html
    assert "鲍勃的键盘失灵" not in html and f"/tickets/{theirs.ticket.id}" not in html


def test_my_turn_links_the_acceptance_task(pages, db_session):
    flow = to_acceptance(db_session, title="门禁刷卡无反应")
    task = flow.task("task_acceptance")
    html = pages("alice").get("/portal").get_data(as_text=True)
    assert f'href="/tasks/{task.id}" data-turn' in html
    assert "轮到你了：验收" in html
    other = pages("bob").get("/portal").get_data(as_text=True)
    assert f"/tasks/{task.id}" not in other
    # A step an admin named in both languages shows the page language's side.
    task.name = "验收 / Acceptance"
    db_session.commit()
    assert "Your turn: Acceptance<" in pages("alice", "en").get("/portal").text
    assert "轮到你了：验收<" in pages("alice").get("/portal").text


def test_archived_and_unrated_work_orders_ask_for_a_rating(pages, db_session, storage):
    flow = closed_ticket(db_session)
    alice = pages("alice")
    assert f'href="/tickets/{flow.ticket.id}#rating" data-rate' in alice.get("/portal").text
    answer = alice.post(f"/portal/tickets/{flow.ticket.id}/rating", data={"rating": "5"})
    assert answer.status_code == 302
    assert "data-rate" not in alice.get("/portal").text


# ---------------------------------------------------------------- rating


def test_rating_rules(pages, db_session, storage):
    flow = closed_ticket(db_session)
    url = f"/portal/tickets/{flow.ticket.id}/rating"
    assert pages("bob").post(url, data={"rating": "5"}).status_code == 404
    assert pages("fac1").post(url, data={"rating": "5"}).status_code == 403
    alice = pages("alice")
    for wrong in ("0", "6", "", "4.5"):
        answer = alice.htmx(url, "POST", data={"rating": wrong})
        assert answer.status_code == 400, wrong
        assert "必须是 1 到 5 的整数" in answer.text
    assert db_session.get(Satisfaction, flow.ticket.id) is None

    answer = alice.htmx(url, "POST", data={"rating": "4", "comment": "师傅很专业"})
    assert answer.status_code == 200
    assert 'data-rating="4"' in answer.text and "师傅很专业" in answer.text
    db_session.expire_all()
    rating = db_session.get(Satisfaction, flow.ticket.id)
    assert (rating.rating, rating.comment, rating.rated_by) == (4, "师傅很专业", "alice")
    audit = db_session.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "ticket.rate", AuditEntry.object_id == str(flow.ticket.id)
        )
    ).one()
    assert audit.actor == "alice" and audit.after == {"rating": 4, "comment": "师傅很专业"}

    again = alice.fetch(url, data={"rating": "5"})
    assert again.status_code == 409
    assert db_session.get(Satisfaction, flow.ticket.id).rating == 4


def test_the_work_order_page_offers_the_rating_and_then_shows_it(pages, db_session, storage):
    flow = closed_ticket(db_session, csat=5)
    alice = pages("alice")
    page = alice.get(f"/tickets/{flow.ticket.id}").text
    assert 'id="rating"' in page and 'value="5" required checked' in page
    assert 'id="rating"' not in pages("fac1").get(f"/tickets/{flow.ticket.id}").text

    def reports() -> int:
        return db_session.scalar(
            select(func.count()).where(
                Attachment.ticket_id == flow.ticket.id, Attachment.kind == "service_report"
            )
        )

    before = reports()
    alice.post(f"/portal/tickets/{flow.ticket.id}/rating", data={"rating": "5", "comment": "好"})
    page = alice.get(f"/tickets/{flow.ticket.id}").text
    assert 'data-rating="5"' in page and '<form method="post" action="/portal' not in page
    # The service report is made again, so that it shows the rating.
    assert reports() == before + 1


def test_an_open_work_order_cannot_be_rated(pages, db_session):
    flow = to_acceptance(db_session)
    answer = pages("alice").fetch(f"/portal/tickets/{flow.ticket.id}/rating", data={"rating": "5"})
    assert answer.status_code == 409
    assert "archived" in answer.get_json()["detail_en"]


def render_rating(app, ticket, satisfaction=None, username="alice", language="zh") -> str:
    """The partial as the work-order page includes it, for a signed-in user."""
    from flask import g, render_template

    from app.extensions import db

    with app.test_request_context(headers={"Cookie": f"paidan_lang={language}"}):
        g.pop("_flask_babel", None)  # the language is chosen per request (app.i18n)
        login_user(find_user(db_session=db.session, username=username))
        return render_template("portal/_rating.html", ticket=ticket, satisfaction=satisfaction)


def test_the_rating_form_starts_from_the_score_given_at_acceptance(app, db_session):
    flow = closed_ticket(db_session, csat=4)
    html = render_rating(app, flow.ticket)
    assert 'value="4" required checked' in html
    assert 'value="5" required >' in html or 'value="5" required>' in html
    assert render_rating(app, flow.ticket, username="bob").strip() == ""


def test_the_rating_shows_once_given(app, db_session):
    flow = closed_ticket(db_session)
    rating = Satisfaction(ticket_id=flow.ticket.id, rating=3, comment="一般", rated_by="alice")
    html = render_rating(app, flow.ticket, rating, username="fac1")
    assert 'data-rating="3"' in html and "★★★☆☆" in html and "<form" not in html


@pytest.mark.parametrize("username", ["alice", "fac1"])
def test_portal_pages_are_in_one_language(app, pages, db_session, username):
    from tests.crawl import (
        chinese_in_english_page,
        english_words_in_chinese_page,
        stored_strings,
        visible_texts,
    )

    flow = closed_ticket(db_session)
    to_acceptance(db_session, title="门禁刷卡无反应")
    usernames = {"alice", "bob", "fac1", "desk"}
    for url in ("/portal", "/portal/new", "/portal/new/equipment_repair?device_no=DEV-T-2"):
        page = pages(username).get(url)
        assert page.status_code == 200, url
        chinese = visible_texts(page.text)
        assert english_words_in_chinese_page(chinese, usernames) == [], url
        page = pages(username, "en").get(url)
        assert page.status_code == 200, url
        english = visible_texts(page.text)
        assert chinese_in_english_page(english, stored_strings()) == [], url
    rating = Satisfaction(ticket_id=flow.ticket.id, rating=5, comment="", rated_by="alice")
    for satisfaction in (None, rating):
        chinese = render_rating(app, flow.ticket, satisfaction, language="zh")
        assert english_words_in_chinese_page(visible_texts(chinese), usernames) == []
        english = render_rating(app, flow.ticket, satisfaction, language="en")
        assert "How satisfied" in english or "Rated" in english
        assert chinese_in_english_page(visible_texts(english), stored_strings()) == []
