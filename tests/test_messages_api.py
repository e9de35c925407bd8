"""/api/v1/messages: another system (or a dispatcher) tells the one waiting instance that
something happened; the payload lands in its data, and wrong or ambiguous keys change nothing.

tests/data/wait_for_payment.bpmn: start -> wait for message `payment_received` -> user task
task_confirm (service_desk) -> end.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEntry
from app.auth.tokens import issue_system_token
from app.engine.models import ProcessEvent, ProcessInstance
from tests.conftest import Api
from tests.test_tasks_api import assert_problem, field_errors

DATA = Path(__file__).resolve().parent / "data"
MESSAGES = "/api/v1/messages"
INSTANCES = "/api/v1/process-instances"
MESSAGE = "payment_received"
PAID = {"amount": 120, "paid_by": "alipay"}


@pytest.fixture
def deployed(as_user):
    bpmn = (DATA / "wait_for_payment.bpmn").read_bytes()
    response = as_user("admin").post(
        "/api/v1/process-definitions",
        data={"files": [(io.BytesIO(bpmn), "wait_for_payment.bpmn")]},
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.json
    return response.json[0]


def start(as_user, business_key: str) -> dict:
    response = as_user("admin").post(
        INSTANCES,
        json={
            "process_key": "wait_for_payment",
            "business_key": business_key,
            "data": {"order_no": business_key},
        },
    )
    assert response.status_code == 201, response.json
    assert [e["type"] for e in response.json["active_elements"]] == ["message"]
    return response.json


def deliver(api, correlation_key: str, payload: dict | None = None, name: str = MESSAGE):
    body = {"name": name, "correlation_key": correlation_key}
    if payload is not None:
        body["payload"] = payload
    return api.post(MESSAGES, json=body)


def state(db_session) -> tuple:
    """Instance versions and the event and audit counts: a refused message changes none."""
    db_session.expire_all()
    versions = sorted(db_session.execute(select(ProcessInstance.id, ProcessInstance.version)))
    events = db_session.scalar(select(func.count()).select_from(ProcessEvent))
    audit = db_session.scalar(select(func.count()).select_from(AuditEntry))
    return versions, events, audit


def system_api(client, db_session, role: str) -> Api:
    _, token = issue_system_token(
        db_session=db_session, name=f"erp-{role}", role=role, issued_by="admin"
    )
    db_session.commit()
    api = Api(client, "admin")
    api.headers = {"Authorization": f"Bearer {token}"}
    api.username = f"system:erp-{role}"
    return api


def test_a_dispatcher_delivers_and_the_payload_lands_in_the_data(as_user, db_session, deployed):
    instance = start(as_user, "ORD-1")

    response = deliver(as_user("desk"), "ORD-1", PAID)

    assert response.status_code == 200, response.json
    delivered = response.json
    assert delivered["instance_id"] == instance["id"]
    assert delivered["business_key"] == "ORD-1" and delivered["status"] == "running"
    assert [(e["type"], e["element_id"]) for e in delivered["waiting_on"]] == [
        ("userTask", "task_confirm")
    ]
    shown = as_user("admin").get(f"{INSTANCES}/{instance['id']}").json
    assert shown["data"]["amount"] == 120 and shown["data"]["paid_by"] == "alipay"
    [received] = [e for e in shown["history"] if e["event_type"] == "message_received"]
    assert received["actor"] == "desk" and received["data"] == PAID
    [row] = db_session.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "message.deliver", AuditEntry.object_id == str(instance["id"])
        )
    ).all()
    assert row.actor == "desk" and row.source == "api"
    assert row.before == {"waiting_for": MESSAGE, "correlation_key": "ORD-1"}
    assert row.after["payload"] == PAID and row.after["waiting_on"] == ["task_confirm"]
    # it no longer waits for the message
    assert_problem(deliver(as_user("desk"), "ORD-1", PAID), 404, "ORD-1", MESSAGE)


@pytest.mark.parametrize(
    ("key", "name"),
    [("ORD-404", MESSAGE), ("ORD-2", "refund_received"), ("IT-20261126-00001", MESSAGE)],
)
def test_a_message_nobody_waits_for_is_404_and_changes_nothing(
    as_user, db_session, deployed, key, name
):
    start(as_user, "ORD-2")
    before = state(db_session)

    response = deliver(as_user("admin"), key, PAID, name=name)

    assert_problem(response, 404, key, name)
    assert state(db_session) == before


def test_an_ambiguous_key_is_409_and_changes_nothing(as_user, db_session, deployed):
    start(as_user, "ORD-3")
    start(as_user, "ORD-3")
    before = state(db_session)

    problem = assert_problem(deliver(as_user("admin"), "ORD-3", PAID), 409, "ORD-3", MESSAGE)

    assert "2" in problem["detail_en"]
    assert state(db_session) == before


def test_a_system_acting_as_dispatcher_delivers(client, as_user, db_session, deployed):
    start(as_user, "ORD-4")
    erp = system_api(client, db_session, "dispatcher")

    response = deliver(erp, "ORD-4", PAID)

    assert response.status_code == 200, response.json
    row = db_session.scalars(select(AuditEntry).where(AuditEntry.action == "message.deliver")).one()
    assert row.actor == "system:erp-dispatcher" and row.source == "api_token"


def test_only_admins_dispatchers_and_their_systems_deliver(client, as_user, db_session, deployed):
    start(as_user, "ORD-5")
    callers = [as_user(name) for name in ("net1", "reviewer", "alice")]
    callers.append(system_api(client, db_session, "handler"))
    before = state(db_session)

    for api in callers:
        assert_problem(deliver(api, "ORD-5", PAID), 403, "dispatcher")

    assert state(db_session) == before


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"correlation_key": "ORD-6"}, "name"),
        ({"name": MESSAGE}, "correlation_key"),
        ({"name": MESSAGE, "correlation_key": "ORD-6", "payload": [1, 2]}, "payload"),
        ({"name": "", "correlation_key": "ORD-6"}, "name"),
    ],
)
def test_an_invalid_message_is_refused_naming_the_field(as_user, db_session, deployed, body, named):
    start(as_user, "ORD-6")
    before = state(db_session)

    problem = assert_problem(as_user("desk").post(MESSAGES, json=body), 400, named)

    assert named in field_errors(problem)
    assert state(db_session) == before


def test_a_payload_with_a_name_no_expression_can_use_is_refused(as_user, db_session, deployed):
    start(as_user, "ORD-7")
    before = state(db_session)

    response = deliver(as_user("desk"), "ORD-7", {"not a name": 1})

    assert_problem(response, 400, "not a name")
    assert state(db_session) == before
