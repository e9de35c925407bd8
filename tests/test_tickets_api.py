"""/api/v1/tickets: creating with every field, filtering and searching, changing fields by
role with an audit row, and the OpenAPI document of these endpoints."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app import engine
from app.audit.models import AuditEntry
from app.auth.models import Department
from app.auth.service import find_user
from app.tickets.models import Ticket
from tests.conftest import SHANGHAI
from tests.flows import Flow
from tests.test_api_errors import assert_problem
from tests.test_visibility import ONSITE, listed_ids, network_flow, patch, repair_flow

TICKETS = "/api/v1/tickets"
FULL = {
    "title": "3 号楼空调外机异响",
    "description": "运行时有金属摩擦声，夜间明显。",
    "ticket_type": "repair",
    "priority": "P2",
    "category": "facilities",
    "region": "shanghai",
    "device_no": "DEV-T-2",
    "location": {"lat": 31.2304, "lng": 121.4737, "address": "上海市黄浦区 3 号楼楼顶"},
    "contact": {"name": "王工", "phone": "+86 138-0000-0000"},
    "custom_fields": {"crm_case": "CRM-7", "floor": 3, "urgent": True},
}


def audit_rows(db_session, action: str, ticket_id: int) -> list[AuditEntry]:
    return list(
        db_session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == action, AuditEntry.object_id == str(ticket_id))
            .order_by(AuditEntry.id)
        )
    )


def count_tickets(db_session) -> int:
    return db_session.scalar(select(func.count()).select_from(Ticket))


# ---------------------------------------------------------------- creating


def test_a_work_order_is_created_with_every_field(as_user, db_session):
    department = Department(code="ops", name="运维部")
    db_session.add(department)
    db_session.flush()
    find_user(db_session=db_session, username="alice").department_id = department.id
    db_session.commit()

    response = as_user("alice").post(TICKETS, json=FULL)

    assert response.status_code == 201, response.json
    body = response.json
    assert body["number"].startswith("RP-") and body["process_key"] == "equipment_repair"
    assert body["status"] == "open" and body["requester"] == "alice"
    for name in ("title", "description", "priority", "category", "region", "device_no"):
        assert body[name] == FULL[name], name
    assert body["location"] == FULL["location"] and body["contact"] == FULL["contact"]
    assert body["custom_fields"] == FULL["custom_fields"]
    assert [t["element_id"] for t in body["history"]][:1] == ["equipment_repair"]

    ticket = db_session.get(Ticket, body["id"])
    assert ticket.department_id == department.id  # the requester's department
    assert (ticket.location_lat, ticket.location_lng) == (31.2304, 121.4737)
    assert (ticket.contact_name, ticket.contact_phone) == ("王工", "+86 138-0000-0000")
    instance = engine.get_instance(db_session=db_session, instance_id=ticket.process_instance_id)
    data = engine.instance_data(db_session=db_session, instance=instance)
    assert (data["crm_case"], data["floor"], data["urgent"]) == ("CRM-7", 3, True)

    (created,) = audit_rows(db_session, "ticket.create", ticket.id)
    assert created.actor == "alice" and created.source == "api"
    assert created.after["number"] == ticket.number
    assert created.after["department_id"] == department.id


@pytest.mark.parametrize(
    ("fields", "process_key", "prefix"),
    [
        ({}, "it_service", "IT-"),
        ({"ticket_type": "it"}, "it_service", "IT-"),
        ({"ticket_type": "repair"}, "equipment_repair", "RP-"),
        ({"process_key": "equipment_repair"}, "equipment_repair", "RP-"),
        ({"process_key": "it_service", "ticket_type": "it"}, "it_service", "IT-"),
    ],
)
def test_the_ticket_type_or_the_process_key_chooses_the_process(
    as_user, fields, process_key, prefix
):
    response = as_user("bob").post(TICKETS, json={"title": "求助", **fields})
    assert response.status_code == 201, response.json
    assert response.json["process_key"] == process_key
    assert response.json["number"].startswith(prefix)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ticket_type": "repair", "process_key": "it_service"}, "ticket_type"),
        ({"ticket_type": "hr"}, "ticket_type"),
        ({"title": "   "}, "title"),
        ({"title": "卡\x00纸"}, "title"),
        ({"description": "bell \x07"}, "description"),
        ({"location": {"lat": 91, "lng": 0}}, "location"),
        ({"location": {"lat": 0, "lng": -180.5}}, "location"),
        ({"location": {"lat": 31.2}}, "location"),
        ({"location": {"lat": 31.2, "lng": 121.4, "floor": 3}}, "location"),
        ({"contact": {"name": "王工", "phone": "call me"}}, "contact"),
        ({"custom_fields": {"title": "覆盖标题"}}, "custom_fields"),
        ({"custom_fields": {"not a name": 1}}, "custom_fields"),
        ({"custom_fields": {"nested": {"a": 1}}}, "custom_fields"),
        ({"custom_fields": {f"f{i}": i for i in range(31)}}, "custom_fields"),
    ],
)
def test_an_invalid_field_is_refused_naming_it_and_nothing_is_created(
    as_user, db_session, body, field
):
    before = count_tickets(db_session)
    response = as_user("alice").post(TICKETS, json={"title": "空调不制冷", **body})
    problem = assert_problem(response, 400, field)
    assert field in problem["errors"]["json"]
    assert count_tickets(db_session) == before


def test_the_nested_error_names_the_coordinate(as_user):
    response = as_user("alice").post(
        TICKETS, json={"title": "x", "location": {"lat": 95, "lng": 1}}
    )
    assert "lat" in assert_problem(response, 400, "location")["errors"]["json"]["location"]


# ---------------------------------------------------------------- filters and search


@pytest.fixture
def several(db_session):
    """Four orders in different states, dates, groups and assignees; returns them by name."""
    vpn = network_flow(
        db_session, title="VPN 连不上", description="提示 50%_证书过期", category="network"
    ).ticket
    printer = Flow(
        db_session, "alice", "it_service", title="打印机卡纸", priority="P1", category="printing"
    ).ticket
    aircon = repair_flow(db_session, title="空调异响", description="外机 VPN 无关").ticket
    old = Flow(db_session, "bob", "it_service", title="旧工单", priority="P4").ticket
    old.created_at = datetime(2026, 1, 5, 10, 0, tzinfo=SHANGHAI)
    db_session.commit()
    return {"vpn": vpn, "printer": printer, "aircon": aircon, "old": old}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, {"vpn", "printer", "aircon", "old"}),
        ({"status": "in_progress"}, {"vpn", "aircon"}),
        ({"status": "open"}, {"printer", "old"}),
        ({"status": "closed"}, set()),
        ({"priority": "P1"}, {"printer"}),
        ({"category": "facilities"}, {"aircon"}),
        ({"assignee": "fac1"}, {"aircon"}),
        ({"assignee": "net1"}, set()),
        ({"group": "network"}, {"vpn"}),
        ({"group": "service_desk"}, {"printer", "old"}),
        ({"created_from": "2026-01-05T00:00:00"}, {"vpn", "printer", "aircon", "old"}),
        ({"created_to": "2026-01-06T00:00:00+08:00"}, {"old"}),
        (
            {"created_from": "2026-01-05T10:00:00+08:00", "created_to": "2026-01-05T10:00:01"},
            {"old"},
        ),
        ({"created_from": "2026-01-05T10:00:01+08:00", "q": "工单"}, set()),
        ({"q": "vpn"}, {"vpn", "aircon"}),  # title or description, any case
        ({"q": "卡纸"}, {"printer"}),
        ({"q": "50%_"}, {"vpn"}),  # % and _ are text, not wildcards
        ({"q": "5%证"}, set()),
        ({"q": "VPN", "category": "network"}, {"vpn"}),
    ],
)
def test_filters_and_search(as_user, several, query, expected):
    assert listed_ids(as_user("admin"), **query) == {several[name].id for name in expected}


def test_search_finds_the_work_order_number(as_user, several):
    number = several["aircon"].number
    assert listed_ids(as_user("admin"), q=number) == {several["aircon"].id}
    assert listed_ids(as_user("admin"), q=number.lower()) == {several["aircon"].id}


def test_pages_count_the_whole_list(as_user, several):
    first = as_user("admin").get(TICKETS, query_string={"per_page": 3}).json
    second = as_user("admin").get(TICKETS, query_string={"per_page": 3, "page": 2}).json
    assert (first["total"], first["page"], first["per_page"], len(first["items"])) == (4, 1, 3, 3)
    assert len(second["items"]) == 1
    ids = [item["id"] for item in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True)  # newest first


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "done"}, "status"),
        ({"priority": "P0"}, "priority"),
        ({"created_from": "yesterday"}, "created_from"),
        (
            {"created_from": "2026-02-01T00:00:00", "created_to": "2026-01-01T00:00:00"},
            "created_from",
        ),
        ({"q": "a\x00b"}, "q"),
        ({"per_page": 500}, "per_page"),
        ({"page": 10**12}, "page"),
    ],
)
def test_an_invalid_filter_is_refused_naming_it(as_user, query, field):
    assert_problem(as_user("admin").get(TICKETS, query_string=query), 400, field)


# ---------------------------------------------------------------- changing fields by role


def test_a_dispatcher_changes_staff_fields_and_costs_with_one_audit_row(as_user, db_session):
    ticket = Flow(db_session, "alice", "it_service", title="网络慢", priority="P3").ticket
    changes = {
        "title": "网络很慢",
        "priority": "P1",
        "category": "network",
        "internal_note": "VIP",
        "location": {"lat": 39.9, "lng": 116.4, "address": "北京"},
        "contact": {"name": "李四", "phone": "010-1234 5678"},
        "parts_cost": "12.345",
        "labour_cost": 100,
        "description": "",  # unchanged: not in the audit row
    }

    response = patch(as_user("desk"), f"{TICKETS}/{ticket.id}", json=changes)

    assert response.status_code == 200, response.json
    body = response.json
    assert (body["title"], body["priority"], body["internal_note"]) == ("网络很慢", "P1", "VIP")
    assert body["location"] == changes["location"] and body["contact"] == changes["contact"]
    assert (body["parts_cost"], body["labour_cost"], body["total_cost"]) == (
        "12.35",
        "100.00",
        "112.35",
    )
    db_session.refresh(ticket)
    assert ticket.parts_cost == Decimal("12.35") and ticket.location_address == "北京"
    (row,) = audit_rows(db_session, "ticket.update", ticket.id)
    assert row.actor == "desk"
    assert set(row.before) == set(row.after) == set(changes) - {"description"}
    assert row.before["priority"] == "P3" and row.after["priority"] == "P1"
    assert row.before["location"] is None and row.after["location"]["address"] == "北京"
    assert row.before["parts_cost"] == "0.00" and row.after["parts_cost"] == "12.35"


def test_sending_the_current_values_changes_nothing_and_writes_no_audit_row(as_user, db_session):
    ticket = Flow(db_session, "alice", "it_service", title="网络慢").ticket
    response = patch(as_user("admin"), f"{TICKETS}/{ticket.id}", json={"title": " 网络慢 "})
    assert response.status_code == 200
    assert audit_rows(db_session, "ticket.update", ticket.id) == []


def test_location_and_contact_can_be_cleared(as_user, db_session):
    ticket_id = as_user("alice").post(TICKETS, json=FULL).json["id"]
    response = patch(
        as_user("admin"), f"{TICKETS}/{ticket_id}", json={"location": None, "contact": {}}
    )
    assert (response.json["location"], response.json["contact"]) == (None, None)
    ticket = db_session.get(Ticket, ticket_id)
    assert (ticket.location_lat, ticket.location_address, ticket.contact_phone) == (None,) * 3


def test_the_engineer_working_on_an_order_records_costs_until_the_work_is_handed_on(
    as_user, db_session
):
    flow = repair_flow(db_session)
    url = f"{TICKETS}/{flow.ticket.id}"

    response = patch(as_user("fac1"), url, json={"parts_cost": 35, "internal_note": "换电容"})

    assert response.status_code == 200, response.json
    assert response.json["total_cost"] == "35.00"
    flow.do("task_onsite", "fac1", **ONSITE)
    # fac1 still sees the order it worked on, but no task of it is theirs any more
    assert as_user("fac1").get(url).status_code == 200
    assert_problem(patch(as_user("fac1"), url, json={"labour_cost": 50}), 403, flow.ticket.number)
    assert len(audit_rows(db_session, "ticket.update", flow.ticket.id)) == 1


def test_an_order_offered_to_a_group_may_be_changed_by_its_members_only(as_user, db_session):
    url = f"{TICKETS}/{network_flow(db_session).ticket.id}"
    assert patch(as_user("net_lead"), url, json={"labour_cost": 20}).status_code == 200
    assert_problem(patch(as_user("hw1"), url, json={"labour_cost": 30}), 404)


def test_a_reviewer_may_not_change_costs(as_user, db_session):
    flow = network_flow(db_session)
    flow.do("task_handle", "net1", solution="重启", time_spent_minutes=5)
    url = f"{TICKETS}/{flow.ticket.id}"
    assert_problem(patch(as_user("reviewer"), url, json={"labour_cost": 1}), 400, "labour_cost")
    assert patch(as_user("reviewer"), url, json={"internal_note": "复核中"}).status_code == 200


def test_a_requester_changes_title_description_and_contact_while_the_order_is_open(
    as_user, db_session
):
    ticket_id = as_user("alice").post(TICKETS, json={"title": "网络慢"}).json["id"]
    url = f"{TICKETS}/{ticket_id}"
    changes = {
        "title": "网络很慢",
        "description": "下午更慢",
        "contact": {"name": "A", "phone": "123"},
    }

    response = patch(as_user("alice"), url, json=changes)

    assert response.status_code == 200, response.json
    assert {key: response.json[key] for key in changes} == changes
    (row,) = audit_rows(db_session, "ticket.update", ticket_id)
    assert row.actor == "alice" and set(row.after) == set(changes)
    refused = {"internal_note": "x", "priority": "P1", "category": "x", "location": None}
    for name, value in {**refused, "parts_cost": 1}.items():
        problem = assert_problem(patch(as_user("alice"), url, json={name: value}), 400, name)
        assert name in problem["errors"]["json"]
    # bob cannot even find it
    assert_problem(patch(as_user("bob"), url, json={"title": "x"}), 404, str(ticket_id))


def test_a_requester_cannot_change_an_order_already_being_worked_on(as_user, db_session):
    flow = network_flow(db_session)  # bob's, triaged
    response = patch(as_user("bob"), f"{TICKETS}/{flow.ticket.id}", json={"title": "改"})
    assert_problem(response, 409, flow.ticket.number)
    assert audit_rows(db_session, "ticket.update", flow.ticket.id) == []


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"status": "closed"}, "status"),
        ({"requester": "bob", "title": "x"}, "requester"),
        ({"number": "IT-1"}, "number"),
        ({}, "title"),  # nothing to change: the answer lists what may be changed
        ({"priority": "P7"}, "priority"),
        ({"parts_cost": -1}, "parts_cost"),
        ({"labour_cost": "1e12"}, "labour_cost"),
        ({"labour_cost": "NaN"}, "labour_cost"),
        ({"title": None}, "title"),
    ],
)
def test_unknown_or_invalid_fields_are_refused_naming_them(as_user, db_session, body, named):
    ticket = Flow(db_session, "alice", "it_service").ticket
    response = patch(as_user("admin"), f"{TICKETS}/{ticket.id}", json=body)
    assert_problem(response, 400, named)
    assert audit_rows(db_session, "ticket.update", ticket.id) == []


@pytest.mark.parametrize("ticket_id", ["987654", "0", str(2**31), str(10**30)])
def test_an_unknown_ticket_is_404_however_large_its_id(as_user, ticket_id):
    url = f"{TICKETS}/{ticket_id}"
    assert_problem(as_user("admin").get(url), 404, ticket_id)
    assert_problem(patch(as_user("admin"), url, json={"title": "x"}), 404, ticket_id)


# ---------------------------------------------------------------- the OpenAPI document


def test_every_ticket_endpoint_is_documented_with_schemas_examples_and_problems(client):
    spec = client.get("/api/v1/openapi.json").json
    operations = {
        ("post", "/api/v1/tickets"): (201, {400, 401, 404, 409, 422}),
        ("get", "/api/v1/tickets"): (200, {400, 401}),
        ("get", "/api/v1/tickets/{ticket_id}"): (200, {401, 404}),
        ("patch", "/api/v1/tickets/{ticket_id}"): (200, {400, 401, 403, 404, 409}),
    }
    for (method, path), (success, problems) in operations.items():
        operation = spec["paths"][path][method]
        answer = operation["responses"][str(success)]["content"]["application/json"]
        assert "$ref" in answer["schema"] and answer["example"], (method, path)
        for status in problems:
            content = operation["responses"][str(status)]["content"]
            assert content["application/problem+json"]["schema"]["$ref"].endswith("/Problem")
        if method in {"post", "patch"}:
            body = operation["requestBody"]["content"]["application/json"]
            assert "$ref" in body["schema"] and body["example"], (method, path)
    filters = {p["name"] for p in spec["paths"]["/api/v1/tickets"]["get"]["parameters"]}
    assert filters >= {"status", "priority", "category", "assignee", "group", "q"}
    assert filters >= {"created_from", "created_to", "page", "per_page"}
