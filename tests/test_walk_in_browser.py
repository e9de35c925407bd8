"""Real people in a real browser: a repair from the phone report to the rating, in Chromium.

A requester reports a fault on a phone-sized screen with a photo; the dispatcher dispatches it
from the inbox with spare parts; the engineer sees it in the inbox, scans the device's QR code,
is checked in with the phone's position, adds a photo and completes the on-site work; the
spare-parts desk issues the parts; the requester accepts, downloads the service report and
rates the work. Every step is photographed into test-artifacts/. A second walk checks that a
handler's pages show no link, count or item that the handler may not open.
"""

from __future__ import annotations

import io
import re

from PIL import Image
from playwright.sync_api import Page, expect
from pypdf import PdfReader

from app.extensions import db
from app.site.models import CheckIn
from app.tickets.models import Device, Satisfaction, Ticket
from tests.browser import PHONE, open_as

DEVICE_POSITION = {"latitude": 31.2304, "longitude": 121.4737}
# The engineer stands about 40 m from the device.
ENGINEER_POSITION = {"latitude": 31.2307, "longitude": 121.4739, "accuracy": 15}


def photo(colour: str = "orange") -> dict:
    buffer = io.BytesIO()
    Image.new("RGB", (320, 240), colour).save(buffer, format="JPEG")
    return {"name": "fault.jpg", "mimeType": "image/jpeg", "buffer": buffer.getvalue()}


def form_ready(page: Page) -> None:
    page.wait_for_selector("[data-form-island][data-ready=true]")


def choose(page: Page, label: str, option: str) -> None:
    """Pick an option of a form-js select (a custom dropdown, not a <select>)."""
    field = page.locator(".fjs-form-field-select").filter(
        has=page.locator("label", has_text=re.compile(f"^{label}"))
    )
    field.locator(".fjs-input-group").click()
    field.locator(".fjs-dropdownlist-item", has_text=option).first.click()


def submit(page: Page, url_pattern: str) -> None:
    page.locator("[data-form-submit]").click()
    try:
        page.wait_for_url(re.compile(url_pattern))
    except Exception:
        shown = page.locator("[data-form-errors], .fjs-form-field-error").all_inner_texts()
        raise AssertionError(f"the form was not accepted: {shown} {page.js_errors}") from None
    page.wait_for_load_state("networkidle")


def open_task(page: Page, title: str, step: str, tab: str = "mine") -> None:
    page.goto(f"/inbox?tab={tab}")
    item = page.locator("li", has_text=title).filter(has_text=step).first
    expect(item).to_be_visible()
    item.locator("a[href^='/tasks/']").first.click()
    page.wait_for_url(re.compile(r"/tasks/"))
    form_ready(page)


def test_a_repair_from_the_phone_report_to_the_rating(live_server, browser, screens):
    base = live_server.config["SERVER_URL"]
    with live_server.app_context():
        device = db.session.scalar(db.select(Device).where(Device.device_no == "DEV-T-2"))
        device.lat, device.lng = DEVICE_POSITION["latitude"], DEVICE_POSITION["longitude"]
        db.session.commit()
    title = "空调外机异响，制冷效果差"

    # 1. The requester reports the fault on a phone, with a photo.
    alice = open_as(browser, base, "alice", device=PHONE)
    alice.goto("/portal/new/equipment_repair?device_no=DEV-T-2")
    form_ready(alice)
    alice.get_by_label("标题").fill(title)
    alice.get_by_label("问题描述").fill("外机运行时有金属撞击声，室内温度降不下来。")
    choose(alice, "报修类别", "设施")
    choose(alice, "优先级", "P2 高")
    alice.set_input_files("input[type=file][name=files]", files=[photo()])
    screens.shot(alice, "requester-reports-on-phone", at=alice.locator("[data-form-submit]"))
    submit(alice, r"/tickets/\d+$")
    ticket_url = alice.url
    ticket_id = int(ticket_url.rsplit("/", 1)[1])
    expect(alice.locator("h1")).to_contain_text(title)
    expect(alice.locator("img[src^='/attachments/']").first).to_be_visible()
    screens.shot(alice, "requester-sees-the-work-order")

    # 2. The dispatcher dispatches it from the inbox to fac1, with spare parts.
    desk = open_as(browser, base, "desk")
    open_task(desk, title, "派单", tab="group")
    choose(desk, "工程师", "fac1")
    desk.get_by_label("需要备件").check()
    desk.get_by_label("备件清单").fill("启动电容 35μF × 1")
    screens.shot(desk, "dispatcher-dispatches")
    submit(desk, r"/inbox")

    # 3. The engineer sees it in the inbox on the phone, scans the QR code, checks in.
    fac1 = open_as(browser, base, "fac1", device=PHONE, position=ENGINEER_POSITION)
    fac1.goto("/inbox")
    expect(fac1.locator("li", has_text=title).first).to_be_visible()
    screens.shot(fac1, "engineer-inbox-on-phone")
    fac1.goto("/devices/DEV-T-2/qr")
    expect(fac1.locator("svg").first).to_be_visible()
    screens.shot(fac1, "device-qr-code")
    scanned = re.search(r"https?://[^\s\"<]+/site/DEV-T-2[^\s\"<]*", fac1.content()).group(0)
    fac1.goto(scanned)
    expect(fac1.get_by_text(re.compile("已签到"))).to_be_visible()
    screens.shot(fac1, "engineer-checked-in-at-the-site")
    with live_server.app_context():
        checkin = db.session.scalar(db.select(CheckIn).where(CheckIn.ticket_id == ticket_id))
        assert checkin is not None and checkin.lat == ENGINEER_POSITION["latitude"]
        assert 20 < checkin.distance_m < 80

    # ... adds a photo of the opened unit, and completes the on-site work.
    site_files = fac1.locator("input[type=file]").first
    site_files.set_input_files(files=[photo("gray")])
    fac1.locator("form", has=site_files).locator("button[type=submit]").click()
    # the requester's photo and the engineer's
    expect(fac1.locator(f"#files-{ticket_id} .thumbs img")).to_have_count(2)
    screens.shot(fac1, "engineer-adds-a-photo", at=fac1.locator(f"#files-{ticket_id}"))
    fac1.locator("a[href^='/tasks/']").first.click()
    form_ready(fac1)
    fac1.get_by_label("故障原因").fill("启动电容老化，风扇叶片松动")
    fac1.get_by_label("处理过程").fill("更换启动电容，紧固风扇叶片，试运行 30 分钟正常")
    screens.shot(fac1, "engineer-completes-on-site-work", at=fac1.locator("[data-form-submit]"))
    submit(fac1, r"/inbox")

    # 4. The spare-parts desk issues the parts.
    parts = open_as(browser, base, "parts")
    open_task(parts, title, "备件申领", tab="group")
    parts.get_by_label("备件已出库").check()
    submit(parts, r"/inbox")

    # 5. The requester accepts the work: it is archived.
    alice.goto("/portal")
    your_turn = alice.locator("a[href^='/tasks/']").first
    expect(your_turn).to_be_visible()
    screens.shot(alice, "requester-sees-it-is-their-turn")
    your_turn.click()
    form_ready(alice)
    choose(alice, "验收结果", "通过")
    alice.get_by_label("验收意见").fill("运转正常，噪音消失")
    submit(alice, r"/tickets/\d+$")
    expect(alice.get_by_text("已归档").first).to_be_visible()
    screens.shot(alice, "requester-accepted-work-order-archived")

    # 6. The service report downloads from the work-order page, in Chinese.
    link = alice.locator(f"a[href='/tickets/{ticket_id}/report.pdf']").first
    expect(link).to_be_visible()
    with alice.expect_download() as download:
        link.click()
    pdf_path = screens.folder / "service-report.pdf"
    download.value.save_as(pdf_path)
    text = "".join(page.extract_text() for page in PdfReader(pdf_path).pages)
    assert ("服务报告" in text and title in text and "fac1" in text) or "现场处理" in text

    # 7. The requester rates the work.
    alice.goto(ticket_url)
    alice.locator(f"label[for=rating-{ticket_id}-5]").click()
    expect(alice.locator("input[name=rating][value='5']")).to_be_checked()
    alice.locator("textarea[name=comment]").fill("响应快，修得好")
    alice.locator("form", has=alice.locator("input[name=rating]")).locator(
        "button[type=submit]"
    ).click()
    expect(alice.get_by_text("响应快，修得好").first).to_be_visible()
    screens.shot(alice, "requester-rated")
    with live_server.app_context():
        rating = db.session.get(Satisfaction, ticket_id)
        assert rating.rating == 5 and rating.rated_by == "alice"
        assert db.session.get(Ticket, ticket_id).status == "closed"

    for page in (alice, desk, fac1, parts):
        assert page.js_errors == [], page.js_errors


def test_a_handler_sees_no_link_count_or_item_they_may_not_open(live_server, browser, screens):
    base = live_server.config["SERVER_URL"]
    requester = open_as(browser, base, "bob", device=PHONE)
    for title, category in (("核心交换机端口故障", "网络"), ("会议室空调漏水", "设施")):
        requester.goto("/portal/new/it_service")
        form_ready(requester)
        requester.get_by_label("标题").fill(title)
        requester.get_by_label("问题描述").fill(f"{category}问题，请尽快处理")
        choose(requester, "区域", "北京")
        submit(requester, r"/tickets/\d+$")
    desk = open_as(browser, base, "desk")
    for title, category in (("核心交换机端口故障", "网络"), ("会议室空调漏水", "设施")):
        open_task(desk, title, "问题分级", tab="group")
        choose(desk, "问题类别", category)
        choose(desk, "处理方式", "转技术组")
        submit(desk, r"/inbox")

    net1 = open_as(browser, base, "net1")
    net1.goto("/inbox?tab=group")
    expect(net1.locator("li", has_text="核心交换机端口故障").first).to_be_visible()
    expect(net1.get_by_text("会议室空调漏水")).to_have_count(0)
    badge = net1.locator("[data-count=inbox]").first
    assert badge.inner_text().strip() == "1"
    screens.shot(net1, "network-engineer-inbox")
    for path in ("/inbox", "/inbox?tab=group", "/tickets"):
        net1.goto(path)
        hrefs = net1.eval_on_selector_all(
            "a[href^='/']", "links => links.map(a => a.getAttribute('href'))"
        )
        for href in set(hrefs):
            if href.startswith(("/logout", "/lang/")):
                continue
            assert net1.request.get(base + href).status == 200, f"{path} links to {href}"
    net1.goto("/tickets")
    expect(net1.get_by_text("会议室空调漏水")).to_have_count(0)
    assert net1.js_errors == []
