"""Signing in for a token, throttling, and the tokens of other systems: shown once, stored
hashed, acting with their role, revocable."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
import time_machine
from flask import g
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.auth.models import ApiToken, User
from app.extensions import db
from tests.conftest import PASSWORD, SHANGHAI, Api
from tests.test_api_errors import assert_problem

SIGN_IN = "/api/v1/auth/token"
TOKENS = "/api/v1/api-tokens"


class TokenApi(Api):
    """A test client that sends one given bearer token."""

    def __init__(self, client, token: str):
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}


def sign_in(client, username: str, password: str = PASSWORD):
    g.pop("_login_user", None)
    return client.post(SIGN_IN, json={"username": username, "password": password})


def issue(as_user, **body) -> dict:
    response = as_user("admin").post(TOKENS, json={"name": "crm", "role": "requester", **body})
    assert response.status_code == 201, response.get_json()
    return response.json


def audit_rows(db_session, **filters) -> list[AuditEntry]:
    query = select(AuditEntry).filter_by(**filters).order_by(AuditEntry.id)
    return list(db_session.scalars(query))


# ---------------------------------------------------------------- signing in


def test_a_right_password_gives_a_personal_token_that_works(client, db_session):
    response = sign_in(client, "net1")
    assert response.status_code == 201
    body = response.json
    assert body["token"].startswith("pd_") and body["token_type"] == "Bearer"
    assert (body["username"], body["role"]) == ("net1", "handler")
    assert datetime.fromisoformat(body["expires_at"]) > datetime.now(SHANGHAI)

    me = TokenApi(client, body["token"]).get("/api/v1/users/me")
    assert me.status_code == 200 and me.json["username"] == "net1"
    [row] = audit_rows(db_session, action="login.success", object_id="net1")
    assert (row.actor, row.source) == ("net1", "api")


@pytest.mark.parametrize("username", ["net1", "nobody"])
def test_a_wrong_password_or_unknown_user_is_401_alike(client, db_session, username):
    response = sign_in(client, username, "wrong-password")
    problem = assert_problem(response, 401)
    assert "用户名或密码不正确" in problem["detail_zh"]  # the same words: no probing of names
    assert [r.actor for r in audit_rows(db_session, action="login.failure")] == [username]


def test_five_failures_lock_the_name_even_for_the_right_password(client, db_session):
    start = datetime(2026, 11, 26, 9, 0, tzinfo=SHANGHAI)
    with time_machine.travel(start, tick=False):
        for _ in range(5):
            assert sign_in(client, "hw1", "wrong-password").status_code == 401

        locked = sign_in(client, "hw1", PASSWORD)

        problem = assert_problem(locked, 429, "hw1")
        assert int(locked.headers["Retry-After"]) > 0
        assert "分钟" in problem["detail_zh"] and "minutes" in problem["detail_en"]
        assert sign_in(client, "hw2-other", "wrong").status_code == 401  # others unaffected
        assert sign_in(client, "net1").status_code == 201
    with time_machine.travel(start + timedelta(minutes=16), tick=False):
        assert sign_in(client, "hw1").status_code == 201  # the window has passed


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"username": "net1"}, "password"),
        ({"username": "n" * 65, "password": "x"}, "username"),
        ({"username": "net\x00", "password": "x"}, "username"),
        ({"username": "net1", "password": "\udc00"}, "password"),
    ],
)
def test_a_malformed_sign_in_is_400_and_counts_no_failure(client, db_session, body, named):
    g.pop("_login_user", None)
    assert_problem(client.post(SIGN_IN, json=body), 400, named)
    assert not audit_rows(db_session, action="login.failure")


def test_a_deactivated_person_cannot_sign_in(as_user, client):
    net1 = user_id(as_user, "net1")
    assert as_user("admin").post(f"/api/v1/users/{net1}/deactivate").status_code == 200
    assert_problem(sign_in(client, "net1"), 401)


def test_a_system_account_cannot_sign_in_with_a_password(as_user, client):
    issue(as_user, name="monitoring")
    assert_problem(sign_in(client, "system:monitoring", "!"), 401)


def test_an_expired_personal_token_is_401(client, db_session):
    token = sign_in(client, "alice").json["token"]
    api = TokenApi(client, token)
    assert api.get("/api/v1/users/me").status_code == 200
    with time_machine.travel(datetime.now(SHANGHAI) + timedelta(hours=13), tick=False):
        assert_problem(api.get("/api/v1/users/me"), 401)


def user_id(as_user, username: str) -> int:
    found = as_user("admin").get("/api/v1/users", query_string={"q": username}).json["items"]
    return next(u["id"] for u in found if u["username"] == username)


# ---------------------------------------------------------------- systems' tokens


def test_a_system_token_is_shown_once_and_stored_hashed(as_user, db_session):
    issued = issue(as_user, name="crm", role="requester", department=None)
    token = issued["token"]
    assert token.startswith("pd_") and issued["prefix"] == token[:10]
    assert (issued["kind"], issued["role"], issued["username"]) == (
        "system",
        "requester",
        "system:crm",
    )
    assert issued["created_by"] == "admin" and issued["revoked_at"] is None

    listed = as_user("admin").get(TOKENS, query_string={"kind": "system"}).json
    assert [t["name"] for t in listed["items"]] == ["crm"]
    assert all("token" not in item for item in listed["items"])
    one = as_user("admin").get(f"{TOKENS}/{issued['id']}").json
    assert "token" not in one and one["prefix"] == issued["prefix"]

    row = db_session.get(ApiToken, issued["id"])
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    secret = token[len(row.prefix) :]
    for table in db.metadata.sorted_tables:
        for stored in db_session.execute(sa.select(table)).all():
            assert secret not in repr(tuple(stored)), f"plaintext token in {table.name}"


def test_a_system_token_acts_with_its_role(as_user, client, db_session):
    dispatcher = TokenApi(client, issue(as_user, name="erp", role="dispatcher")["token"])
    listed = dispatcher.get("/api/v1/users")
    assert listed.status_code == 200
    assert set(listed.json["items"][0]) == {"id", "username", "display_name", "groups", "skills"}
    assert_problem(dispatcher.post("/api/v1/users", json=NEW_USER), 403)
    assert_problem(dispatcher.get(TOKENS), 403)

    requester = TokenApi(client, issue(as_user, name="phone", role="requester")["token"])
    assert_problem(requester.get("/api/v1/users"), 403)
    me = requester.get("/api/v1/users/me").json
    assert (me["username"], me["kind"], me["role"]) == ("system:phone", "system", "requester")

    token = db_session.scalars(select(ApiToken).where(ApiToken.name == "erp")).one()
    assert token.last_used_at is not None


def test_a_system_tokens_changes_are_audited_as_api_token(as_user, client, db_session):
    admin_system = TokenApi(client, issue(as_user, name="hr_sync", role="admin")["token"])
    alice = user_id(as_user, "alice")
    assert admin_system.patch(f"/api/v1/users/{alice}", json={"role": "finance"}).status_code == 200
    [row] = audit_rows(db_session, action="user.role_change", object_id="alice")
    assert (row.actor, row.source) == ("system:hr_sync", "api_token")
    assert (row.before, row.after) == ({"role": "requester"}, {"role": "finance"})


def test_groups_and_department_go_with_the_system_account(as_user, db_session):
    as_user("admin").post("/api/v1/departments", json={"code": "hq", "name": "总部"})
    issued = issue(as_user, name="nms", role="handler", groups=["network"], department="hq")
    account = db_session.scalars(select(User).where(User.username == "system:nms")).one()
    assert [g.code for g in account.groups] == ["network"] and account.department.code == "hq"
    [row] = audit_rows(db_session, action="token.issue", object_id=str(issued["id"]))
    assert row.actor == "admin"
    assert row.after == {
        "name": "nms",
        "role": "handler",
        "groups": ["network"],
        "department": "hq",
        "prefix": issued["prefix"],
    }


def test_a_revoked_token_is_401_at_once_and_its_record_stays(as_user, client, db_session):
    issued = issue(as_user, name="crm", role="dispatcher")
    crm = TokenApi(client, issued["token"])
    assert crm.get("/api/v1/users").status_code == 200

    revoked = as_user("admin").delete(f"{TOKENS}/{issued['id']}")

    assert revoked.status_code == 200 and revoked.json["revoked_at"]
    assert_problem(crm.get("/api/v1/users"), 401)
    assert_problem(crm.get("/api/v1/users/me"), 401)
    again = as_user("admin").delete(f"{TOKENS}/{issued['id']}")
    assert again.status_code == 200 and again.json["revoked_at"] == revoked.json["revoked_at"]
    [row] = audit_rows(db_session, action="token.revoke", object_id=str(issued["id"]))
    assert row.actor == "admin" and row.before == {"revoked_at": None}
    active = as_user("admin").get(TOKENS, query_string={"kind": "system", "active": "true"})
    assert issued["id"] not in [t["id"] for t in active.json["items"]]
    inactive = as_user("admin").get(TOKENS, query_string={"active": "false"})
    assert issued["id"] in [t["id"] for t in inactive.json["items"]]


def test_the_token_of_the_request_cannot_revoke_itself(as_user, db_session):
    admin_token = db_session.scalars(
        select(ApiToken).join(User).where(User.username == "admin", ApiToken.kind == "personal")
    ).first()
    response = as_user("admin").delete(f"{TOKENS}/{admin_token.id}")
    assert_problem(response, 409, str(admin_token.id))
    assert db_session.get(ApiToken, admin_token.id).revoked_at is None


@pytest.mark.parametrize("username", ["desk", "net1", "reviewer", "alice"])
def test_only_admins_issue_list_or_revoke_system_tokens(as_user, username):
    api = as_user(username)
    assert_problem(api.post(TOKENS, json={"name": "x", "role": "admin"}), 403)
    assert_problem(api.get(TOKENS), 403)
    assert_problem(api.get(f"{TOKENS}/1"), 403)
    assert_problem(api.delete(f"{TOKENS}/1"), 403)


@pytest.mark.parametrize(
    ("body", "status", "named"),
    [
        ({"name": "crm", "role": "king"}, 400, "role"),
        ({"name": "has space", "role": "requester"}, 400, "name"),
        ({"name": "crm", "role": "requester", "groups": ["nope"]}, 400, "nope"),
        ({"name": "crm", "role": "requester", "department": "nowhere"}, 400, "nowhere"),
    ],
)
def test_a_wrong_token_request_is_refused_naming_the_fault(
    as_user, db_session, body, status, named
):
    tokens = db_session.scalar(select(sa.func.count()).select_from(ApiToken))
    assert_problem(as_user("admin").post(TOKENS, json=body), status, named)
    assert db_session.scalar(select(sa.func.count()).select_from(ApiToken)) == tokens


def test_a_token_name_is_taken_once(as_user):
    issue(as_user, name="crm")
    response = as_user("admin").post(TOKENS, json={"name": "crm", "role": "requester"})
    assert_problem(response, 409, "crm")


def test_an_unknown_or_huge_token_id_is_404(as_user):
    assert_problem(as_user("admin").get(f"{TOKENS}/987654"), 404, "987654")
    assert_problem(as_user("admin").delete(f"{TOKENS}/{2**70}"), 404)


# ---------------------------------------------------------------- one's own tokens


def test_a_person_lists_and_revokes_their_own_personal_tokens(as_user, client):
    phone = sign_in(client, "net1").json["token"]
    mine = as_user("net1").get("/api/v1/auth/tokens").json
    assert mine["total"] == 2 and {t["kind"] for t in mine["items"]} == {"personal"}
    assert all("token" not in t for t in mine["items"])
    phone_id = next(t["id"] for t in mine["items"] if t["prefix"] == phone[:10])

    assert as_user("net1").delete(f"/api/v1/auth/tokens/{phone_id}").status_code == 200

    assert_problem(TokenApi(client, phone).get("/api/v1/users/me"), 401)
    assert as_user("net1").get("/api/v1/users/me").status_code == 200


def test_nobody_revokes_another_persons_token(as_user, db_session):
    [theirs] = as_user("admin").get(TOKENS, query_string={"username": "net1"}).json["items"]
    response = as_user("hw1").delete(f"/api/v1/auth/tokens/{theirs['id']}")
    assert_problem(response, 404, str(theirs["id"]))
    assert db_session.get(ApiToken, theirs["id"]).revoked_at is None
    assert as_user("net1").get("/api/v1/users/me").status_code == 200


# ---------------------------------------------------------------- passwords


NEW_USER = {"username": "zhaoliu", "password": "initial-pass-1", "role": "handler"}


def test_a_person_changes_their_password_with_the_old_one(as_user, client, db_session):
    url = "/api/v1/users/me/password"
    wrong = as_user("bob").patch(url, json={"old_password": "nope", "new_password": "new-pass-123"})
    problem = assert_problem(wrong, 400, "old_password")
    assert "old_password" in problem["errors"]["json"]

    ok = as_user("bob").patch(url, json={"old_password": PASSWORD, "new_password": "new-pass-123"})

    assert ok.status_code == 204
    assert sign_in(client, "bob", PASSWORD).status_code == 401
    assert sign_in(client, "bob", "new-pass-123").status_code == 201
    assert audit_rows(db_session, action="user.password_change", object_id="bob")


def test_guessing_the_old_password_is_throttled_like_a_sign_in(as_user):
    url = "/api/v1/users/me/password"
    for _ in range(5):
        as_user("bob").patch(url, json={"old_password": "guess", "new_password": "new-pass-123"})
    locked = as_user("bob").patch(
        url, json={"old_password": PASSWORD, "new_password": "new-pass-123"}
    )
    assert_problem(locked, 429, "bob")


def test_a_new_password_needs_eight_characters(as_user):
    url = "/api/v1/users/me/password"
    response = as_user("bob").patch(url, json={"old_password": PASSWORD, "new_password": "short"})
    assert_problem(response, 400, "new_password")


def test_an_admin_resets_a_password_and_signs_the_person_out(as_user, client, db_session):
    bob = user_id(as_user, "bob")
    response = as_user("admin").patch(
        f"/api/v1/users/{bob}/password", json={"password": "reset-pass-1"}
    )
    assert response.status_code == 204
    assert_problem(as_user("bob").get("/api/v1/users/me"), 401)
    assert sign_in(client, "bob", "reset-pass-1").status_code == 201
    [row] = audit_rows(db_session, action="user.password_reset")
    assert (row.object_id, row.before, row.after) == ("bob", None, None)  # no password in the trail


def test_an_admin_resets_only_other_peoples_passwords(as_user):
    admin = user_id(as_user, "admin")
    response = as_user("admin").patch(
        f"/api/v1/users/{admin}/password", json={"password": "x" * 10}
    )
    assert_problem(response, 409, "/api/v1/users/me/password")
