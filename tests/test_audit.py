"""The audit trail: what is recorded and from where, reading it (admins only, filtered,
newest first), and that nothing, not even raw SQL, changes or deletes a row."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import time_machine
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.audit.models import AuditEntry
from app.audit.service import acting_as, record
from app.auth.service import create_user
from tests.conftest import SHANGHAI
from tests.test_api_errors import assert_problem
from tests.test_tokens import TokenApi, sign_in

AUDIT = "/api/v1/audit"
DAY = datetime(2026, 11, 20, 9, 0, tzinfo=SHANGHAI)


def entries(api, **query) -> dict:
    response = api.get(AUDIT, query_string={"per_page": 200, **query})
    assert response.status_code == 200, response.json
    return response.json


def user_id(as_user, username: str) -> int:
    found = as_user("admin").get("/api/v1/users", query_string={"q": username}).json["items"]
    return next(u["id"] for u in found if u["username"] == username)


@pytest.fixture
def history(db_session):
    """Rows on three days, by two actors and sources."""
    for days, actor, source, action, object_id in [
        (0, "admin", "api", "user.role_change", "net1"),
        (1, "desk", "page", "ticket.update", "42"),
        (2, "admin", "api_token", "user.groups_change", "hw1"),
        (2, None, "job", "timer.fire", "17"),
    ]:
        with time_machine.travel(DAY + timedelta(days=days), tick=False):
            record(
                db_session=db_session,
                action=action,
                object_type=action.split(".")[0],
                object_id=object_id,
                actor=actor,
                source=source,
                before={"n": days},
                after={"n": days + 1},
            )
            db_session.flush()  # the time is taken when the row is inserted


# ---------------------------------------------------------------- reading


@pytest.mark.parametrize("username", ["desk", "net1", "reviewer", "alice"])
def test_only_admins_read_the_audit_trail(as_user, username):
    assert_problem(as_user(username).get(AUDIT), 403)
    assert_problem(as_user(username).get(f"{AUDIT}/1"), 403)


def test_the_trail_is_newest_first_and_paginated(as_user, history):
    window = {"from": "2026-11-20T00:00:00", "to": "2026-11-23T00:00:00"}
    everything = entries(as_user("admin"), **window)
    assert [e["action"] for e in everything["items"]] == [
        "timer.fire",
        "user.groups_change",
        "ticket.update",
        "user.role_change",
    ]
    assert everything["total"] == 4
    page = entries(as_user("admin"), per_page=3, page=2, **window)
    assert [e["action"] for e in page["items"]] == ["user.role_change"]
    assert (page["total"], page["page"], page["per_page"]) == (4, 2, 3)
    first = everything["items"][-1]
    assert first["before"] == {"n": 0} and first["after"] == {"n": 1}
    assert as_user("admin").get(f"{AUDIT}/{first['id']}").json == first


@pytest.mark.parametrize(
    ("query", "actions"),
    [
        ({"action": "user.role_change"}, ["user.role_change"]),
        ({"action": "user."}, ["user.groups_change", "user.role_change"]),
        ({"actor": "desk"}, ["ticket.update"]),
        ({"object_type": "user", "object_id": "hw1"}, ["user.groups_change"]),
        ({"source": "api_token"}, ["user.groups_change"]),
        ({"source": "job"}, ["timer.fire"]),
        # without an offset a time is Shanghai's; `from` inclusive, `to` exclusive
        ({"from": "2026-11-21T09:00:00", "to": "2026-11-22T09:00:00"}, ["ticket.update"]),
        ({"from": "2026-11-21T01:00:00Z"}, ["timer.fire", "user.groups_change", "ticket.update"]),
        ({"to": "2026-11-20T09:00:01+08:00"}, ["user.role_change"]),
        ({"actor": "admin", "from": "2026-11-21T00:00:00"}, ["user.groups_change"]),
    ],
)
def test_the_trail_is_filtered(as_user, history, query, actions):
    window = {"from": "2026-11-20T00:00:00", "to": "2026-11-23T00:00:00"}
    found = entries(as_user("admin"), **{**window, **query})
    assert [e["action"] for e in found["items"]] == actions
    assert found["total"] == len(actions)


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"from": "2026-11-22T00:00:00", "to": "2026-11-21T00:00:00"}, "to"),
        ({"from": "yesterday"}, "from"),
        ({"from": "0001-01-01T00:00:00"}, "from"),
        ({"source": "telepathy"}, "source"),
        ({"actor": "a\x00b"}, "actor"),
        ({"per_page": 500}, "per_page"),
    ],
)
def test_a_wrong_filter_is_400_naming_it(as_user, query, named):
    assert_problem(as_user("admin").get(AUDIT, query_string=query), 400, named)


def test_an_unknown_entry_is_404(as_user):
    assert_problem(as_user("admin").get(f"{AUDIT}/987654321"), 404, "987654321")
    assert_problem(as_user("admin").get(f"{AUDIT}/{2**70}"), 404)


# ---------------------------------------------------------------- nothing rewrites history


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_no_endpoint_changes_or_deletes_audit_rows(as_user, history, method):
    newest = entries(as_user("admin"))["items"][0]
    assert_problem(as_user("admin").request(method, AUDIT, json={}), 405)
    assert_problem(as_user("admin").request(method, f"{AUDIT}/{newest['id']}", json={}), 405)
    assert as_user("admin").get(f"{AUDIT}/{newest['id']}").json == newest


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_entry SET action = 'nothing.happened'",
        "UPDATE audit_entry SET actor = NULL WHERE id = (SELECT MAX(id) FROM audit_entry)",
        "DELETE FROM audit_entry",
        "DELETE FROM audit_entry WHERE id = (SELECT MAX(id) FROM audit_entry)",
    ],
)
def test_the_database_refuses_to_change_or_delete_an_audit_row(db_session, history, statement):
    count = "SELECT COUNT(*) FROM audit_entry"
    before = db_session.execute(text(count)).scalar()
    refused = pytest.raises(DBAPIError, match="audit_entry rows cannot be changed or deleted")
    with refused, db_session.begin_nested():
        db_session.execute(text(statement))
    assert db_session.execute(text(count)).scalar() == before
    actions = db_session.execute(text("SELECT action FROM audit_entry")).scalars().all()
    assert "nothing.happened" not in actions


# ---------------------------------------------------------------- what is recorded, from where


def test_changes_through_the_api_name_actor_source_and_address(as_user, db_session):
    net1 = user_id(as_user, "net1")
    as_user("admin").patch(f"/api/v1/users/{net1}", json={"role": "reviewer"})

    [row] = entries(as_user("admin"), action="user.role_change")["items"]

    assert (row["actor"], row["source"], row["object_type"], row["object_id"]) == (
        "admin",
        "api",
        "user",
        "net1",
    )
    assert (row["before"], row["after"]) == ({"role": "handler"}, {"role": "reviewer"})
    assert row["remote_addr"] == "127.0.0.1"


def test_sign_ins_are_recorded_success_and_failure(as_user, client):
    sign_in(client, "alice", "wrong-password")
    sign_in(client, "alice")
    rows = entries(as_user("admin"), object_id="alice", action="login.")["items"]
    assert [(r["action"], r["actor"], r["source"]) for r in rows] == [
        ("login.success", "alice", "api"),
        ("login.failure", "alice", "api"),
    ]


def test_token_issue_and_revoke_are_recorded(as_user, client):
    issued = as_user("admin").post("/api/v1/api-tokens", json={"name": "crm", "role": "handler"})
    crm = TokenApi(client, issued.json["token"])
    crm.get("/api/v1/users/me")
    as_user("admin").delete(f"/api/v1/api-tokens/{issued.json['id']}")

    rows = entries(as_user("admin"), object_type="api_token")["items"]

    assert [(r["action"], r["actor"]) for r in rows] == [
        ("token.revoke", "admin"),
        ("token.issue", "admin"),
    ]
    assert "token" not in rows[1]["after"] and rows[1]["after"]["prefix"] == issued.json["prefix"]
    assert issued.json["token"] not in str(rows)


def test_the_shell_is_recorded_as_cli(db_session):
    with acting_as("cli"):
        user = create_user(
            db_session=db_session, username="ops", password="long-enough-1", role="admin"
        )
    row = db_session.query(AuditEntry).filter_by(action="user.create", object_id="ops").one()
    assert (row.source, row.actor) == ("cli", None)
    assert row.after["role"] == "admin" and user.id


def test_outside_a_request_the_source_is_job(db_session):
    record(db_session=db_session, action="timer.fire", object_type="timer", object_id=1)
    db_session.flush()
    row = db_session.query(AuditEntry).filter_by(action="timer.fire").one()
    assert (row.source, row.actor, row.remote_addr) == ("job", None, None)


def test_a_failed_change_leaves_no_audit_row(as_user, db_session):
    before = entries(as_user("admin"))["total"]
    body = {"username": "alice", "password": "long-enough-1", "role": "handler"}
    assert_problem(as_user("admin").post("/api/v1/users", json=body), 409)
    assert entries(as_user("admin"))["total"] == before
