"""/api/v1/process-definitions (deploy, versions, sources) and /api/v1/process-instances
(start, read) over REST: who may do what, the audit trail, and the OpenAPI document of the
task, message, definition and instance endpoints."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy import select

from app.audit.models import AuditEntry
from tests.test_tasks_api import TRIAGE, act, assert_problem, new_ticket, open_task

DATA = Path(__file__).resolve().parent / "data"
DEFINITIONS = "/api/v1/process-definitions"
INSTANCES = "/api/v1/process-instances"
KEY = "wait_for_payment"


def bpmn(name: str = "等待付款") -> bytes:
    text = (DATA / "wait_for_payment.bpmn").read_text(encoding="utf-8")
    return text.replace('name="等待付款"', f'name="{name}"').encode("utf-8")


def deploy(api, *files: tuple[str, bytes]):
    return api.post(
        DEFINITIONS,
        data={"files": [(io.BytesIO(data), filename) for filename, data in files]},
        content_type="multipart/form-data",
    )


def audit(db_session, action: str) -> list[AuditEntry]:
    return list(
        db_session.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        )
    )


@pytest.fixture
def three_versions(as_user) -> list[dict]:
    deployed = []
    for name in ("等待付款", "等待付款（二）", "等待付款（三）"):
        response = deploy(as_user("admin"), ("wait_for_payment.bpmn", bpmn(name)))
        assert response.status_code == 201, response.json
        deployed.append(response.json[0])
    assert [d["version"] for d in deployed] == [1, 2, 3]
    return deployed


# ---------------------------------------------------------------- deploy


def test_a_deploy_is_audited_with_key_version_and_hash(as_user, db_session):
    first = deploy(as_user("admin"), ("wait_for_payment.bpmn", bpmn())).json[0]
    again = deploy(as_user("admin"), ("wait_for_payment.bpmn", bpmn())).json[0]

    assert again["id"] == first["id"]
    new, unchanged = audit(db_session, "definition.deploy")
    assert new.actor == "admin" and new.object_type == "process_definition"
    assert new.object_id == str(first["id"])
    assert new.after == {
        "key": KEY,
        "version": 1,
        "content_hash": first["content_hash"],
        "files": ["wait_for_payment.bpmn"],
        "new_version": True,
    }
    assert unchanged.after["version"] == 1 and unchanged.after["new_version"] is False


def test_a_refused_deploy_leaves_no_audit_row(as_user, db_session):
    response = deploy(as_user("admin"), ("notes.txt", b"hello"))
    assert_problem(response, 400, "notes.txt")
    assert audit(db_session, "definition.deploy") == []


# ---------------------------------------------------------------- versions and sources


def test_versions_are_listed_newest_first_and_paged(as_user, three_versions):
    response = as_user("admin").get(f"{DEFINITIONS}/{KEY}/versions")

    assert response.status_code == 200
    assert response.json["total"] == 3
    assert [d["version"] for d in response.json["items"]] == [3, 2, 1]
    assert response.json["items"][0]["name"] == "等待付款（三）"
    second_page = as_user("admin").get(f"{DEFINITIONS}/{KEY}/versions?page=2&per_page=2").json
    assert [d["version"] for d in second_page["items"]] == [1]
    assert (second_page["page"], second_page["per_page"], second_page["total"]) == (2, 2, 3)
    # the list of processes shows the latest
    latest = {d["key"]: d["version"] for d in as_user("admin").get(DEFINITIONS).json["items"]}
    assert latest[KEY] == 3


def test_one_version_and_its_sources(as_user, three_versions):
    shown = as_user("admin").get(f"{DEFINITIONS}/{KEY}/versions/2")
    assert shown.status_code == 200
    assert shown.json == three_versions[1]

    sources = as_user("admin").get(f"{DEFINITIONS}/{KEY}/versions/2/sources")

    assert sources.status_code == 200
    assert sources.json["bpmn_xml"] == bpmn("等待付款（二）").decode("utf-8")
    assert sources.json["bpmn_filename"] == "wait_for_payment.bpmn"
    assert sources.json["content_hash"] == three_versions[1]["content_hash"]
    assert (sources.json["dmn"], sources.json["forms"]) == ({}, {})


def test_the_sources_of_a_shipped_process_carry_its_decisions_and_forms(as_user):
    latest = as_user("admin").get(f"{DEFINITIONS}/it_service/versions?per_page=1").json
    version = latest["items"][0]["version"]

    sources = as_user("admin").get(f"{DEFINITIONS}/it_service/versions/{version}/sources").json

    assert 'id="it_service"' in sources["bpmn_xml"]
    assert list(sources["dmn"]) == ["assignment.dmn"]
    assert "<decision" in sources["dmn"]["assignment.dmn"]
    assert {"it_triage", "it_handle", "it_review"} <= set(sources["forms"])
    assert sources["forms"]["it_handle"]["id"] == "it_handle"


@pytest.mark.parametrize(
    ("url", "named"),
    [
        (f"{DEFINITIONS}/no_such_flow/versions", ["no_such_flow"]),
        (f"{DEFINITIONS}/no_such_flow/versions/1", ["no_such_flow", "1"]),
        (f"{DEFINITIONS}/it_service/versions/999", ["it_service", "999"]),
        (f"{DEFINITIONS}/it_service/versions/999/sources", ["it_service", "999"]),
    ],
)
def test_an_unknown_process_or_version_is_404_naming_it(as_user, url, named):
    assert_problem(as_user("admin").get(url), 404, *named)


@pytest.mark.parametrize(
    ("username", "allowed"),
    [
        ("admin", {"list", "versions", "version", "sources", "deploy"}),
        ("desk", {"list", "versions", "version"}),
        ("net1", set()),
        ("reviewer", set()),
        ("alice", set()),
    ],
)
def test_admins_see_everything_dispatchers_the_lists_and_nobody_else_anything(
    as_user, username, allowed
):
    api = as_user(username)
    answers = {
        "list": api.get(DEFINITIONS),
        "versions": api.get(f"{DEFINITIONS}/it_service/versions"),
        "version": api.get(f"{DEFINITIONS}/it_service/versions/1"),
        "sources": api.get(f"{DEFINITIONS}/it_service/versions/1/sources"),
        "deploy": deploy(api, ("wait_for_payment.bpmn", bpmn())),
    }
    for name, response in answers.items():
        if name in allowed:
            assert response.status_code in {200, 201}, (name, response.json)
        else:
            assert_problem(response, 403, "admin")


# ---------------------------------------------------------------- instances


def test_a_started_instance_is_audited(as_user, db_session):
    body = {"process_key": "it_service", "business_key": "CRM-7", "data": {"title": "外部报障"}}

    response = as_user("desk").post(INSTANCES, json=body)

    assert response.status_code == 201, response.json
    [row] = audit(db_session, "instance.start")
    assert row.actor == "desk" and row.object_id == str(response.json["id"])
    assert row.after["process_key"] == "it_service"
    assert row.after["business_key"] == "CRM-7"
    assert row.after["definition_version"] == response.json["definition_version"]
    assert row.after["data"] == {"title": "外部报障"}


def test_a_refused_start_leaves_no_audit_row(as_user, db_session):
    response = as_user("desk").post(INSTANCES, json={"process_key": "no_such_flow"})
    assert_problem(response, 404, "no_such_flow")
    assert audit(db_session, "instance.start") == []


def test_a_dispatcher_does_not_see_the_instance_of_a_work_order_it_may_not_see(as_user):
    """desk sees work orders with a task for it; once reviewer triaged this one to the network
    group, it has none, and the instance is as unknown to desk as the work order."""
    ticket = new_ticket(as_user("alice"))
    triage = open_task(as_user("reviewer"), ticket, "task_triage")
    assert act(as_user("reviewer"), triage, "complete", {"data": TRIAGE}).status_code == 200
    url = f"{INSTANCES}/{ticket['process_instance_id']}"

    assert_problem(as_user("desk").get(f"/api/v1/tickets/{ticket['id']}"), 404)
    assert_problem(as_user("desk").get(url), 404, str(ticket["process_instance_id"]))
    assert as_user("admin").get(url).status_code == 200


def test_a_dispatcher_reads_an_instance_started_over_rest(as_user):
    started = as_user("admin").post(INSTANCES, json={"process_key": "it_service", "data": {}})
    shown = as_user("desk").get(f"{INSTANCES}/{started.json['id']}")
    assert shown.status_code == 200 and shown.json["id"] == started.json["id"]


# ---------------------------------------------------------------- the OpenAPI document

MINE = ("/api/v1/tasks", "/api/v1/messages", DEFINITIONS, INSTANCES)


def operations(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    for path, item in paths.items():
        if path.startswith(MINE):
            for method, operation in item.items():
                if method != "parameters":
                    yield f"{method.upper()} {path}", item.get("parameters", []), operation


def test_every_operation_documents_its_schemas_examples_and_problems(client):
    found = list(operations(client))
    assert len(found) == 14
    for name, path_parameters, operation in found:
        responses = operation["responses"]
        success = [status for status in responses if status.startswith("2")]
        assert len(success) == 1, name
        content = responses[success[0]]["content"]["application/json"]
        assert "schema" in content and "example" in content, name
        problems = [status for status in responses if status[0] == "4"]
        assert "401" in problems, name
        for status in problems:
            assert "application/problem+json" in responses[status]["content"], (name, status)
        if "requestBody" in operation:
            [body] = operation["requestBody"]["content"].values()
            assert "schema" in body and "example" in body, name
        for parameter in path_parameters:
            assert "example" in parameter, (name, parameter["name"])
        for parameter in operation.get("parameters", []):
            if parameter["name"] not in {"page", "per_page"}:
                assert "example" in parameter["schema"], (name, parameter["name"])


def test_lists_are_paged(client):
    for name, _, operation in operations(client):
        if name in {"GET /api/v1/tasks", f"GET {DEFINITIONS}/{{key}}/versions"}:
            names = {parameter["name"] for parameter in operation["parameters"]}
            assert {"page", "per_page"} <= names, name
            example = operation["responses"]["200"]["content"]["application/json"]["example"]
            assert set(example) == {"items", "total", "page", "per_page"}, name


# ---------------------------------------------------------------- odd input


@pytest.mark.parametrize(
    ("method", "url", "body", "status"),
    [
        ("GET", "/api/v1/tasks/%00abc", None, 404),
        ("POST", "/api/v1/tasks/%00abc/claim", None, 404),
        ("POST", "/api/v1/tasks/not-a-task-id/complete", {"data": {}}, 404),
        ("GET", f"{DEFINITIONS}/a%00b/versions", None, 404),
        ("GET", f"{DEFINITIONS}/a%00b/versions/1/sources", None, 404),
        ("GET", f"{DEFINITIONS}/it_service/versions/99999999999999999999", None, 404),
        ("GET", f"{INSTANCES}/99999999999999999999999", None, 404),
        ("GET", "/api/v1/tasks?ticket_id=99999999999999999999999", None, 400),
        ("GET", "/api/v1/tasks?page=99999999999999999999999", None, 400),
        ("POST", "/api/v1/messages", {"name": "paid\x00", "correlation_key": "K"}, 400),
        ("POST", "/api/v1/messages", {"name": "paid", "correlation_key": "K\n"}, 400),
        ("POST", INSTANCES, {"process_key": "it_service", "business_key": "a\x00"}, 400),
        (
            "POST",
            "/api/v1/tasks/00000000-0000-0000-0000-000000000000/transfer",
            {"to_group": "net\x00work", "reason": "x"},
            400,
        ),
    ],
)
def test_control_characters_and_huge_numbers_are_refused_not_server_errors(
    as_user, method, url, body, status
):
    """PostgreSQL refuses NUL in text and 64-bit columns overflow: both are the caller's
    mistake (400) or name nothing (404), never a 500."""
    response = as_user("admin").request(method, url, json=body)
    assert_problem(response, status)
