"""The work-order pages: who sees which work order and which parts of it, the timeline, notes,
the diagram's XML and markers, the list with its filters."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from decimal import Decimal

import lxml.html
import pytest
from PIL import Image
from sqlalchemy import event, select

from app.attachments.service import Upload, add_attachments
from app.auth.service import find_user
from app.engine.models import ProcessEvent
from app.site.models import CheckIn
from app.tickets.models import TicketNote
from tests.flows import Flow
from tests.test_sla_bpmn_timer import THURSDAY_9, at, policy, workday  # noqa: F401

TIMELINE = "//ol[@id='timeline']/li"
TASK_LINKS = "//section[@id='tasks']//a[contains(@class, 'button')]"
ONSITE = {"fault_cause": "排水管堵塞", "work_done": "疏通排水管"}


def repair(db_session, requester="alice", **fields):
    fields = {
        "title": "机房空调漏水",
        "category": "facilities",
        "priority": "P2",
        "region": "shanghai",
        "device_no": "DEV-T-2",
        **fields,
    }
    return Flow(db_session, requester, "equipment_repair", **fields)


def page(client, url) -> lxml.html.HtmlElement:
    answer = client.get(url)
    assert answer.status_code == 200, answer.get_data(as_text=True)[:500]
    return lxml.html.fromstring(answer.get_data(as_text=True))


def texts(root, xpath: str) -> list[str]:
    return [" ".join(" ".join(e.itertext()).split()) for e in root.xpath(xpath)]


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def note(db_session, flow, username, body, internal=False):
    from app.tickets.contributions import add_note

    user = find_user(db_session=db_session, username=username)
    add_note(db_session=db_session, user=user, ticket=flow.ticket, body=body, internal=internal)
    db_session.commit()


# ---------------------------------------------------------------- who sees what


def test_requester_sees_own_ticket_without_internal_notes_or_costs(db_session, pages):
    flow = repair(db_session)
    flow.ticket.parts_cost = Decimal("120.00")
    flow.ticket.internal_note = "重点客户，优先处理"
    db_session.commit()
    note(db_session, flow, "desk", "已联系设施组，明早上门")
    note(db_session, flow, "desk", "客户脾气急，注意沟通", internal=True)

    html = pages("alice").get(f"/tickets/{flow.ticket.id}").get_data(as_text=True)
    root = lxml.html.fromstring(html)
    assert flow.ticket.title in texts(root, "//h1")
    assert "已联系设施组，明早上门" in html
    assert "客户脾气急" not in html and "重点客户" not in html
    assert not root.xpath("//*[@data-cost]") and "120.00" not in html
    assert not root.xpath("//*[@data-internal]")
    # the requester may write a note, but not an internal one
    assert root.xpath("//*[@id='note-form']") and not root.xpath("//input[@name='internal']")

    staff = page(pages("desk"), f"/tickets/{flow.ticket.id}")
    assert [e.get("data-cost") for e in staff.xpath("//*[@data-cost]")] == [
        "parts",
        "labour",
        "total",
    ]
    assert "重点客户，优先处理" in texts(staff, "//*[@data-internal-note]")
    assert any("客户脾气急" in t for t in texts(staff, "//ol[@id='timeline']/li[@data-internal]"))


def test_another_requester_and_a_handler_of_another_group_get_404(db_session, pages):
    flow = repair(db_session)
    flow.do("task_dispatch", "desk", engineer="fac1", parts_needed=False)
    url = f"/tickets/{flow.ticket.id}"
    assert pages("bob").get(url).status_code == 404
    assert pages("hw1").get(url).status_code == 404
    assert pages("hw1").get(f"{url}/diagram.xml").status_code == 404
    assert pages("fac1").get(url).status_code == 200
    assert pages(None).get(url).status_code == 302  # to the sign-in page


def test_finance_reads_the_costs_and_nothing_else_and_adds_nothing(db_session, pages):
    flow = repair(db_session)
    client = pages("fin1")
    html = client.get(f"/tickets/{flow.ticket.id}").get_data(as_text=True)
    root = page(client, f"/tickets/{flow.ticket.id}")
    assert root.xpath("//*[@data-costs]") and flow.ticket.number in html
    assert flow.ticket.title not in html and "alice" not in html  # what and who: not finance's
    assert not root.xpath("//*[@id='note-form']") and not root.xpath("//*[@id='upload-form']")
    assert not root.xpath("//*[@data-status]") and "待处理" not in html  # nor where it stands
    listed = client.get("/tickets").get_data(as_text=True)
    assert flow.ticket.number in listed and flow.ticket.title not in listed
    answer = client.post(f"/tickets/{flow.ticket.id}/notes", data={"body": "财务备注"})
    assert answer.status_code == 403
    assert db_session.scalars(select(TicketNote)).all() == []
    # the diagram tells what the work is, as the process names it: not finance's either
    assert client.get(f"/tickets/{flow.ticket.id}/diagram.xml").status_code == 404


# ---------------------------------------------------------------- timeline and tasks


def test_timeline_shows_who_did_what_and_the_requester_a_limited_set(db_session, pages):
    flow = repair(db_session)
    flow.do("task_dispatch", "desk", engineer="fac1", parts_needed=False)
    flow.do("task_onsite", "fac1", **ONSITE)
    ticket_url = f"/tickets/{flow.ticket.id}"

    staff = page(pages("desk"), ticket_url)
    lines = texts(staff, TIMELINE)
    assert lines[0].startswith("alice 提交了工单")
    dispatch = next(line for line in lines if line.startswith("desk 完成了 派单"))
    assert "工程师 fac1" in dispatch and "需要备件 否" in dispatch
    onsite = next(line for line in lines if line.startswith("fac1 完成了 现场处理"))
    assert "故障原因 排水管堵塞" in onsite and "处理过程 疏通排水管" in onsite
    assert any("到达步骤 验收" in line for line in lines)

    alice = pages("alice")
    mine = page(alice, ticket_url)
    mine_lines = texts(mine, TIMELINE)
    assert not any("故障原因" in line or "desk 完成了" in line for line in mine_lines)
    assert any("到达步骤 现场处理" in line for line in mine_lines)
    # the acceptance is hers: the page links her to the task
    links = [a.get("href") for a in mine.xpath(TASK_LINKS)]
    assert links == [f"/tasks/{flow.task('task_acceptance').id}"]
    assert not page(pages("desk"), ticket_url).xpath(TASK_LINKS)

    english = page(pages("alice", "en"), ticket_url)
    assert texts(english, "//section[@id='progress']/h2") == ["Timeline"]
    assert texts(english, TIMELINE)[0].startswith("alice Reported the work order")


def test_sla_clock_shows_time_left_and_overdue(db_session, pages):
    from datetime import datetime, timedelta

    import time_machine

    from tests.conftest import SHANGHAI

    start = datetime(2026, 11, 26, 9, 0, tzinfo=SHANGHAI)
    with time_machine.travel(start, tick=False):
        flow = repair(db_session)
        flow.do("task_dispatch", "desk", engineer="fac1", parts_needed=False)
    url = f"/tickets/{flow.ticket.id}"
    with time_machine.travel(start + timedelta(hours=1), tick=False):
        clock = texts(page(pages("fac1"), url), "//ul[@id='sla']/li")
    assert any(line.startswith("SLA 超时") and "剩余 7 小时 0 分钟" in line for line in clock)
    assert any(line.startswith("超时提醒") for line in clock)
    with time_machine.travel(start + timedelta(hours=9, minutes=30), tick=False):
        root = page(pages("fac1", "en"), url)
    overdue = texts(root, "//ul[@id='sla']/li[@class='overdue']")
    assert any("overdue by 1 h 30 min" in line for line in overdue)
    # the requester sees no timers
    with time_machine.travel(start + timedelta(hours=1), tick=False):
        assert not page(pages("alice"), url).xpath("//ul[@id='sla']/li[@data-kind='timer']")


def test_the_list_says_who_holds_each_work_order_and_when_its_sla_is_due(
    db_session,
    pages,
    workday,  # noqa: F811
):
    # Arrival on site within a working hour: Thursday 09:00 -> due 10:00 until a check-in.
    policy(
        db_session,
        workday,
        "现场维修",
        process_key="equipment_repair",
        response_event="checkin",
        response_minutes=60,
    )
    with at(THURSDAY_9):
        flow = repair(db_session)
        flow.do("task_dispatch", "desk", engineer="fac1", parts_needed=False)
        waiting = repair(db_session, title="还没派单的工单")
    fac1 = find_user(db_session=db_session, username="fac1").display_name

    def row(root, ticket_id):
        (found,) = root.xpath(f"//li[@data-ticket='{ticket_id}']")
        return found

    with at(THURSDAY_9 + timedelta(minutes=30)):
        root = page(pages("desk"), "/tickets")
    mine = row(root, flow.ticket.id)
    assert texts(mine, ".//*[@data-holders]") == [f"处理人：{fac1}"]
    (due,) = mine.xpath(".//*[@data-sla-due]")
    assert due.text_content().strip() == "SLA 截止 2026-11-26 10:00"
    assert due.get("class") != "overdue"
    assert not row(root, waiting.ticket.id).xpath(".//*[@data-holders]"), "nobody holds it yet"
    with at(THURSDAY_9 + timedelta(minutes=90)):
        late = row(page(pages("desk", "en"), "/tickets"), flow.ticket.id)
    (due,) = late.xpath(".//*[@data-sla-due]")
    assert due.get("class") == "overdue"
    assert due.text_content().strip() == "SLA overdue since 2026-11-26 10:00"


def test_related_work_orders_on_the_device_only_when_visible(db_session, pages):
    first = repair(db_session, title="第一次报修")
    second = repair(db_session, requester="bob", title="第二次报修")
    related = texts(
        page(pages("desk"), f"/tickets/{first.ticket.id}"), "//section[@id='related']//li"
    )
    assert any("第二次报修" in line for line in related)
    assert not page(pages("alice"), f"/tickets/{first.ticket.id}").xpath("//*[@id='related']")
    assert not page(pages("bob"), f"/tickets/{second.ticket.id}").xpath("//*[@id='related']")


# ---------------------------------------------------------------- notes


def test_adding_notes_internal_ones_hidden_from_the_requester(db_session, pages):
    flow = repair(db_session)
    url = f"/tickets/{flow.ticket.id}"
    desk = pages("desk")
    answer = desk.htmx(
        f"{url}/notes",
        "POST",
        data={"csrf_token": desk.csrf, "body": "备件已订购", "internal": "1"},
    )
    assert answer.status_code == 200
    fragment = answer.get_data(as_text=True)
    assert "备件已订购" in fragment and 'id="note-form"' in fragment and "hx-swap-oob" in fragment
    answer = desk.post(f"{url}/notes", data={"body": "已安排工程师"})
    assert answer.status_code == 303
    notes = db_session.scalars(select(TicketNote).order_by(TicketNote.id)).all()
    assert [(n.body, n.internal) for n in notes] == [("备件已订购", True), ("已安排工程师", False)]

    alice = pages("alice")
    html = alice.get(url).get_data(as_text=True)
    assert "已安排工程师" in html and "备件已订购" not in html
    refused = alice.post(f"{url}/notes", data={"body": "我也想写内部备注", "internal": "1"})
    assert refused.status_code == 403
    empty = alice.htmx(f"{url}/notes", "POST", data={"csrf_token": alice.csrf, "body": "  "})
    assert empty.status_code == 400 and "处理记录不能为空" in empty.get_data(as_text=True)
    assert alice.post(f"{url}/notes", data={"body": "谢谢"}).status_code == 303
    assert pages("bob").post(f"{url}/notes", data={"body": "x"}).status_code == 404


def test_a_page_script_gets_its_problem_in_the_language_the_page_is_shown_in(db_session, pages):
    url = f"/tickets/{repair(db_session).ticket.id}/notes"
    # the language chosen on the pages (cookie), although the browser asks for Chinese
    wanted = {"Accept": "application/json", "Accept-Language": "zh-CN,zh"}
    english = pages("alice", "en").open(url, "POST", headers=wanted, data={"body": " "})
    assert english.status_code == 400 and english.mimetype == "application/problem+json"
    assert english.get_json()["detail"] == "the note is empty: write what happened, then send it"
    chinese = pages("alice").fetch(url, data={"body": " "})
    assert chinese.get_json()["detail"].startswith("处理记录不能为空")


# ---------------------------------------------------------------- diagram


def test_diagram_xml_and_markers(db_session, pages):
    flow = repair(db_session)
    flow.do("task_dispatch", "desk", engineer="fac1", parts_needed=True, parts_list="电容 × 1")
    url = f"/tickets/{flow.ticket.id}"

    answer = pages("alice").get(f"{url}/diagram.xml")
    assert answer.status_code == 200 and answer.mimetype == "application/xml"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    # opened directly, the XML runs nothing the diagram's author put in it
    assert answer.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert b"task_onsite" in answer.data
    etag = answer.headers["ETag"]
    again = pages("alice").get(f"{url}/diagram.xml", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert pages("bob").get(f"{url}/diagram.xml").status_code == 404

    root = page(pages("desk"), url)
    island = root.xpath("//*[@data-diagram]")[0]
    assert island.get("data-url") == f"{url}/diagram.xml"
    markers = json.loads(root.xpath("//*[@data-diagram-markers]")[0].text)
    assert {"task_onsite", "task_parts", "timer_repair_sla"} <= set(markers["current"])
    assert "task_dispatch" in markers["done"] and "task_onsite" not in markers["done"]
    assert any(src.endswith(".js") for src in root.xpath("//script/@src"))

    requester = json.loads(page(pages("alice"), url).xpath("//*[@data-diagram-markers]")[0].text)
    assert "timer_repair_sla" not in requester["current"]
    assert requester["done"] == ["task_dispatch"]


# ---------------------------------------------------------------- the list


def test_list_shows_what_the_role_may_see_with_filters_and_costs(db_session, pages):
    network = Flow(db_session, "alice", "it_service", title="VPN 无法连接")
    network.do(
        "task_triage",
        "desk",
        category="network",
        priority="P1",
        region="beijing",
        resolution="forward",
        triage_note="",
    )
    facilities = repair(db_session, title="空调外机异响")
    facilities.ticket.labour_cost = Decimal("200")
    db_session.commit()

    def numbers(client, query=""):
        root = page(client, f"/tickets{query}")
        return [li.get("data-ticket") for li in root.xpath("//li[@data-ticket]")]

    net1 = pages("net1")
    assert numbers(net1) == [str(network.ticket.id)]
    desk = pages("desk")
    both = {str(network.ticket.id), str(facilities.ticket.id)}
    assert set(numbers(desk)) >= both
    assert numbers(desk, "?q=外机") == [str(facilities.ticket.id)]
    assert str(network.ticket.id) not in numbers(desk, "?status=open")
    assert numbers(desk, "?priority=P4") == []

    assert not page(desk, "/tickets").xpath("//*[@data-costs]")
    assert page(desk, "/tickets").xpath("//input[@name='q']")
    fin1 = pages("fin1")
    finance = page(fin1, "/tickets")
    costs = texts(finance, f"//li[@data-ticket='{facilities.ticket.id}']//*[@data-costs]")
    assert costs and "¥ 200.00" in costs[0]
    # finance is not shown titles or states, so it cannot search or filter by them either
    # (as the API refuses it): no filters offered, and those sent narrow nothing
    assert not finance.xpath("//form[@role='search']") and not finance.xpath(
        "//span[@class='tag P1']"
    )
    assert set(numbers(fin1, "?q=外机&status=open&priority=P4")) == set(numbers(fin1))
    assert pages("alice").get("/tickets").status_code == 403


def test_a_page_of_work_orders_links_to_the_next(db_session, pages, monkeypatch):
    from app.tickets import views

    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    for n in range(3):
        repair(db_session, title=f"分页测试 {n}")
    root = page(pages("admin"), "/tickets?q=分页测试")
    assert len(root.xpath("//li[@data-ticket]")) == 2
    next_link = root.xpath("//a[@rel='next']")[0].get("href")
    assert "page=2" in next_link and re.search(r"q=%E5%88%86", next_link)
    assert len(page(pages("admin"), next_link).xpath("//li[@data-ticket]")) == 1


@pytest.mark.parametrize("language", ["zh", "en"])
def test_event_types_all_have_words(db_session, pages, language):
    flow = repair(db_session)
    flow.do("task_dispatch", "desk", engineer="fac1", parts_needed=False)
    events = db_session.scalars(
        select(ProcessEvent.event_type).where(ProcessEvent.instance_id == flow.instance.id)
    ).all()
    lines = texts(page(pages("admin", language), f"/tickets/{flow.ticket.id}"), TIMELINE)
    assert len(lines) == len(events)
    assert not any(event_type in " ".join(lines) for event_type in set(events))


def test_list_text_follows_the_page_language(app):
    from app.tickets.progress import list_text

    for language, expected in (("zh", "网络组、硬件组"), ("en", "网络组, 硬件组")):
        with app.test_request_context(headers={"Cookie": f"paidan_lang={language}"}):
            assert list_text(["网络组", "硬件组"]) == expected


def statements(db_session, client, url: str) -> int:
    """How many SQL statements one page view sends."""
    sent = []
    bind = db_session.get_bind()

    def count(*_):
        sent.append(1)

    event.listen(bind, "before_cursor_execute", count)
    try:
        assert client.get(url).status_code == 200
    finally:
        event.remove(bind, "before_cursor_execute", count)
    return len(sent)


def test_the_work_order_page_sends_as_many_statements_for_30_timeline_entries_as_for_3(
    app, db_session, pages, monkeypatch, tmp_path
):
    monkeypatch.setitem(app.config, "ATTACHMENT_DIR", str(tmp_path))
    flow = repair(db_session)
    flow.do("task_dispatch", "desk", engineer="fac1", parts_needed=False)
    people = [find_user(db_session=db_session, username=name) for name in ("desk", "fac1", "alice")]

    def add_entries(rounds: int) -> None:
        for n in range(rounds):
            user = people[n % len(people)]
            note(db_session, flow, user.username, f"进展 {n}")
            add_attachments(
                db_session=db_session,
                ticket_id=flow.ticket.id,
                actor=user.username,
                uploads=[Upload(f"{n}.png", io.BytesIO(png_bytes() + bytes([n])), "image/png")],
            )
            db_session.add(CheckIn(ticket_id=flow.ticket.id, device_no="DEV-T-2", user_id=user.id))
        db_session.commit()

    url = f"/tickets/{flow.ticket.id}"
    add_entries(1)
    few = {name: statements(db_session, pages(name), url) for name in ("desk", "alice")}
    add_entries(10)
    root = page(pages("desk"), url)
    assert len(root.xpath(TIMELINE)) >= 30
    many = {name: statements(db_session, pages(name), url) for name in ("desk", "alice")}
    # (the second view may find some rows loaded already: fewer is fine, more is an N+1)
    assert all(many[name] <= few[name] for name in few), (few, many)


# ---------------------------------------------------------------- in the browser


def test_on_a_phone_the_diagram_marks_steps_and_notes_and_photos_appear_without_reload(
    live_server, browser, screens, tmp_path
):
    from app.extensions import db
    from tests.browser import PHONE, open_as

    live_server.config["ATTACHMENT_DIR"] = str(tmp_path)
    with live_server.app_context():
        flow = repair(db.session)
        flow.do("task_dispatch", "desk", engineer="fac1", parts_needed=True, parts_list="电容")
        ticket_id = flow.ticket.id
        db.session.remove()

    page = open_as(browser, live_server.config["SERVER_URL"], "fac1", device=PHONE)
    page.goto(f"/tickets/{ticket_id}")
    page.wait_for_selector("[data-diagram][data-ready=true]")
    marked = page.evaluate(
        """() => ({
          done: [...document.querySelectorAll('.djs-element.done')].map(e => e.dataset.elementId),
          current: [...document.querySelectorAll('.djs-element.current')].map(e => e.dataset.elementId),
        })"""
    )
    assert "task_dispatch" in marked["done"]
    assert {"task_onsite", "task_parts"} <= set(marked["current"])
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the page is {width} px wide on a 375 px phone"
    screens.shot(page, "ticket-phone")

    page.fill("#note-form textarea[name=body]", "已到现场，开始检查")
    page.check("#note-form input[name=internal]")
    page.click("#note-form button[type=submit]")
    page.wait_for_selector("#timeline li[data-internal]:has-text('已到现场，开始检查')")
    assert page.input_value("#note-form textarea[name=body]") == ""
    page.click("#note-form button[type=submit]")  # empty: the browser's own check stops it
    page.fill("#note-form textarea[name=body]", "   ")
    page.click("#note-form button[type=submit]")
    page.wait_for_selector("#note-error .error")

    page.set_input_files(
        "#upload-form input[type=file]",
        files=[{"name": "现场.png", "mimeType": "image/png", "buffer": png_bytes()}],
    )
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#files-box .thumbs img")
    page.wait_for_selector("#timeline li[data-kind=file]")
    thumbnail = "document.querySelector('#files-box .thumbs img')"
    page.wait_for_function(f"{thumbnail}.complete && {thumbnail}.naturalWidth > 0")
    assert page.evaluate(f"{thumbnail}.naturalWidth") == 8, "the image is served and decodes"
    assert page.js_errors == []
    screens.shot(page, "ticket-note-and-photo-added")
