"""Idempotency-Key on POST /api/v1/tickets: a retry answers the first result and creates
nothing; another body under the same key is a conflict; keys are per caller; and two
identical requests at the same moment, over real HTTP, create one work order."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from copy import copy

import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from app.audit.models import AuditEntry
from app.auth.service import find_user
from app.extensions import db
from app.integrations.idempotency import IN_PROGRESS, request_hash
from app.integrations.models import IdempotencyRecord
from app.tickets.models import Ticket
from tests.conftest import auth_header
from tests.test_api_errors import assert_problem

TICKETS = "/api/v1/tickets"
BODY = {"title": "CRM 转来：投影仪无信号", "priority": "P2", "custom_fields": {"crm_case": "C-1"}}


def count(db_session, model, *where) -> int:
    return db_session.scalar(select(func.count()).select_from(model).where(*where))


def post(api, body: dict | str, key: str | None, **kw):
    """POST as ``api``'s user with the key (Api.request also drops the previous request's user)."""
    keyed = copy(api)
    keyed.headers = {**api.headers, **({"Idempotency-Key": key} if key is not None else {})}
    if isinstance(body, str):
        return keyed.post(TICKETS, data=body, content_type="application/json", **kw)
    return keyed.post(TICKETS, json=body, **kw)


def test_the_same_key_twice_creates_one_ticket_and_replays_the_first_answer(as_user, db_session):
    tickets = count(db_session, Ticket)
    api = as_user("alice")

    first = post(api, BODY, "crm-0001")
    second = post(api, BODY, "crm-0001")

    assert first.status_code == second.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json == first.json
    assert count(db_session, Ticket) == tickets + 1
    assert count(db_session, AuditEntry, AuditEntry.action == "ticket.create") == 1
    (stored,) = db_session.scalars(select(IdempotencyRecord)).all()
    assert (stored.key, stored.method, stored.path, stored.status) == (
        "crm-0001",
        "POST",
        TICKETS,
        201,
    )
    assert stored.body["id"] == first.json["id"]


def test_the_same_content_written_differently_is_the_same_request(as_user, db_session):
    api = as_user("alice")
    first = post(api, BODY, "crm-0002")
    spaced = json.dumps(dict(reversed(list(BODY.items()))), indent=2, ensure_ascii=False)
    second = post(api, spaced, "crm-0002")
    assert second.status_code == 201 and second.headers["Idempotent-Replayed"] == "true"
    assert second.json["id"] == first.json["id"]


def test_the_same_key_with_another_body_is_a_conflict_naming_the_key(as_user, db_session):
    api = as_user("alice")
    assert post(api, BODY, "crm-0003").status_code == 201
    tickets = count(db_session, Ticket)

    response = post(api, {**BODY, "priority": "P1"}, "crm-0003")

    assert_problem(response, 409, "crm-0003", "Idempotency-Key")
    assert count(db_session, Ticket) == tickets


def test_keys_belong_to_their_caller(as_user, db_session):
    tickets = count(db_session, Ticket)
    by_alice = post(as_user("alice"), BODY, "shared-key")
    by_bob = post(as_user("bob"), BODY, "shared-key")
    assert by_alice.status_code == by_bob.status_code == 201
    assert "Idempotent-Replayed" not in by_bob.headers
    assert by_alice.json["id"] != by_bob.json["id"]
    assert by_bob.json["requester"] == "bob"
    assert count(db_session, Ticket) == tickets + 2


def test_without_a_key_every_request_creates_a_ticket(as_user, db_session):
    tickets = count(db_session, Ticket)
    assert post(as_user("alice"), BODY, None).status_code == 201
    assert post(as_user("alice"), BODY, None).status_code == 201
    assert count(db_session, Ticket) == tickets + 2
    assert count(db_session, IdempotencyRecord) == 0


def test_a_failed_request_keeps_nothing_so_the_key_can_be_used_again(as_user, db_session):
    api = as_user("alice")
    failed = post(api, {**BODY, "process_key": "no_such_flow"}, "crm-0004")
    assert_problem(failed, 404, "no_such_flow")
    invalid = post(api, {**BODY, "priority": "P9"}, "crm-0004")
    assert_problem(invalid, 400, "priority")
    assert count(db_session, IdempotencyRecord) == 0

    retried = post(api, BODY, "crm-0004")

    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried.headers


@pytest.mark.parametrize("key", ["has space", "x" * 201, "钥匙"])
def test_an_unusable_key_is_refused_naming_the_header(as_user, db_session, key):
    tickets = count(db_session, Ticket)
    # Werkzeug's test client sends header values as latin-1; give it the UTF-8 bytes
    response = post(as_user("alice"), BODY, key.encode().decode("latin-1"))
    problem = assert_problem(response, 400, "Idempotency-Key")
    assert "Idempotency-Key" in problem["errors"]["headers"]
    assert count(db_session, Ticket) == tickets


def test_a_request_still_in_progress_is_not_run_twice(as_user, db_session):
    """Seen only when a view commits before its answer is stored: the retry is told to wait."""
    alice = find_user(db_session=db_session, username="alice")
    with as_user("alice").client.application.test_request_context(
        TICKETS, method="POST", json=BODY
    ):
        fingerprint = request_hash()
    db_session.add(
        IdempotencyRecord(
            user_id=alice.id,
            key="crm-0005",
            method="POST",
            path=TICKETS,
            request_hash=fingerprint,
            status=IN_PROGRESS,
        )
    )
    db_session.commit()
    tickets = count(db_session, Ticket)

    response = post(as_user("alice"), BODY, "crm-0005")

    assert_problem(response, 409, "crm-0005")
    assert count(db_session, Ticket) == tickets


def test_the_header_is_documented(client):
    operation = client.get("/api/v1/openapi.json").json["paths"][TICKETS]["post"]
    (header,) = [p for p in operation["parameters"] if p["in"] == "header"]
    assert header["name"] == "Idempotency-Key" and not header["required"]
    assert "Idempotent-Replayed" in header["description"]
    assert header["schema"]["example"]
    assert "409" in operation["responses"]


# ---------------------------------------------------------------- concurrently, over HTTP

ROUNDS = 5


def send(url: str, headers: dict, body: dict) -> tuple[int, dict, bool]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={**headers, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            replayed = response.headers.get("Idempotent-Replayed") == "true"
            return response.status, json.loads(response.read()), replayed
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), False


def test_the_same_key_sent_concurrently_creates_one_ticket(fresh_app):
    server = make_server("127.0.0.1", 0, fresh_app, threaded=True)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    url = f"http://127.0.0.1:{server.server_port}{TICKETS}"
    try:
        for round_no in range(ROUNDS):
            results: list[tuple[int, dict, bool]] = []
            barrier = threading.Barrier(2)
            body = {**BODY, "title": f"并发幂等 {round_no}"}
            headers = {**auth_header(fresh_app, "alice"), "Idempotency-Key": f"race-{round_no}"}

            def create(body=body, headers=headers, barrier=barrier, results=results):
                barrier.wait()
                results.append(send(url, headers, body))

            threads = [threading.Thread(target=create) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=90)

            assert [status for status, _, _ in results] == [201, 201], results
            assert results[0][1] == results[1][1], "both callers get the same work order"
            assert sorted(replayed for _, _, replayed in results) == [False, True]
    finally:
        server.shutdown()

    with fresh_app.app_context():
        titles = db.session.scalars(
            select(Ticket.title).where(Ticket.title.startswith("并发幂等"))
        ).all()
        assert sorted(titles) == [f"并发幂等 {n}" for n in range(ROUNDS)]
        assert db.session.scalar(select(func.count()).select_from(IdempotencyRecord)) == ROUNDS
        created = db.session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "ticket.create")
        )
        assert created == ROUNDS
        db.session.remove()
