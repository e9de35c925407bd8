"""The REST API's answers to wrong requests: status, problem+json that names the problem, and
no trace left behind; and the read endpoints a caller checks afterwards."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import func, select

from app.engine.models import HumanTask, ProcessEvent, ProcessInstance
from app.tickets.models import Ticket
from tests.conftest import PASSWORD

TICKETS = "/api/v1/tickets"
TRIAGE = {
    "category": "network",
    "priority": "P2",
    "region": "beijing",
    "resolution": "forward",
    "triage_note": "已确认",
}


def count(db_session, model) -> int:
    return db_session.scalar(select(func.count()).select_from(model))


def assert_problem(response, status: int, *named: str) -> dict:
    """problem+json with ``status`` whose Chinese and English messages name every ``named``."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    problem = response.json
    assert problem["status"] == status
    assert problem["detail_zh"] and problem["detail_en"]
    assert problem["detail"] == problem["detail_zh"]  # Chinese unless Accept-Language asks
    for text in named:
        assert text in problem["detail_zh"], (text, problem["detail_zh"])
        assert text in problem["detail_en"], (text, problem["detail_en"])
    return problem


def field_errors(problem: dict) -> dict:
    """The per-field errors, whether keyed by location (request schemas) or not (forms)."""
    errors = problem.get("errors") or {}
    return errors.get("json", errors) if isinstance(errors.get("json"), dict) else errors


def new_ticket(api, **fields) -> dict:
    response = api.post(TICKETS, json={"title": "VPN 无法连接", **fields})
    assert response.status_code == 201, response.json
    return response.json


def open_task(api, ticket: dict, element_id: str) -> dict:
    tasks = api.get(f"{TICKETS}/{ticket['id']}").json["open_tasks"]
    matching = [task for task in tasks if task["element_id"] == element_id]
    assert matching, f"{element_id} is not open: {[t['element_id'] for t in tasks]}"
    return matching[0]


def complete(api, task: dict, data: dict):
    return api.post(f"/api/v1/tasks/{task['id']}/complete", json={"data": data})


def instance_of(as_user, ticket: dict) -> dict:
    response = as_user("admin").get(f"/api/v1/process-instances/{ticket['process_instance_id']}")
    assert response.status_code == 200
    return response.json


# ---------------------------------------------------------------- creating a work order


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "打印机卡纸", "priority": "P9"}, "priority"),
        ({"priority": "P1"}, "title"),
        ({"title": ""}, "title"),
        ({"title": "打印机卡纸", "region": "mars"}, "region"),
        ({"title": "打印机卡纸", "custom_fields": "not an object"}, "custom_fields"),
    ],
)
def test_a_ticket_with_an_invalid_field_is_refused_naming_it(as_user, db_session, body, field):
    tickets, instances = count(db_session, Ticket), count(db_session, ProcessInstance)

    response = as_user("alice").post(TICKETS, json=body)

    # flask-smorest answers request-schema errors with 422 (see the 400 test below)
    assert response.status_code in {400, 422}
    problem = assert_problem(response, response.status_code, field)
    assert field in field_errors(problem)
    assert (count(db_session, Ticket), count(db_session, ProcessInstance)) == (tickets, instances)


def test_an_invalid_request_field_answers_400_like_other_invalid_input(as_user):
    response = as_user("alice").post(TICKETS, json={"title": "打印机卡纸", "priority": "P9"})
    assert_problem(response, 400, "priority")


def test_an_unknown_device_is_refused_naming_its_number(as_user, db_session):
    tickets = count(db_session, Ticket)
    response = as_user("alice").post(TICKETS, json={"title": "空调不制冷", "device_no": "DEV-NOPE"})
    assert_problem(response, 400, "DEV-NOPE")
    assert count(db_session, Ticket) == tickets


def test_a_known_device_is_accepted(as_user):
    ticket = new_ticket(as_user("alice"), device_no="DEV-T-1")
    assert ticket["device_no"] == "DEV-T-1"


def test_an_unknown_process_is_not_found_and_leaves_no_ticket(as_user, db_session):
    tickets, instances = count(db_session, Ticket), count(db_session, ProcessInstance)
    response = as_user("alice").post(TICKETS, json={"title": "x", "process_key": "no_such_flow"})
    assert_problem(response, 404, "no_such_flow")
    assert (count(db_session, Ticket), count(db_session, ProcessInstance)) == (tickets, instances)


# ---------------------------------------------------------------- signing in and reading


def test_a_request_without_credentials_is_401(client):
    response = client.get(TICKETS)
    assert_problem(response, 401)
    assert client.post(TICKETS, json={"title": "x"}).status_code == 401


def test_a_wrong_token_is_401_and_creates_nothing(client, db_session):
    tickets = count(db_session, Ticket)
    headers = {"Authorization": "Bearer pd_not-a-real-token"}
    assert_problem(client.get(TICKETS, headers=headers), 401)
    response = client.post(TICKETS, json={"title": "x"}, headers=headers)
    assert_problem(response, 401)
    assert count(db_session, Ticket) == tickets


def test_a_password_instead_of_a_token_is_401(client):
    """The API takes bearer tokens only; passwords go to /api/v1/auth/token."""
    basic = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    assert_problem(client.get(TICKETS, headers={"Authorization": f"Basic {basic}"}), 401)


def test_a_garbled_authorization_header_is_401(client):
    response = client.get(TICKETS, headers={"Authorization": "Bearer"})
    assert_problem(response, 401)


def test_an_unknown_ticket_is_404(as_user):
    problem = assert_problem(as_user("alice").get(f"{TICKETS}/987654"), 404, "987654")
    assert problem["title"] == "Not Found"


def test_a_requester_cannot_read_another_requesters_ticket(as_user):
    ticket = new_ticket(as_user("alice"))
    # 404, not 403: whether the id exists is none of bob's business
    assert_problem(as_user("bob").get(f"{TICKETS}/{ticket['id']}"), 404, str(ticket["id"]))
    listed = as_user("bob").get(TICKETS).json
    assert ticket["id"] not in [t["id"] for t in listed["items"]]
    assert as_user("alice").get(f"{TICKETS}/{ticket['id']}").status_code == 200


def test_a_ticket_shows_its_open_tasks_and_history(as_user):
    created = new_ticket(as_user("alice"), priority="P2", region="shanghai")
    assert created["number"].startswith("IT-")
    assert created["status"] == "open" and created["requester"] == "alice"

    # the service desk sees the triage task; the requester sees the step in current_step
    assert as_user("alice").get(f"{TICKETS}/{created['id']}").json["current_step"] == "问题分级"
    ticket = as_user("desk").get(f"{TICKETS}/{created['id']}").json

    assert [t["element_id"] for t in ticket["open_tasks"]] == ["task_triage"]
    assert ticket["open_tasks"][0]["candidate_groups"] == ["service_desk"]
    kinds = [event["event_type"] for event in ticket["history"]]
    assert kinds[0] == "process_started" and "task_created" in kinds
    started = ticket["history"][0]
    assert started["actor"] == "alice"
    assert started["data"]["priority"] == "P2" and started["data"]["region"] == "shanghai"


# ---------------------------------------------------------------- completing tasks


def test_a_select_value_outside_its_options_is_refused_and_nothing_moves(as_user, db_session):
    ticket = new_ticket(as_user("alice"))
    triage = open_task(as_user("desk"), ticket, "task_triage")
    before = instance_of(as_user, ticket)
    events = count(db_session, ProcessEvent)

    response = complete(as_user("desk"), triage, {**TRIAGE, "priority": "P9"})

    problem = assert_problem(response, 400, "priority", "it_triage")
    assert list(problem["errors"]) == ["priority"]
    assert "P1" in problem["errors"]["priority"][0]
    after = instance_of(as_user, ticket)
    assert after["version"] == before["version"]
    assert [t["element_id"] for t in after["open_tasks"]] == ["task_triage"]
    assert db_session.get(HumanTask, triage["id"]).status == "open"
    assert count(db_session, ProcessEvent) == events
    # the same task still accepts valid data
    assert complete(as_user("desk"), triage, TRIAGE).status_code == 200


def test_an_unknown_form_field_is_refused_naming_it(as_user):
    ticket = new_ticket(as_user("alice"))
    triage = open_task(as_user("desk"), ticket, "task_triage")
    before = instance_of(as_user, ticket)["version"]

    response = complete(as_user("desk"), triage, {**TRIAGE, "is_admin": True})

    problem = assert_problem(response, 400, "is_admin")
    assert list(problem["errors"]) == ["is_admin"]
    assert instance_of(as_user, ticket)["version"] == before


def test_a_missing_required_field_is_refused_naming_it(as_user):
    ticket = new_ticket(as_user("alice"))
    triage = open_task(as_user("desk"), ticket, "task_triage")
    data = {key: value for key, value in TRIAGE.items() if key != "resolution"}
    problem = assert_problem(complete(as_user("desk"), triage, data), 400, "resolution")
    assert "resolution" in problem["errors"]


def test_a_task_of_another_group_cannot_be_completed_or_even_found(as_user, db_session):
    ticket = new_ticket(as_user("alice"))
    triage = open_task(as_user("desk"), ticket, "task_triage")
    assert complete(as_user("desk"), triage, TRIAGE).status_code == 200
    handle = open_task(as_user("net1"), ticket, "task_handle")
    assert handle["candidate_groups"] == ["network"]
    version = instance_of(as_user, ticket)["version"]

    response = complete(as_user("hw1"), handle, {"solution": "不是我的", "time_spent_minutes": 1})

    assert_problem(response, 404, handle["id"])
    assert db_session.get(HumanTask, handle["id"]).status == "open"
    assert instance_of(as_user, ticket)["version"] == version
    # a requester cannot work on tasks either
    assert complete(as_user("alice"), handle, {"solution": "x"}).status_code == 404
    done = complete(as_user("net1"), handle, {"solution": "重置证书", "time_spent_minutes": 20})
    assert done.status_code == 200
    assert done.json["task"]["completed_by"] == "net1"
    assert [t["element_id"] for t in done.json["next_tasks"]] == ["task_review"]


def test_completing_a_completed_task_is_a_conflict(as_user):
    ticket = new_ticket(as_user("alice"))
    triage = open_task(as_user("desk"), ticket, "task_triage")
    first = complete(as_user("desk"), triage, TRIAGE)
    assert first.status_code == 200 and first.json["task"]["status"] == "completed"
    version = instance_of(as_user, ticket)["version"]

    second = complete(as_user("desk"), triage, TRIAGE)

    assert_problem(second, 409, triage["id"])
    assert instance_of(as_user, ticket)["version"] == version


def test_completing_an_unknown_task_is_404(as_user):
    response = complete(as_user("desk"), {"id": "00000000-0000-0000-0000-000000000000"}, {})
    assert_problem(response, 404, "00000000-0000-0000-0000-000000000000")


# ---------------------------------------------------------------- process instances


def test_an_admin_starts_an_instance_and_sees_what_it_waits_on(as_user, db_session):
    response = as_user("admin").post(
        "/api/v1/process-instances",
        json={
            "process_key": "it_service",
            "business_key": "EXT-1",
            "data": {"title": "外部系统报障", "priority": "P3", "region": "beijing"},
        },
    )

    assert response.status_code == 201, response.json
    started = response.json
    assert started["status"] == "running" and started["business_key"] == "EXT-1"
    assert started["definition_version"] >= 1
    assert "task_triage" in [e["element_id"] for e in started["active_elements"]]
    assert started["data"]["title"] == "外部系统报障"

    shown = as_user("admin").get(f"/api/v1/process-instances/{started['id']}")
    assert shown.status_code == 200
    history = shown.json["history"]
    assert history[0]["event_type"] == "process_started"
    assert history[0]["actor"] == "admin"
    assert history[0]["data"] == {"title": "外部系统报障", "priority": "P3", "region": "beijing"}
    assert shown.json["open_tasks"][0]["element_id"] == "task_triage"
    assert db_session.get(ProcessInstance, started["id"]).business_key == "EXT-1"


def test_starting_an_unknown_process_is_404_and_stores_nothing(as_user, db_session):
    instances = count(db_session, ProcessInstance)
    response = as_user("admin").post(
        "/api/v1/process-instances", json={"process_key": "no_such_flow", "data": {}}
    )
    assert_problem(response, 404, "no_such_flow")
    assert count(db_session, ProcessInstance) == instances


def test_starting_with_invalid_variable_names_is_refused(as_user, db_session):
    instances = count(db_session, ProcessInstance)
    response = as_user("admin").post(
        "/api/v1/process-instances",
        json={"process_key": "it_service", "data": {"not a name": 1}},
    )
    assert_problem(response, 400, "not a name")
    assert count(db_session, ProcessInstance) == instances


def test_instances_are_for_staff_only(as_user):
    ticket = new_ticket(as_user("alice"))
    url = f"/api/v1/process-instances/{ticket['process_instance_id']}"
    assert_problem(as_user("alice").get(url), 403)
    response = as_user("net1").post(
        "/api/v1/process-instances", json={"process_key": "it_service", "data": {}}
    )
    assert_problem(response, 403)


def test_an_unknown_instance_is_404(as_user):
    assert_problem(as_user("admin").get("/api/v1/process-instances/987654"), 404, "987654")


# ---------------------------------------------------------------- the API itself


def test_the_openapi_document_lists_the_endpoints(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    paths = response.json["paths"]
    assert "/api/v1/tickets" in paths
    assert {"get", "post"} <= set(paths["/api/v1/tickets"])
    assert "/api/v1/tasks/{task_id}/complete" in paths
    assert "/api/v1/process-definitions" in paths


@pytest.mark.parametrize(
    ("method", "url", "allowed"),
    [
        ("DELETE", TICKETS, {"GET", "POST"}),
        ("PUT", f"{TICKETS}/1", {"GET"}),
        ("GET", "/api/v1/tasks/abc/complete", {"POST"}),
    ],
)
def test_a_wrong_method_is_405_with_the_allowed_methods(as_user, method, url, allowed):
    response = as_user("alice").request(method, url)
    assert_problem(response, 405)
    assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}


def test_an_unknown_address_is_404_problem(as_user):
    assert_problem(as_user("alice").get("/api/v1/no-such-thing"), 404)


def test_a_body_that_is_not_json_is_refused(as_user):
    response = as_user("alice").post(TICKETS, data="{not json", content_type="application/json")
    problem = assert_problem(response, 400)
    assert "json" in problem["errors"]


def test_the_message_follows_accept_language(as_user):
    api = as_user("alice")
    zh = api.get(f"{TICKETS}/987654").get_json()
    api.headers = {**api.headers, "Accept-Language": "en-US,en;q=0.9"}
    en = api.get(f"{TICKETS}/987654").get_json()
    assert zh["detail"] == zh["detail_zh"] and "工单" in zh["detail"]
    assert en["detail"] == en["detail_en"] and "work order" in en["detail"]
