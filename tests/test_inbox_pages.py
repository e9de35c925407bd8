"""The inbox pages: tabs and counts per role, ordering, filters, the self-refreshing list, claiming
from the list, and the task page (form, complete, claim, give back, transfer) in both languages.

What a person may not see is checked in the HTML itself: never listed, never counted.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import time_machine
from playwright.sync_api import expect
from sqlalchemy import func, select

from app.engine.models import HumanTask, ProcessEvent
from app.extensions import db
from tests.browser import PHONE, open_as
from tests.conftest import SHANGHAI
from tests.flows import Flow
from tests.test_site_pages import repair as dispatched_repair

FORWARD = {"region": "beijing", "resolution": "forward", "triage_note": "已确认"}
HANDLED = {"solution": "重置 VPN 证书", "time_spent_minutes": 20}
CJK = re.compile(r"[\u3400-\u9fff]")


def it_task(db_session, group: str, title: str, priority: str = "P3") -> Flow:
    """A work order whose 技术组处理 task waits, unclaimed, in ``group``'s queue."""
    flow = Flow(db_session, "alice", "it_service", title=title, priority=priority)
    flow.do("task_triage", "desk", category=group, priority=priority, **FORWARD)
    return flow


def html(response, status: int = 200) -> str:
    text = response.get_data(as_text=True)
    assert response.status_code == status, text[:2000]
    return text


def tab_counts(page: str) -> dict[str, int]:
    return {tab: int(count) for tab, count in re.findall(r'id="tab-count-(\w+)"[^>]*>(\d+)<', page)}


def listed_tasks(page: str) -> list[str]:
    return re.findall(r'<li id="task-([0-9a-f-]{36})"', page)


def nav_badge(page: str) -> int:
    return int(re.search(r'data-count="inbox"[^>]*>(\d+)<', page).group(1))


# ---------------------------------------------------------------- the list


def test_tabs_and_counts_follow_the_role(db_session, pages):
    network = it_task(db_session, "network", "交换机端口故障")
    hardware = it_task(db_session, "hardware", "打印机卡纸")
    triage = Flow(db_session, "bob", "it_service", title="邮箱无法登录")

    net1 = html(pages("net1").get("/inbox"))
    assert tab_counts(net1) == {"mine": 0, "group": 1}
    assert 'data-tab="all"' not in net1
    assert nav_badge(net1) == 1
    assert "我的任务" in net1 and "组内待领" in net1

    group = html(pages("net1").get("/inbox?tab=group"))
    assert listed_tasks(group) == [network.task("task_handle").id]
    assert "交换机端口故障" in group and network.ticket.number in group

    desk = html(pages("desk").get("/inbox?tab=all"))
    assert tab_counts(desk) == {"mine": 0, "group": 1, "all": 1}
    assert listed_tasks(desk) == [triage.task("task_triage").id]

    admin = html(pages("admin").get("/inbox?tab=all"))
    open_tasks = db_session.scalar(
        select(func.count()).select_from(HumanTask).where(HumanTask.status == "open")
    )
    assert tab_counts(admin) == {"mine": 0, "group": 0, "all": open_tasks} and open_tasks == 3
    assert set(listed_tasks(admin)) == {
        network.task("task_handle").id,
        hardware.task("task_handle").id,
        triage.task("task_triage").id,
    }


def test_each_task_says_where_the_work_is(db_session, pages):
    """The work order's own address, else its device's: a field engineer sees where to go."""
    repair = dispatched_repair(db_session)  # of DEV-T-2, at 上海测试楼顶
    at_desk = it_task(db_session, "facilities", "会议室灯不亮")
    at_desk.ticket.location_address = "北京总部 3 楼会议室"
    db_session.commit()
    fac1 = pages("fac1")
    page = html(fac1.get("/inbox?tab=mine")) + html(fac1.get("/inbox?tab=group"))
    items = dict(re.findall(r'<li id="task-([0-9a-f-]{36})"(.*?)</li>', page, re.S))
    onsite = repair.task("task_onsite").id
    assert "地点：上海测试楼顶" in items[onsite], "the device's address"
    handle = at_desk.task("task_handle").id
    assert "地点：北京总部 3 楼会议室" in items[handle], "the work order's own address"


def test_another_groups_task_never_appears_and_is_never_counted_for_net1(db_session, pages):
    hardware = it_task(db_session, "hardware", "打印机卡纸-硬件组")
    hidden = hardware.task("task_handle").id
    net1 = pages("net1")
    for url in ("/inbox", "/inbox?tab=group", "/inbox?tab=all", "/inbox?q=打印机"):
        page = html(net1.get(url))
        assert hidden not in page and "打印机卡纸" not in page, url
        assert tab_counts(page) == {"mine": 0, "group": 0}, url
        assert nav_badge(page) == 0
    fragment = html(net1.htmx("/inbox/list?tab=group"))
    assert hidden not in fragment and "打印机卡纸" not in fragment
    # even once a hardware engineer holds it
    html(pages("hw1").htmx(f"/inbox/tasks/{hidden}/claim", "POST"))
    assert hidden not in html(net1.get("/inbox?tab=group"))
    assert html(net1.get(f"/tasks/{hidden}"), 404)
    assert html(net1.htmx(f"/inbox/tasks/{hidden}/claim", "POST"), 404)


def test_overdue_tasks_come_first_then_by_due_time_then_the_oldest(db_session, pages):
    start = datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)
    with time_machine.travel(start, tick=False):
        relaxed = it_task(db_session, "network", "P3 的工单", priority="P3")  # due in 24 h
        undated = Flow(db_session, "bob", "it_service", title="尚未分级")  # triage: no due time
    with time_machine.travel(start + timedelta(hours=1), tick=False):
        urgent = it_task(db_session, "network", "P1 的工单", priority="P1")  # due in 4 h
    with time_machine.travel(start + timedelta(hours=6), tick=False):
        page = html(pages("admin").get("/inbox?tab=all"))
    assert listed_tasks(page) == [
        urgent.task("task_handle").id,
        relaxed.task("task_handle").id,
        undated.task("task_triage").id,
    ]
    items = page.split('<li id="task-')[1:]
    assert 'class="tag overdue"' in items[0]
    assert 'class="overdue"' not in items[1] and "tag overdue" not in items[1]


def test_filters_by_priority_process_and_text_and_pages(db_session, pages, app):
    urgent = it_task(db_session, "network", "核心交换机宕机", priority="P1")
    it_task(db_session, "network", "会议室网口不通", priority="P3")
    net1 = pages("net1")

    page = html(net1.get("/inbox?tab=group&priority=P1"))
    assert listed_tasks(page) == [urgent.task("task_handle").id]
    assert "会议室网口不通" not in page and "符合条件的任务：1" in page
    assert tab_counts(page) == {"mine": 0, "group": 2}  # the tab counts stay unfiltered

    by_number = html(net1.get(f"/inbox?tab=group&q={urgent.ticket.number.lower()}"))
    assert listed_tasks(by_number) == [urgent.task("task_handle").id]
    assert len(listed_tasks(html(net1.get("/inbox?tab=group&q=网口")))) == 1
    assert len(listed_tasks(html(net1.get("/inbox?tab=group&process=it_service")))) == 2
    assert "没有符合条件的任务" in html(net1.get("/inbox?tab=group&process=equipment_repair"))
    assert "优先级 P9 无效" in html(net1.get("/inbox?priority=P9"), 400)

    app.config["INBOX_PAGE_SIZE"] = 1
    try:
        first = html(net1.get("/inbox?tab=group"))
        second = html(net1.get("/inbox?tab=group&page=2"))
    finally:
        app.config["INBOX_PAGE_SIZE"] = 30
    assert "第 1 页，共 2 页" in first and 'rel="next"' in first
    assert listed_tasks(first) == [urgent.task("task_handle").id]
    assert len(listed_tasks(second)) == 1 and listed_tasks(second) != listed_tasks(first)


def test_the_list_fragment_refreshes_items_counts_and_the_menu_badge(db_session, pages):
    net1 = pages("net1")
    page = html(net1.get("/inbox?tab=group&priority=P2"))
    refresh = re.search(r'hx-get="([^"]+)"\s+hx-trigger="every 20s"', page).group(1)
    assert refresh == "/inbox/list?tab=group&amp;priority=P2"

    flow = it_task(db_session, "network", "无线网络掉线", priority="P2")  # arrives meanwhile
    fragment = html(net1.htmx(refresh.replace("&amp;", "&")))
    assert "<html" not in fragment and "无线网络掉线" in fragment
    assert listed_tasks(fragment) == [flow.task("task_handle").id]
    assert '<span class="badge quiet" id="tab-count-group" hx-swap-oob="true">1</span>' in fragment
    assert '<span hx-swap-oob="innerHTML:[data-count=inbox]">1</span>' in fragment
    assert html(pages("alice").htmx("/inbox/list"), 403)


def test_claim_from_the_list_with_htmx(db_session, pages):
    flow = it_task(db_session, "network", "VPN 无法连接")
    task_id = flow.task("task_handle").id
    net1 = pages("net1")
    page = html(net1.get("/inbox?tab=group"))
    assert f'hx-post="/inbox/tasks/{task_id}/claim"' in page

    claimed = html(net1.htmx(f"/inbox/tasks/{task_id}/claim", "POST"))
    assert "由你处理" in claimed and "认领" in claimed and "hx-post" not in claimed
    assert 'id="tab-count-mine" hx-swap-oob="true">1<' in claimed
    assert 'id="tab-count-group" hx-swap-oob="true">0<' in claimed
    assert flow.task("task_handle").assignee == "net1"

    # For the other candidates it left the queue: a late click is told so where it was.
    late = pages("net_lead").htmx(f"/inbox/tasks/{task_id}/claim", "POST")
    assert late.status_code == 404
    assert html(late, 404) == (
        '<p class="error" role="alert">这项任务已不在你的待办中（可能刚被他人认领或已办结），'
        "列表会自动刷新</p>"
    )
    assert listed_tasks(html(pages("net_lead").get("/inbox?tab=group"))) == []
    assert listed_tasks(html(net1.get("/inbox?tab=mine"))) == [task_id]


# ---------------------------------------------------------------- the task page


def test_completing_through_the_task_page_moves_the_process_on(db_session, pages):
    flow = it_task(db_session, "network", "VPN 无法连接")
    task = flow.task("task_handle")
    net1 = pages("net1")
    page = html(net1.get(f"/tasks/{task.id}"))
    assert "data-form-island" in page and "data-form-submit" in page
    assert f'data-submit-url="/tasks/{task.id}/complete"' in page
    schema = json.loads(re.search(r"data-form-schema>(.*?)</script>", page, re.S).group(1))
    data = json.loads(re.search(r"data-form-data>(.*?)</script>", page, re.S).group(1))
    assert [c.get("label") for c in schema["components"] if c.get("key")] == [
        "解决方案",
        "耗时（分钟）",
    ]
    # what the form's text shows, and nothing of the process data it does not use
    assert data == {
        "ticket_no": flow.ticket.number,
        "title": "VPN 无法连接",
        "description": "",
        "triage_note": "已确认",
    }

    answer = net1.fetch(f"/tasks/{task.id}/complete", data={"data": json.dumps(HANDLED)})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.json == {"redirect": "/inbox"}
    assert list(flow.open_tasks()) == ["task_review"]
    assert "已完成：技术组处理" in html(net1.get("/inbox"))

    done = html(net1.get(f"/tasks/{task.id}"))
    assert "已由" in done and "完成" in done and "data-form-island" not in done


def test_invalid_form_data_is_refused_naming_the_field_and_nothing_changes(db_session, pages):
    flow = it_task(db_session, "network", "VPN 无法连接")
    task = flow.task("task_handle")
    events = len(flow.events())
    answer = pages("net1").fetch(
        f"/tasks/{task.id}/complete", data={"data": json.dumps({"time_spent_minutes": -5})}
    )
    assert answer.status_code == 400 and answer.mimetype == "application/problem+json"
    assert {"solution", "time_spent_minutes"} <= set(answer.json["errors"])
    assert "solution" in answer.json["detail"]
    garbled = pages("net1").fetch(f"/tasks/{task.id}/complete", data={"data": "[1, 2"})
    assert garbled.status_code == 400 and "data" in garbled.json["errors"]
    assert flow.task("task_handle").status == "open" and len(flow.events()) == events


def test_transfer_needs_a_reason_and_lands_in_the_history(db_session, pages):
    flow = it_task(db_session, "network", "VPN 无法连接")
    task_id = flow.task("task_handle").id
    net1 = pages("net1")
    assert net1.post(f"/tasks/{task_id}/claim", data={}).status_code == 302
    page = html(net1.get(f"/tasks/{task_id}"))
    assert "已认领：技术组处理" in page and "退回" in page
    assert 'value="user:net_lead"' in page and 'value="group:hardware"' in page
    assert 'value="user:hw1"' not in page  # not in the task's groups; dispatchers may pick

    refused = net1.post(
        f"/tasks/{task_id}/transfer", data={"target": "user:net_lead", "reason": "  "}
    )
    text = html(refused, 400)
    assert "请填写转派原因" in text and 'value="user:net_lead" selected' in text
    assert flow.task("task_handle").assignee == "net1"

    reason = "需要核心交换机权限"
    moved = net1.post(
        f"/tasks/{task_id}/transfer", data={"target": "user:net_lead", "reason": reason}
    )
    assert moved.status_code == 302 and moved.headers["Location"] == "/inbox"
    assert flow.task("task_handle").assignee == "net_lead"
    (event,) = flow.events("task_transferred")
    assert event.actor == "net1" and event.data["reason"] == reason
    lead_page = html(pages("net_lead").get(f"/tasks/{task_id}"))
    assert reason in lead_page and "转派给 net_lead" in lead_page
    assert "data-form-submit" in lead_page

    to_group = pages("admin").post(
        f"/tasks/{task_id}/transfer", data={"target": "group:hardware", "reason": "硬件故障"}
    )
    assert to_group.status_code == 302
    assert flow.task("task_handle").candidate_groups == ["hardware"]
    assert flow.task("task_handle").assignee is None


def test_the_page_refuses_a_transfer_reason_the_api_refuses(db_session, pages, as_user):
    flow = it_task(db_session, "network", "VPN 无法连接")
    task_id = flow.task("task_handle").id
    admin = pages("admin")
    for reason in ("很长" * 251, "含\x00控制字符"):
        refused = admin.post(
            f"/tasks/{task_id}/transfer", data={"target": "user:net1", "reason": reason}
        )
        assert "最多 500 个字" in html(refused, 400)
    api = as_user("admin").post(
        f"/api/v1/tasks/{task_id}/transfer", json={"to_user": "net1", "reason": "很长" * 251}
    )
    assert api.status_code == 400
    assert flow.task("task_handle").assignee is None and flow.events("task_transferred") == []


def test_a_requester_cannot_hand_their_acceptance_to_someone_else(db_session, pages, as_user):
    flow = Flow(
        db_session,
        "alice",
        "equipment_repair",
        title="空调外机异响",
        category="facilities",
        priority="P2",
        region="shanghai",
        device_no="DEV-T-2",
    )
    flow.do("task_dispatch", "desk", engineer="fac1", parts_needed=False, parts_list="")
    flow.do("task_onsite", "fac1", fault_cause="电容老化", work_done="更换电容")
    task_id = flow.task("task_acceptance").id
    page = pages("alice").post(
        f"/tasks/{task_id}/transfer", data={"target": "user:bob", "reason": "你帮我验收"}
    )
    assert "不能转派" in html(page, 403)
    api = as_user("alice").post(
        f"/api/v1/tasks/{task_id}/transfer", json={"to_user": "bob", "reason": "你帮我验收"}
    )
    assert api.status_code == 403
    assert flow.task("task_acceptance").assignee == "alice"
    assert html(pages("bob").get(f"/tasks/{task_id}"), 404)


def test_give_back_returns_a_claimed_task_to_the_group(db_session, pages):
    flow = it_task(db_session, "network", "VPN 无法连接")
    task_id = flow.task("task_handle").id
    net1 = pages("net1")
    net1.post(f"/tasks/{task_id}/claim", data={})
    back = net1.post(f"/tasks/{task_id}/unclaim", data={})
    assert back.status_code == 302 and back.headers["Location"] == "/inbox"
    assert flow.task("task_handle").assignee is None
    again = html(net1.post(f"/tasks/{task_id}/unclaim", data={}), 409)
    assert "没有人认领" in again


def test_someone_elses_task_is_read_only_for_a_dispatcher(db_session, pages):
    flow = Flow(db_session, "bob", "it_service", title="邮箱无法登录")
    task_id = flow.task("task_triage").id
    pages("reviewer").post(f"/tasks/{task_id}/claim", data={})
    page = html(pages("desk").get(f"/tasks/{task_id}"))
    schema = json.loads(re.search(r"data-form-schema>(.*?)</script>", page, re.S).group(1))
    assert all(c.get("readonly") for c in schema["components"] if c.get("key"))
    assert "data-form-submit" not in page and "可以查看，但不能处理" in page
    assert "转派" in page and "退回" in page  # a dispatcher still moves work
    refused = pages("desk").fetch(
        f"/tasks/{task_id}/complete", data={"data": json.dumps({"resolution": "solved"})}
    )
    assert refused.status_code == 403 and flow.task("task_triage").status == "open"


def test_requesters_have_no_inbox_and_complete_their_acceptance(db_session, pages):
    staff_task = it_task(db_session, "network", "VPN 无法连接").task("task_handle")
    alice = pages("alice")
    assert "需要以下角色之一" in html(alice.get("/inbox"), 403)
    assert html(alice.get(f"/tasks/{staff_task.id}"), 404)
    assert html(pages("fin1").get("/inbox"), 403)

    flow = Flow(
        db_session,
        "alice",
        "equipment_repair",
        title="空调外机异响",
        category="facilities",
        priority="P2",
        region="shanghai",
        device_no="DEV-T-2",
    )
    flow.do("task_dispatch", "desk", engineer="fac1", parts_needed=False, parts_list="")
    flow.do("task_onsite", "fac1", fault_cause="电容老化", work_done="更换电容")
    acceptance = flow.task("task_acceptance")
    page = html(alice.get(f"/tasks/{acceptance.id}"))
    assert "DEV-T-2" in page and "测试空调" in page and "上海测试楼顶" in page
    assert "转派" not in page and 'href="/inbox"' not in page
    answer = alice.fetch(
        f"/tasks/{acceptance.id}/complete",
        data={"data": json.dumps({"acceptance_result": "accept", "csat": 5})},
    )
    assert answer.json == {"redirect": f"/tickets/{flow.ticket.id}"}
    assert flow.instance.status == "completed"


def test_english_pages_have_english_labels(db_session, pages):
    flow = it_task(db_session, "network", "Switch port down")
    task_id = flow.task("task_handle").id
    net1 = pages("net1", "en")
    page = html(net1.get("/inbox?tab=group"))
    assert "My tasks" in page and "Group queue" in page and "Claim" in page
    assert "Offered to 网络组" in page
    # Data keeps its language (the step name, the group, the processes), and the language
    # switch names each language in itself; nothing else is Chinese.
    for data in ("技术组处理", "网络组", "IT 服务台工单", "设备报修工单", "中文"):
        page = page.replace(data, "")
    assert not CJK.findall(page), sorted(set(CJK.findall(page)))

    task_page = html(net1.get(f"/tasks/{task_id}"))
    assert "Work order" in task_page and "Complete" in task_page and "Claim" in task_page
    schema = json.loads(re.search(r"data-form-schema>(.*?)</script>", task_page, re.S).group(1))
    assert [c.get("label") for c in schema["components"] if c.get("key")] == [
        "Solution",
        "Time spent (minutes)",
    ]
    empty = html(pages("hw1", "en").get("/inbox"))
    assert "Nothing is assigned to you." in empty
    for data in ("IT 服务台工单", "设备报修工单", "中文"):
        empty = empty.replace(data, "")
    assert not CJK.findall(empty)


def test_every_claim_and_transfer_is_an_event_of_the_task(db_session, pages):
    flow = it_task(db_session, "network", "VPN 无法连接")
    task_id = flow.task("task_handle").id
    pages("net1").htmx(f"/inbox/tasks/{task_id}/claim", "POST")
    kinds = db_session.scalars(
        select(ProcessEvent.event_type).where(
            ProcessEvent.instance_id == flow.instance.id, ProcessEvent.event_type == "task_claimed"
        )
    ).all()
    assert kinds == ["task_claimed"]
    page = html(pages("net1").get(f"/tasks/{task_id}"))
    assert "认领了任务" in page


# ---------------------------------------------------------------- in a real browser


def test_on_a_phone_claim_refresh_and_complete_without_reloading(live_server, browser, screens):
    live_server.config["INBOX_REFRESH_SECONDS"] = 1
    url = live_server.config["SERVER_URL"]
    with live_server.app_context():
        urgent_id = it_task(db.session, "network", "核心交换机宕机", "P1").task("task_handle").id
        db.session.remove()
    page = open_as(browser, url, "net1", device=PHONE)
    page.goto("/inbox?tab=group")
    expect(page.locator("#tab-count-group")).to_have_text("1")
    screens.shot(page, "group-queue")

    page.click(f"#task-{urgent_id} button.primary")  # claim, in place
    expect(page.locator(f"#task-{urgent_id}")).to_contain_text("由你处理")
    expect(page.locator("#tab-count-mine")).to_have_text("1")
    expect(page.locator("#tab-count-group")).to_have_text("0")

    with live_server.app_context():  # new work arrives while the page is open
        it_task(db.session, "network", "无线网络掉线", "P2")
        db.session.remove()
    expect(page.locator("#inbox-list")).to_contain_text("无线网络掉线", timeout=10_000)
    expect(page.locator("#tab-count-group")).to_have_text("1")
    expect(page.locator('[data-count="inbox"]')).to_have_text("2")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    screens.shot(page, "refreshed")

    page.goto(f"/tasks/{urgent_id}")
    page.wait_for_selector("[data-form-island][data-ready=true]")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.click("[data-form-submit]")  # the solution is required
    expect(page.locator(".fjs-form-field-error").first).to_be_visible()
    page.get_by_label("解决方案").fill("更换核心交换机电源模块")
    screens.shot(page, "task-form")
    page.click("[data-form-submit]")
    page.wait_for_url("**/inbox")
    expect(page.locator(".flash")).to_contain_text("已完成：技术组处理")
    assert page.js_errors == []

    with live_server.app_context():
        review_id = db.session.scalar(
            select(HumanTask.id).where(HumanTask.element_id == "task_review")
        )
        db.session.remove()
    reviewer = open_as(browser, url, "reviewer", device=PHONE)
    reviewer.goto("/inbox?tab=group")
    reviewer.click(f"#task-{review_id} button.primary")
    expect(reviewer.locator("#tab-count-mine")).to_have_text("1")
    desk = open_as(browser, url, "desk", device=PHONE)
    desk.goto(f"/tasks/{review_id}")  # someone else's task: read-only, nothing to submit
    desk.wait_for_selector("[data-form-island][data-ready=true]")
    assert desk.locator("[data-form-submit]").count() == 0
    assert desk.locator(".fjs-readonly").count() >= 1
    screens.shot(desk, "read-only")
    assert reviewer.js_errors == [] and desk.js_errors == []
