"""Least privilege on work orders: which tickets each role finds by any route (read, list,
search, update), and which fields and history entries it is shown."""

from __future__ import annotations

import pytest

from app.auth.service import create_user
from app.auth.tokens import issue_personal_token
from app.tickets.schemas import TicketSchema, TicketSummarySchema
from tests.conftest import PASSWORD, Api
from tests.flows import Flow
from tests.test_api_errors import assert_problem

TICKETS = "/api/v1/tickets"
FINANCE_KEYS = {"id", "number", "parts_cost", "labour_cost", "total_cost", "currency"}
HIDDEN_FROM_REQUESTERS = {"internal_note", "parts_cost", "labour_cost", "total_cost", "currency"}
ALL_KEYS = set(TicketSchema().fields)
SUMMARY_KEYS = set(TicketSummarySchema().fields)
ONSITE = {"fault_cause": "压缩机电容老化", "work_done": "更换电容"}
FORWARD = {"resolution": "forward", "triage_note": "已确认"}


class NewAccount(Api):
    """A client signed in as an account made for one test (the test org has no finance user)."""

    def __init__(self, client, db_session, username: str, role: str, groups=()):
        user = create_user(
            db_session=db_session,
            username=username,
            password=PASSWORD,
            role=role,
            group_codes=list(groups),
        )
        _, token = issue_personal_token(db_session=db_session, user=user)
        db_session.commit()
        self.client = client
        self.username = username
        self.headers = {"Authorization": f"Bearer {token}"}


@pytest.fixture
def finance(as_user):
    return as_user("fin1")


def repair_flow(db_session, *, parts: bool = False, engineer: str = "fac1", **fields) -> Flow:
    """An equipment repair order dispatched to ``engineer`` (on-site task assigned to them)."""
    flow = Flow(
        db_session,
        "alice",
        "equipment_repair",
        **{
            "title": "空调外机异响",
            "category": "facilities",
            "priority": "P2",
            "region": "shanghai",
            "device_no": "DEV-T-2",
            **fields,
        },
    )
    flow.do(
        "task_dispatch",
        "desk",
        engineer=engineer,
        parts_needed=parts,
        parts_list="电容 × 1" if parts else "",
    )
    return flow


def network_flow(db_session, **fields) -> Flow:
    """An IT order forwarded to the network group (handling task offered to the group)."""
    flow = Flow(db_session, "bob", "it_service", **{"title": "VPN 断线", **fields})
    flow.do("task_triage", "desk", category="network", priority="P2", region="beijing", **FORWARD)
    return flow


def with_costs(as_user, ticket_id: int) -> None:
    response = patch(
        as_user("admin"),
        f"{TICKETS}/{ticket_id}",
        json={"internal_note": "重点客户", "parts_cost": "120.5", "labour_cost": 80},
    )
    assert response.status_code == 200, response.json


def patch(api, url: str, **kw):
    return api.request("PATCH", url, **kw)


def listed_ids(api, **query) -> set[int]:
    response = api.get(TICKETS, query_string={"per_page": 200, **query})
    assert response.status_code == 200, response.json
    return {item["id"] for item in response.json["items"]}


# ---------------------------------------------------------------- fields per role


def test_finance_receives_the_cost_fields_and_nothing_else(as_user, db_session, finance):
    flow = repair_flow(db_session)
    ticket_id = flow.ticket.id
    with_costs(as_user, ticket_id)

    shown = finance.get(f"{TICKETS}/{ticket_id}")
    listed = finance.get(TICKETS)

    assert shown.status_code == 200
    assert set(shown.json) == FINANCE_KEYS
    assert shown.json == {
        "id": ticket_id,
        "number": flow.ticket.number,
        "parts_cost": "120.50",
        "labour_cost": "80.00",
        "total_cost": "200.50",
        "currency": "CNY",
    }
    assert listed.status_code == 200 and listed.json["total"] == 1
    assert [set(item) for item in listed.json["items"]] == [FINANCE_KEYS]
    # nothing personal anywhere in the answers, not even nested
    for text in (shown.get_data(as_text=True), listed.get_data(as_text=True)):
        for secret in ("alice", "空调", "重点客户", "DEV-T-2", "fac1", "shanghai"):
            assert secret not in text


def test_finance_may_not_filter_by_what_it_is_not_shown(db_session, finance):
    repair_flow(db_session)
    for query in ({"q": "空调"}, {"assignee": "fac1"}, {"status": "open"}, {"group": "hardware"}):
        (name,) = query
        problem = assert_problem(finance.get(TICKETS, query_string=query), 400, name)
        assert name in problem["errors"]["query"]
    assert finance.get(TICKETS, query_string={"page": 1, "per_page": 5}).status_code == 200


def test_finance_changes_nothing(as_user, db_session, finance):
    ticket_id = repair_flow(db_session).ticket.id
    response = patch(finance, f"{TICKETS}/{ticket_id}", json={"parts_cost": 1})
    assert_problem(response, 403, "finance")


def test_finance_creating_a_ticket_is_shown_only_its_cost_fields(finance):
    response = finance.post(TICKETS, json={"title": "报销系统打不开"})
    assert response.status_code == 201
    assert set(response.json) == FINANCE_KEYS


def test_a_requester_never_sees_internal_notes_or_costs(as_user, db_session):
    created = as_user("alice").post(TICKETS, json={"title": "打印机卡纸"})
    assert created.status_code == 201
    ticket_id = created.json["id"]
    with_costs(as_user, ticket_id)

    answers = [
        created,
        as_user("alice").get(f"{TICKETS}/{ticket_id}"),
        patch(as_user("alice"), f"{TICKETS}/{ticket_id}", json={"title": "打印机一直卡纸"}),
    ]
    listed = as_user("alice").get(TICKETS)

    for response in answers:
        assert response.status_code in {200, 201}, response.json
        assert set(response.json) == ALL_KEYS - HIDDEN_FROM_REQUESTERS
        assert "重点客户" not in response.get_data(as_text=True)
    assert [set(item) for item in listed.json["items"]] == [SUMMARY_KEYS - HIDDEN_FROM_REQUESTERS]
    assert "重点客户" not in listed.get_data(as_text=True)


@pytest.mark.parametrize("username", ["admin", "desk", "fac1"])
def test_staff_see_every_field(as_user, db_session, username):
    flow = repair_flow(db_session)
    with_costs(as_user, flow.ticket.id)

    shown = as_user(username).get(f"{TICKETS}/{flow.ticket.id}")
    listed = as_user(username).get(TICKETS)

    assert set(shown.json) == ALL_KEYS
    assert shown.json["internal_note"] == "重点客户" and shown.json["total_cost"] == "200.50"
    assert [set(item) for item in listed.json["items"]] == [SUMMARY_KEYS]


def test_a_requester_sees_the_milestones_and_own_tasks_but_not_the_engineers_work(
    as_user, db_session
):
    flow = repair_flow(db_session)
    flow.do("task_onsite", "fac1", **ONSITE)

    waiting = as_user("alice").get(f"{TICKETS}/{flow.ticket.id}").json
    assert [task["element_id"] for task in waiting["open_tasks"]] == ["task_acceptance"]
    flow.do("task_acceptance", "alice", acceptance_result="accept", csat=5)
    done = as_user("alice").get(f"{TICKETS}/{flow.ticket.id}")

    events = [(e["event_type"], e["element_id"]) for e in done.json["history"]]
    assert events[0] == ("process_started", "equipment_repair")
    assert events[-1] == ("process_completed", "equipment_repair")
    assert ("task_created", "task_onsite") in events
    assert ("task_completed", "task_acceptance") in events
    kinds = {kind for kind, _ in events}
    assert kinds == {"process_started", "task_created", "task_completed", "process_completed"}
    # the dispatcher's and the engineer's completions (and their data) stay internal
    assert ("task_completed", "task_onsite") not in events
    assert ("task_completed", "task_dispatch") not in events
    assert "压缩机电容老化" not in done.get_data(as_text=True)
    staff = as_user("admin").get(f"{TICKETS}/{flow.ticket.id}").json
    assert ("task_completed", "task_onsite") in [
        (e["event_type"], e["element_id"]) for e in staff["history"]
    ]


def test_handlers_see_only_their_own_open_tasks_of_a_ticket(as_user, db_session):
    flow = repair_flow(db_session, parts=True)
    url = f"{TICKETS}/{flow.ticket.id}"

    def open_tasks(username):
        return sorted(t["element_id"] for t in as_user(username).get(url).json["open_tasks"])

    assert open_tasks("admin") == ["task_onsite", "task_parts"]
    assert open_tasks("fac1") == ["task_onsite"]
    assert open_tasks("parts") == ["task_parts"]
    assert open_tasks("alice") == []


# ---------------------------------------------------------------- one engineer, another's orders


@pytest.fixture
def two_engineers_orders(db_session):
    """A repair order assigned to fac1 (facilities) and an IT order of the network group
    that net1 has handled (now in review)."""
    repair = repair_flow(db_session, title="冷库温度异常", description="库温升到 -5 度")
    network = network_flow(db_session, title="核心交换机丢包", description="机房 A 丢包 30%")
    network.do("task_handle", "net1", solution="更换光模块", time_spent_minutes=30)
    return repair.ticket, network.ticket


@pytest.mark.parametrize(("engineer", "others"), [("net1", 0), ("fac1", 1), ("hw1", 0), ("hw1", 1)])
def test_an_engineer_cannot_read_list_search_or_update_another_engineers_order(
    as_user, two_engineers_orders, engineer, others
):
    own = {"fac1": 0, "net1": 1}
    ticket = two_engineers_orders[others]
    api = as_user(engineer)

    assert_problem(api.get(f"{TICKETS}/{ticket.id}"), 404, str(ticket.id))
    response = patch(api, f"{TICKETS}/{ticket.id}", json={"internal_note": "x"})
    assert_problem(response, 404, str(ticket.id))
    assert ticket.id not in listed_ids(api)
    for query in (
        {"q": ticket.number},
        {"q": ticket.title},
        {"q": ticket.description[:4]},
        {"assignee": "fac1"},
        {"group": "network"},
        {"status": ticket.status},
        {"priority": ticket.priority},
        {"category": ticket.category},
    ):
        assert ticket.id not in listed_ids(api, **query), query
    if engineer in own:
        mine = two_engineers_orders[own[engineer]]
        assert api.get(f"{TICKETS}/{mine.id}").status_code == 200
        assert listed_ids(api, q=mine.number) == {mine.id}


def test_a_group_member_finds_the_order_offered_to_the_group(as_user, db_session):
    ticket = network_flow(db_session).ticket
    assert listed_ids(as_user("net_lead"), group="network") == {ticket.id}
    assert listed_ids(as_user("hw1"), group="network") == set()
    assert listed_ids(as_user("hw_lead")) == set()


def test_a_dispatcher_reads_the_work_order_of_a_task_its_group_member_holds(
    as_user, db_session, pages
):
    """desk may move the triage task reviewer holds (a task of its group): it reads the work
    order behind it too, on the page and through the API; a handler outside does not."""
    flow = Flow(db_session, "bob", "it_service", title="会议室电视无信号", region="beijing")
    task = flow.task("task_triage")
    assert as_user("reviewer").post(f"/api/v1/tasks/{task.id}/claim").status_code == 200
    ticket_url = f"{TICKETS}/{flow.ticket.id}"
    assert as_user("desk").get(f"/api/v1/tasks/{task.id}").status_code == 200
    assert as_user("desk").get(ticket_url).status_code == 200
    assert pages("desk").get(f"/tickets/{flow.ticket.id}").status_code == 200
    assert as_user("net1").get(ticket_url).status_code == 404
