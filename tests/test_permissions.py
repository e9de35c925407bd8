"""Every route of the OpenAPI document, called by every role, against a permission table.

The table below is the specification: for each route and role, what the caller gets.
  ok        access granted (2xx, or 400/409/422 when the example body does not fit this world)
  forbidden 403: the caller may see the resource but not do this
  hidden    404: the caller may not see the resource at all (ids cannot be probed)
  anonymous callers always get 401.
A route missing from the table, or a table row without a route, fails the test.

The world: bob (requester) reported a work order; the service desk triaged it to the network
group, so its `task_handle` is offered to network engineers. net1 is a network engineer,
reviewer sits in the service desk, alice is another requester, fin1 is finance.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from app import engine
from app.audit.models import AuditEntry
from app.auth.models import Department, Group, Skill, User
from app.auth.tokens import issue_system_token
from app.extensions import db
from app.notify.service import notify
from app.sla.calendars_service import add_day, ensure_default_calendars
from app.sla.policies import create_policy
from tests.conftest import PASSWORD, session_on
from tests.flows import Flow

DATA = Path(__file__).resolve().parent / "data"

CALLERS = {
    "admin": "admin",
    "dispatcher": "desk",
    "handler": "net1",
    "reviewer": "reviewer",
    "requester": "alice",
    "finance": "fin1",
}
ROLES = tuple(CALLERS)

OK, FORBIDDEN, HIDDEN = "ok", "forbidden", "hidden"


def rule(default: str, **overrides: str) -> dict[str, str]:
    return {role: overrides.get(role, default) for role in ROLES}


ADMIN_ONLY = rule(FORBIDDEN, admin=OK)
EVERYONE = rule(OK)

STAFF_READ = rule(FORBIDDEN, admin=OK, dispatcher=OK)
# one item of the organisation: who may not list them may not learn which ids exist either
ORG_ITEM = rule(HIDDEN, admin=OK, dispatcher=OK)

PERMISSIONS: dict[str, dict[str, str]] = {
    # sign-in and one's own tokens
    "POST /api/v1/auth/token": EVERYONE,
    "GET /api/v1/auth/tokens": EVERYONE,
    "DELETE /api/v1/auth/tokens/{token_id}": rule(HIDDEN),  # crm's token is nobody's own
    # tokens of other systems
    "POST /api/v1/api-tokens": ADMIN_ONLY,
    "GET /api/v1/api-tokens": ADMIN_ONLY,
    "GET /api/v1/api-tokens/{token_id}": ADMIN_ONLY,
    "DELETE /api/v1/api-tokens/{token_id}": ADMIN_ONLY,
    # the organisation: admins manage it, dispatchers read it to assign work
    "GET /api/v1/users": STAFF_READ,
    "POST /api/v1/users": ADMIN_ONLY,
    "GET /api/v1/users/me": EVERYONE,
    "PATCH /api/v1/users/me/password": EVERYONE,
    "GET /api/v1/users/{user_id}": rule(HIDDEN, admin=OK, dispatcher=OK),
    "PATCH /api/v1/users/{user_id}": ADMIN_ONLY,
    "POST /api/v1/users/{user_id}/deactivate": ADMIN_ONLY,
    "POST /api/v1/users/{user_id}/activate": ADMIN_ONLY,
    "PATCH /api/v1/users/{user_id}/password": ADMIN_ONLY,
    "GET /api/v1/groups": STAFF_READ,
    "POST /api/v1/groups": ADMIN_ONLY,
    "GET /api/v1/groups/{group_id}": ORG_ITEM,
    "PATCH /api/v1/groups/{group_id}": ADMIN_ONLY,
    "GET /api/v1/departments": STAFF_READ,
    "POST /api/v1/departments": ADMIN_ONLY,
    "GET /api/v1/departments/tree": STAFF_READ,
    "GET /api/v1/departments/{department_id}": ORG_ITEM,
    "PATCH /api/v1/departments/{department_id}": ADMIN_ONLY,
    "GET /api/v1/skills": STAFF_READ,
    "POST /api/v1/skills": ADMIN_ONLY,
    "GET /api/v1/skills/{skill_id}": ORG_ITEM,
    "PATCH /api/v1/skills/{skill_id}": ADMIN_ONLY,
    # work orders: bob's; the requester alice and the reviewer have nothing to do with it
    "POST /api/v1/tickets": EVERYONE,
    "GET /api/v1/tickets": EVERYONE,
    "GET /api/v1/tickets/{ticket_id}": rule(OK, reviewer=HIDDEN, requester=HIDDEN),
    "GET /api/v1/tickets/{ticket_id}/sla": rule(OK, reviewer=HIDDEN, requester=HIDDEN),
    "PATCH /api/v1/tickets/{ticket_id}": rule(
        OK, reviewer=HIDDEN, requester=HIDDEN, finance=FORBIDDEN
    ),
    # tasks: the network group's task_handle
    "GET /api/v1/tasks": EVERYONE,
    "GET /api/v1/tasks/{task_id}": rule(HIDDEN, admin=OK, handler=OK),
    "POST /api/v1/tasks/{task_id}/claim": rule(HIDDEN, admin=FORBIDDEN, handler=OK),
    "POST /api/v1/tasks/{task_id}/unclaim": rule(HIDDEN, admin=OK, handler=OK),
    "POST /api/v1/tasks/{task_id}/transfer": rule(HIDDEN, admin=OK, handler=FORBIDDEN),
    "POST /api/v1/tasks/{task_id}/complete": rule(HIDDEN, admin=OK, handler=OK),
    # processes
    "POST /api/v1/process-definitions": ADMIN_ONLY,
    "GET /api/v1/process-definitions": STAFF_READ,
    "GET /api/v1/process-definitions/{key}/versions": STAFF_READ,
    "GET /api/v1/process-definitions/{key}/versions/{version}": STAFF_READ,
    "GET /api/v1/process-definitions/{key}/versions/{version}/sources": ADMIN_ONLY,
    "POST /api/v1/process-instances": STAFF_READ,
    "GET /api/v1/process-instances/{instance_id}": STAFF_READ,
    "POST /api/v1/messages": STAFF_READ,
    # the audit trail
    "GET /api/v1/audit": ADMIN_ONLY,
    "GET /api/v1/audit/{entry_id}": ADMIN_ONLY,
    # smart dispatch: bob's work order waits in the network group; net1 is its engineer
    "GET /api/v1/tickets/{ticket_id}/dispatch-recommendations": rule(
        FORBIDDEN, admin=OK, dispatcher=OK, reviewer=HIDDEN, requester=HIDDEN
    ),
    "POST /api/v1/tickets/{ticket_id}/assign": rule(
        FORBIDDEN, admin=OK, dispatcher=OK, reviewer=HIDDEN, requester=HIDDEN
    ),
    "PUT /api/v1/engineers/me/position": rule(FORBIDDEN, handler=OK),
    "GET /api/v1/dispatch/pool": rule(FORBIDDEN, handler=OK),
    "POST /api/v1/dispatch/pool/{task_id}/grab": rule(HIDDEN, admin=FORBIDDEN, handler=OK),
    "GET /api/v1/groups/{code}/dispatch-config": ORG_ITEM,
    "PUT /api/v1/groups/{code}/dispatch-config": ADMIN_ONLY,
    "GET /api/v1/engineers/{username}/profile": rule(HIDDEN, admin=OK, dispatcher=OK, handler=OK),
    "PUT /api/v1/engineers/{username}/profile": ADMIN_ONLY,
    # notifications: each person's own; the one in this world is net1's
    "GET /api/v1/notifications": EVERYONE,
    "POST /api/v1/notifications/read-all": EVERYONE,
    "POST /api/v1/notifications/{notification_id}/read": rule(HIDDEN, handler=OK),
    # SLA calendars and policies: admins configure them, dispatchers read them
    "GET /api/v1/sla/calendars": STAFF_READ,
    "POST /api/v1/sla/calendars": ADMIN_ONLY,
    "GET /api/v1/sla/calendars/{calendar_id}": ORG_ITEM,
    "PATCH /api/v1/sla/calendars/{calendar_id}": ADMIN_ONLY,
    "GET /api/v1/sla/calendars/{calendar_id}/days": ORG_ITEM,
    "POST /api/v1/sla/calendars/{calendar_id}/days": ADMIN_ONLY,
    "DELETE /api/v1/sla/calendars/{calendar_id}/days/{day_id}": ADMIN_ONLY,
    "POST /api/v1/sla/calendars/{calendar_id}/days/import": ADMIN_ONLY,
    "GET /api/v1/sla/policies": STAFF_READ,
    "POST /api/v1/sla/policies": ADMIN_ONLY,
    "PUT /api/v1/sla/policies/order": ADMIN_ONLY,
    "GET /api/v1/sla/policies/match": STAFF_READ,
    "GET /api/v1/sla/policies/{policy_id}": ORG_ITEM,
    "PATCH /api/v1/sla/policies/{policy_id}": ADMIN_ONLY,
    "DELETE /api/v1/sla/policies/{policy_id}": ADMIN_ONLY,
    # the process designer: admins only, every route
    "GET /api/v1/designer/processes": ADMIN_ONLY,
    "POST /api/v1/designer/processes": ADMIN_ONLY,
    "POST /api/v1/designer/processes/{key}/duplicate": ADMIN_ONLY,
    "GET /api/v1/designer/processes/{key}/draft": ADMIN_ONLY,
    "PUT /api/v1/designer/processes/{key}/draft": ADMIN_ONLY,
    "DELETE /api/v1/designer/processes/{key}/draft": ADMIN_ONLY,
    "GET /api/v1/designer/processes/{key}/draft/bpmn": ADMIN_ONLY,
    "POST /api/v1/designer/processes/{key}/validate": ADMIN_ONLY,
    "GET /api/v1/designer/processes/{key}/diff": ADMIN_ONLY,
    "POST /api/v1/designer/processes/{key}/deploy": ADMIN_ONLY,
    "GET /api/v1/designer/processes/{key}/versions/{version}/bpmn": ADMIN_ONLY,
    "GET /api/v1/designer/processes/{key}/versions/{version}/waiting": ADMIN_ONLY,
    "GET /api/v1/designer/lookups": ADMIN_ONLY,
    "POST /api/v1/designer/decisions/try": ADMIN_ONLY,
}


@pytest.fixture(scope="module")
def world_connection(app):
    """One connection for the module, in a transaction rolled back at its end."""
    with app.app_context():
        connection = db.engine.connect()
    outer = connection.begin()
    yield connection
    outer.rollback()
    connection.close()


@pytest.fixture(scope="module")
def world(app, world_connection):
    """The shared situation every call runs against, built once in the module's transaction."""
    with app.app_context(), session_on(world_connection) as db_session:
        return build_world(app, db_session)


@pytest.fixture
def db_session(app, world_connection, world):
    """Each test runs in a SAVEPOINT of the module's transaction, rolled back after it: every
    test meets the world exactly as it was built."""
    with app.app_context():
        savepoint = world_connection.begin_nested()
        try:
            with session_on(world_connection) as session:
                yield session
        finally:
            savepoint.rollback()


def build_world(app, db_session) -> dict:
    department = Department(code="hq", name="总部")
    skill = Skill(code="network", name="网络")
    db_session.add_all([department, skill])
    flow = Flow(db_session, "bob", "it_service", title="权限测试工单")
    flow.do(
        "task_triage",
        "desk",
        category="network",
        priority="P2",
        region="beijing",
        resolution="forward",
        triage_note="",
    )
    engine.deploy(
        db_session=db_session,
        files=[("wait_for_payment.bpmn", (DATA / "wait_for_payment.bpmn").read_bytes())],
    )
    engine.start(db_session=db_session, process_key="wait_for_payment", business_key="PO-1")
    token, _ = issue_system_token(
        db_session=db_session, name="crm", role="dispatcher", issued_by="admin"
    )
    (note,) = notify(
        db_session,
        users=[db_session.scalars(select(User).where(User.username == "net1")).one()],
        kind="sla_reminder",
        title=("工单即将超时", "Work order nearly due"),
        ticket_id=flow.ticket.id,
    ).notifications
    calendars = ensure_default_calendars(db_session)
    standard = calendars["standard"]
    closure = add_day(
        db_session=db_session, calendar_id=standard.id, day="2027-03-15", kind="closure"
    )
    # Round the clock, so that work orders created by the calls never need a year's holidays.
    policy = create_policy(
        db_session=db_session,
        values={
            "name": "全部",
            "response_minutes": 60,
            "resolution_minutes": 480,
            "calendar_id": calendars["24x7"].id,
        },
    )
    db_session.commit()
    tokens = app.extensions["test_tokens"]
    params = {
        "ticket_id": flow.ticket.id,
        "task_id": flow.task("task_handle").id,
        "instance_id": flow.instance.id,
        "key": "it_service",
        "version": 1,
        "user_id": db_session.scalar(select(User.id).where(User.username == "bob")),
        "group_id": db_session.scalar(select(Group.id).where(Group.code == "network")),
        "department_id": department.id,
        "skill_id": skill.id,
        "token_id": token.id,
        "entry_id": db_session.scalar(select(AuditEntry.id).limit(1)),
        "code": "network",
        "username": "net1",
        "notification_id": note.id,
        "calendar_id": standard.id,
        "day_id": closure.id,
        "policy_id": policy.id,
    }
    return {"tokens": tokens, "params": params}


@functools.cache  # the document is the same for the whole run; building it takes ~40 ms
def operations(app) -> list[tuple[str, str, dict]]:
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                found.append((method.upper(), path, operation))
    return found


def example_body(operation: dict):
    content = (operation.get("requestBody") or {}).get("content", {})
    for media, spec in content.items():
        if media == "application/json":
            return spec.get("example", {})
    return None


def call(client, method, path, operation, params, token, username=None):
    url = path.format(**params)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = example_body(operation)
    if path == "/api/v1/auth/token" and username:
        body = {"username": username, "password": PASSWORD}
    if path == "/api/v1/messages":  # the one instance of this world that waits for a message
        body = {"name": "payment_received", "correlation_key": "PO-1", "payload": {"amount": 1}}
    from flask import g

    g.pop("_login_user", None)  # the test's app context is shared by its requests
    if body is None:
        return client.open(url, method=method, headers=headers)
    return client.open(
        url, method=method, headers=headers, data=json.dumps(body), content_type="application/json"
    )


def verdict(status: int) -> str:
    if status == 403:
        return FORBIDDEN
    if status == 404:
        return HIDDEN
    if status < 400 or status in {400, 409, 422}:
        return OK
    return f"status {status}"


def test_the_table_covers_every_route_and_only_routes(app):
    routes = {f"{method} {path}" for method, path, _ in operations(app)}
    assert sorted(routes - set(PERMISSIONS)) == [], "routes missing from the permission table"
    assert sorted(set(PERMISSIONS) - routes) == [], "table rows without a route"


def cases():
    return [(route, role) for route in PERMISSIONS for role in ROLES]


@pytest.mark.parametrize(("route", "role"), cases())
def test_each_role_gets_what_the_table_says(app, client, world, route, role):
    method, path = route.split(" ", 1)
    operation = next(op for m, p, op in operations(app) if m == method and p == path)
    token = world["tokens"][CALLERS[role]]
    response = call(client, method, path, operation, world["params"], token, CALLERS[role])
    assert verdict(response.status_code) == PERMISSIONS[route][role], (
        f"{role} {route} -> {response.status_code}: {response.get_data(as_text=True)[:300]}"
    )


@pytest.mark.parametrize("route", sorted(PERMISSIONS))
def test_anonymous_callers_get_401_except_on_sign_in(app, client, world, route):
    method, path = route.split(" ", 1)
    operation = next(op for m, p, op in operations(app) if m == method and p == path)
    response = call(client, method, path, operation, world["params"], None)
    expected = {400, 401} if route == "POST /api/v1/auth/token" else {401}
    assert response.status_code in expected, f"{route} -> {response.status_code}"
