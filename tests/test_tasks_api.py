"""/api/v1/tasks: inbox scopes, reading, claiming, giving back, transferring (转派) and completing
a task over REST; every act leaves a history event and an audit row, every refusal leaves nothing.

An engineer never reaches another engineer's task by any route: 404, and nothing changes.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from app import engine
from app.audit.models import AuditEntry
from app.auth.models import Department
from app.auth.service import find_user
from app.engine.models import HumanTask, ProcessEvent, ProcessInstance
from app.extensions import db
from app.tickets.service import create_ticket
from tests.conftest import auth_header

TASKS = "/api/v1/tasks"
TICKETS = "/api/v1/tickets"
TRIAGE = {
    "category": "network",
    "priority": "P2",
    "region": "beijing",
    "resolution": "forward",
    "triage_note": "已确认",
}
HANDLED = {"solution": "重置 VPN 证书", "time_spent_minutes": 20}
REASON = "故障在交换机硬件，转硬件组处理"


# ---------------------------------------------------------------- helpers


def assert_problem(response, status: int, *named: str) -> dict:
    """problem+json with ``status`` whose Chinese and English messages name every ``named``."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    problem = response.json
    assert problem["status"] == status and problem["detail_zh"] and problem["detail_en"]
    for text in named:
        assert text in problem["detail_zh"], (text, problem["detail_zh"])
        assert text in problem["detail_en"], (text, problem["detail_en"])
    return problem


def new_ticket(api, **fields) -> dict:
    response = api.post(TICKETS, json={"title": "VPN 无法连接", **fields})
    assert response.status_code == 201, response.json
    return response.json


def open_task(api, ticket: dict, element_id: str) -> dict:
    tasks = api.get(f"{TASKS}?ticket_id={ticket['id']}").json["items"]
    matching = [task for task in tasks if task["element_id"] == element_id]
    assert matching, f"{element_id} is not in {api.username}'s inbox"
    return matching[0]


def act(api, task: dict, action: str, body: dict | None = None):
    if action == "read":
        return api.get(f"{TASKS}/{task['id']}")
    return api.post(f"{TASKS}/{task['id']}/{action}", json=body or {})


def listed(api, scope: str = "all") -> list[str]:
    response = api.get(f"{TASKS}?scope={scope}&per_page=200")
    assert response.status_code == 200, response.json
    return [task["id"] for task in response.json["items"]]


def count(db_session, model, *where) -> int:
    return db_session.scalar(select(func.count()).select_from(model).where(*where))


def snapshot(db_session, task_id: str) -> dict:
    """Everything a refused request must leave as it was."""
    db_session.expire_all()
    task = db_session.get(HumanTask, task_id)
    return {
        "instance_version": db_session.get(ProcessInstance, task.instance_id).version,
        "assignee": task.assignee,
        "status": task.status,
        "candidates": sorted((c.kind, c.value) for c in task.candidates),
        "events": count(db_session, ProcessEvent, ProcessEvent.instance_id == task.instance_id),
        "audit": count(db_session, AuditEntry),
    }


def field_errors(problem: dict) -> dict:
    """Per-field errors, whether keyed by location (request schemas) or not (services)."""
    errors = problem.get("errors") or {}
    return errors.get("json", errors) if isinstance(errors.get("json"), dict) else errors


def history(api, ticket: dict, event_type: str) -> list[dict]:
    events = api.get(f"{TICKETS}/{ticket['id']}").json["history"]
    return [event for event in events if event["event_type"] == event_type]


def audit_rows(db_session, task_id: str, action: str) -> list[AuditEntry]:
    return list(
        db_session.scalars(
            select(AuditEntry)
            .where(AuditEntry.object_id == task_id, AuditEntry.action == action)
            .order_by(AuditEntry.id)
        )
    )


@pytest.fixture
def ticket(as_user) -> dict:
    """An IT work order triaged to the network group: task_handle waits for net1 or net_lead."""
    created = new_ticket(as_user("alice"))
    triage = open_task(as_user("desk"), created, "task_triage")
    assert act(as_user("desk"), triage, "complete", {"data": TRIAGE}).status_code == 200
    return created


@pytest.fixture
def handle(as_user, ticket) -> dict:
    task = open_task(as_user("net1"), ticket, "task_handle")
    assert task["candidate_groups"] == ["network"] and task["assignee"] is None
    return task


@pytest.fixture
def claimed(as_user, handle) -> dict:
    response = act(as_user("net1"), handle, "claim")
    assert response.status_code == 200, response.json
    return response.json


# ---------------------------------------------------------------- the inbox and one task


def test_scopes_follow_a_claim(as_user, handle):
    assert handle["id"] in listed(as_user("net1"), "group")
    assert handle["id"] not in listed(as_user("net1"), "mine")
    assert handle["id"] in listed(as_user("net_lead"), "group")
    assert handle["id"] not in listed(as_user("hw1"))

    assert act(as_user("net1"), handle, "claim").status_code == 200

    assert handle["id"] in listed(as_user("net1"), "mine")
    assert handle["id"] in listed(as_user("net1"), "all")
    assert handle["id"] not in listed(as_user("net1"), "group")
    for scope in ("mine", "group", "all"):
        assert handle["id"] not in listed(as_user("net_lead"), scope)
    assert handle["id"] in listed(as_user("admin"))


def test_an_unknown_scope_is_refused_naming_it(as_user):
    problem = assert_problem(as_user("net1").get(f"{TASKS}?scope=everything"), 400, "scope")
    assert "scope" in problem["errors"]["query"]


def test_a_task_is_read_with_its_form_by_those_who_may_see_it(as_user, handle):
    response = act(as_user("net1"), handle, "read")

    assert response.status_code == 200
    assert response.json["element_id"] == "task_handle"
    assert response.json["form"]["id"] == "it_handle"
    keys = {component.get("key") for component in response.json["form"]["components"]}
    assert {"solution", "time_spent_minutes"} <= keys
    assert act(as_user("admin"), handle, "read").status_code == 200
    for outsider in ("hw1", "alice", "reviewer"):
        assert_problem(act(as_user(outsider), handle, "read"), 404, handle["id"])


def test_an_unknown_task_is_404_on_every_route(as_user):
    task = {"id": "00000000-0000-0000-0000-000000000000"}
    for action in ("read", "claim", "unclaim", "complete"):
        assert_problem(act(as_user("admin"), task, action), 404, task["id"])
    response = act(as_user("admin"), task, "transfer", {"to_user": "hw1", "reason": REASON})
    assert_problem(response, 404, task["id"])


# ---------------------------------------------------------------- claim


def test_a_candidate_claims_and_history_and_audit_show_it(as_user, db_session, ticket, handle):
    response = act(as_user("net1"), handle, "claim")

    assert response.status_code == 200
    assert response.json["assignee"] == "net1"
    assert response.json["candidate_groups"] == ["network"]
    assert db_session.get(HumanTask, handle["id"]).assignee == "net1"
    [event] = history(as_user("admin"), ticket, "task_claimed")
    assert event["actor"] == "net1" and event["element_id"] == "task_handle"
    assert event["element_type"] == "UserTask" and event["element_name"] == "技术组处理"
    assert event["data"]["task_id"] == handle["id"]
    assert event["data"]["from"]["assignee"] is None
    assert event["data"]["to"] == {
        "assignee": "net1",
        "candidate_groups": ["network"],
        "candidate_users": [],
    }
    [row] = audit_rows(db_session, handle["id"], "task.claim")
    assert row.actor == "net1" and row.source == "api"
    assert row.before["assignee"] is None and row.after["assignee"] == "net1"
    assert row.after["ticket_id"] == ticket["id"]


def test_a_held_task_cannot_be_claimed(as_user, db_session, claimed):
    before = snapshot(db_session, claimed["id"])

    assert_problem(act(as_user("admin"), claimed, "claim"), 409, "net1", claimed["id"])
    assert_problem(act(as_user("net1"), claimed, "claim"), 409, claimed["id"])
    # the other engineer of the group no longer sees it at all
    assert_problem(act(as_user("net_lead"), claimed, "claim"), 404, claimed["id"])

    assert snapshot(db_session, claimed["id"]) == before


def test_only_a_candidate_may_claim(as_user, db_session, handle):
    before = snapshot(db_session, handle["id"])
    # an admin sees every task, but is not offered this one
    assert_problem(act(as_user("admin"), handle, "claim"), 403, handle["id"])
    assert_problem(act(as_user("hw1"), handle, "claim"), 404, handle["id"])
    assert_problem(act(as_user("alice"), handle, "claim"), 404, handle["id"])
    assert snapshot(db_session, handle["id"]) == before


def test_a_completed_task_cannot_be_claimed(as_user, db_session, ticket):
    triage = next(
        task
        for task in db_session.scalars(select(HumanTask).where(HumanTask.ticket_id == ticket["id"]))
        if task.element_id == "task_triage"
    )
    assert triage.status == "completed"
    response = act(as_user("desk"), {"id": triage.id}, "claim")
    assert_problem(response, 409, triage.id)


# ---------------------------------------------------------------- unclaim


def test_the_holder_gives_a_claim_back_to_the_group(as_user, db_session, ticket, claimed):
    response = act(as_user("net1"), claimed, "unclaim")

    assert response.status_code == 200, response.json
    assert response.json["assignee"] is None
    assert response.json["candidate_groups"] == ["network"]
    assert claimed["id"] in listed(as_user("net_lead"), "group")
    [event] = history(as_user("admin"), ticket, "task_unclaimed")
    assert event["actor"] == "net1"
    assert (event["data"]["from"]["assignee"], event["data"]["to"]["assignee"]) == ("net1", None)
    [row] = audit_rows(db_session, claimed["id"], "task.unclaim")
    assert (row.before["assignee"], row.after["assignee"]) == ("net1", None)


def test_an_admin_gives_back_someone_elses_claim(as_user, claimed):
    response = act(as_user("admin"), claimed, "unclaim")
    assert response.status_code == 200 and response.json["assignee"] is None
    # and the task can be claimed again
    assert act(as_user("net_lead"), claimed, "claim").json["assignee"] == "net_lead"


@pytest.fixture
def department(db_session):
    """desk dispatches for the department alice reports from."""
    it = Department(code="it", name="信息部")
    db_session.add(it)
    db_session.flush()
    for username in ("desk", "alice"):
        find_user(db_session=db_session, username=username).department_id = it.id
    db_session.commit()
    return it


def test_a_dispatcher_gives_back_a_claim_in_their_department(as_user, department):
    ticket = new_ticket(as_user("alice"))
    triage = open_task(as_user("reviewer"), ticket, "task_triage")
    assert act(as_user("reviewer"), triage, "claim").status_code == 200

    response = act(as_user("desk"), triage, "unclaim")

    assert response.status_code == 200, response.json
    assert response.json["assignee"] is None
    assert triage["id"] in listed(as_user("reviewer"), "group")


def test_a_task_nobody_claimed_cannot_be_given_back(as_user, db_session, handle):
    before = snapshot(db_session, handle["id"])
    assert_problem(act(as_user("net1"), handle, "unclaim"), 409, handle["id"])
    assert_problem(act(as_user("admin"), handle, "unclaim"), 409, handle["id"])
    assert snapshot(db_session, handle["id"]) == before


def repair_onsite(as_user) -> dict:
    """An equipment repair dispatched to fac1: the process assigns task_onsite to fac1."""
    ticket = new_ticket(
        as_user("alice"),
        title="空调外机异响",
        process_key="equipment_repair",
        category="facilities",
        region="shanghai",
        device_no="DEV-T-2",
    )
    dispatch = open_task(as_user("desk"), ticket, "task_dispatch")
    data = {"engineer": "fac1", "parts_needed": False}
    assert act(as_user("desk"), dispatch, "complete", {"data": data}).status_code == 200
    onsite = open_task(as_user("fac1"), ticket, "task_onsite")
    assert onsite["assignee"] == "fac1"
    return onsite


def test_a_task_the_process_assigned_cannot_be_given_back(as_user, db_session):
    onsite = repair_onsite(as_user)
    before = snapshot(db_session, onsite["id"])

    problem = assert_problem(act(as_user("fac1"), onsite, "unclaim"), 409, "camunda:assignee")
    assert "fac1" in problem["detail_zh"]
    assert_problem(act(as_user("admin"), onsite, "unclaim"), 409, "camunda:assignee")

    assert snapshot(db_session, onsite["id"]) == before
    # the way out is a transfer, with a reason
    response = act(
        as_user("fac1"), onsite, "transfer", {"to_group": "facilities", "reason": "外出"}
    )
    assert response.status_code == 200 and response.json["assignee"] is None


def test_a_task_given_by_a_transfer_cannot_be_given_back(as_user, db_session, handle):
    body = {"to_user": "net_lead", "reason": "组长熟悉该设备"}
    assert act(as_user("admin"), handle, "transfer", body).status_code == 200
    before = snapshot(db_session, handle["id"])

    problem = assert_problem(act(as_user("net_lead"), handle, "unclaim"), 409, "admin")
    assert "转派" in problem["detail_zh"] and "transferred" in problem["detail_en"]

    assert snapshot(db_session, handle["id"]) == before


# ---------------------------------------------------------------- transfer


def test_the_holder_transfers_to_a_user(as_user, db_session, ticket, claimed):
    response = act(as_user("net1"), claimed, "transfer", {"to_user": "hw1", "reason": REASON})

    assert response.status_code == 200, response.json
    assert response.json["assignee"] == "hw1"
    assert claimed["id"] in listed(as_user("hw1"), "mine")
    assert_problem(act(as_user("net1"), claimed, "read"), 404, claimed["id"])
    [event] = history(as_user("admin"), ticket, "task_transferred")
    assert event["actor"] == "net1" and event["data"]["reason"] == REASON
    assert (event["data"]["from"]["assignee"], event["data"]["to"]["assignee"]) == ("net1", "hw1")
    [row] = audit_rows(db_session, claimed["id"], "task.transfer")
    assert row.before["assignee"] == "net1"
    assert row.after["assignee"] == "hw1" and row.after["reason"] == REASON
    # the new holder can finish it
    done = act(as_user("hw1"), claimed, "complete", {"data": HANDLED})
    assert done.status_code == 200 and done.json["task"]["completed_by"] == "hw1"


def test_a_dispatcher_transfers_to_a_group(as_user, db_session, ticket, handle):
    response = act(as_user("admin"), handle, "transfer", {"to_group": "hardware", "reason": REASON})

    assert response.status_code == 200, response.json
    assert response.json["assignee"] is None
    assert response.json["candidate_groups"] == ["hardware"]
    for engineer in ("hw1", "hw_lead"):
        assert handle["id"] in listed(as_user(engineer), "group")
    assert_problem(act(as_user("net1"), handle, "read"), 404, handle["id"])
    [event] = history(as_user("admin"), ticket, "task_transferred")
    assert event["data"]["from"]["candidate_groups"] == ["network"]
    assert event["data"]["to"]["candidate_groups"] == ["hardware"]


def test_a_dispatcher_transfers_a_claimed_task_in_their_department(as_user, department):
    ticket = new_ticket(as_user("alice"))
    triage = open_task(as_user("reviewer"), ticket, "task_triage")
    assert act(as_user("reviewer"), triage, "claim").status_code == 200

    response = act(as_user("desk"), triage, "transfer", {"to_user": "hw_lead", "reason": REASON})

    assert response.status_code == 200 and response.json["assignee"] == "hw_lead"


def test_the_holder_transfers_to_a_group_and_lets_go(as_user, claimed):
    body = {"to_group": "hardware", "reason": REASON}
    response = act(as_user("net1"), claimed, "transfer", body)
    assert response.status_code == 200
    assert (response.json["assignee"], response.json["candidate_groups"]) == (None, ["hardware"])


@pytest.mark.parametrize(
    ("body", "named", "field"),
    [
        ({"to_user": "hw1"}, "reason", "reason"),
        ({"to_user": "hw1", "reason": "   "}, "reason", "reason"),
        ({"reason": REASON}, "to_user", "to_group"),
        ({"to_user": "hw1", "to_group": "hardware", "reason": REASON}, "to_group", "to_user"),
        ({"to_user": "nobody", "reason": REASON}, "nobody", "to_user"),
        ({"to_user": "net1", "reason": REASON}, "net1", "to_user"),
        ({"to_group": "no_such_group", "reason": REASON}, "no_such_group", "to_group"),
    ],
)
def test_an_invalid_transfer_is_refused_naming_the_problem(
    as_user, db_session, claimed, body, named, field
):
    """Without a reason, without exactly one target, to nobody, to oneself (net1 holds it),
    to a group that is not there."""
    before = snapshot(db_session, claimed["id"])

    problem = assert_problem(act(as_user("net1"), claimed, "transfer", body), 400, named)

    assert field in field_errors(problem)
    assert snapshot(db_session, claimed["id"]) == before


def test_a_transfer_to_the_group_that_has_it_is_refused(as_user, db_session, handle):
    before = snapshot(db_session, handle["id"])
    response = act(as_user("admin"), handle, "transfer", {"to_group": "network", "reason": REASON})
    assert_problem(response, 400, "network")
    assert snapshot(db_session, handle["id"]) == before


def test_a_transfer_to_the_holder_is_refused(as_user, claimed):
    response = act(as_user("admin"), claimed, "transfer", {"to_user": "net1", "reason": REASON})
    assert_problem(response, 400, "net1")


def test_a_deactivated_user_or_an_empty_group_cannot_receive_a_task(as_user, db_session, claimed):
    find_user(db_session=db_session, username="hw1").is_active_account = False
    db_session.commit()
    before = snapshot(db_session, claimed["id"])

    response = act(as_user("net1"), claimed, "transfer", {"to_user": "hw1", "reason": REASON})
    assert_problem(response, 400, "hw1")

    for username in ("hw1", "hw_lead"):
        find_user(db_session=db_session, username=username).is_active_account = False
    db_session.commit()
    response = act(as_user("net1"), claimed, "transfer", {"to_group": "hardware", "reason": REASON})
    assert_problem(response, 400, "hardware")
    assert snapshot(db_session, claimed["id"]) == before


def test_a_group_member_must_claim_before_transferring(as_user, db_session, handle):
    before = snapshot(db_session, handle["id"])
    response = act(as_user("net1"), handle, "transfer", {"to_user": "hw1", "reason": REASON})
    assert_problem(response, 403, handle["id"])
    assert snapshot(db_session, handle["id"]) == before


def test_a_completed_task_cannot_be_transferred(as_user, claimed):
    assert act(as_user("net1"), claimed, "complete", {"data": HANDLED}).status_code == 200
    response = act(as_user("admin"), claimed, "transfer", {"to_user": "hw1", "reason": REASON})
    assert_problem(response, 409, claimed["id"])


# ---------------------------------------------------------------- least privilege


ROUTES = [
    ("read", None),
    ("claim", None),
    ("unclaim", None),
    ("transfer", {"to_user": "hw1", "reason": REASON}),
    ("transfer", {"to_group": "hardware", "reason": REASON}),
    ("complete", {"data": HANDLED}),
]


@pytest.mark.parametrize("intruder", ["hw1", "net_lead", "alice", "reviewer"])
@pytest.mark.parametrize(("action", "body"), ROUTES)
def test_nobody_reaches_another_engineers_task(
    as_user, db_session, claimed, intruder, action, body
):
    """net1 holds the task: another engineer (of another group, or of net1's own group), a
    requester and a reviewer get 404 on every route, and nothing about the task changes."""
    before = snapshot(db_session, claimed["id"])

    response = act(as_user(intruder), claimed, action, body)

    assert_problem(response, 404, claimed["id"])
    assert snapshot(db_session, claimed["id"]) == before
    assert claimed["id"] not in listed(as_user(intruder))


# ---------------------------------------------------------------- complete


def test_a_completion_is_audited(as_user, db_session, claimed):
    response = act(as_user("net1"), claimed, "complete", {"data": HANDLED})

    assert response.status_code == 200
    [row] = audit_rows(db_session, claimed["id"], "task.complete")
    assert row.actor == "net1"
    assert row.before["status"] == "open" and row.before["assignee"] == "net1"
    assert row.after["status"] == "completed" and row.after["completed_by"] == "net1"
    assert row.after["data"] == HANDLED


def test_form_errors_name_the_fields_and_leave_the_task_open(as_user, db_session, claimed):
    before = snapshot(db_session, claimed["id"])
    response = act(as_user("net1"), claimed, "complete", {"data": {"time_spent_minutes": -5}})
    problem = assert_problem(response, 400, "solution")
    assert {"solution", "time_spent_minutes"} <= set(problem["errors"])
    assert snapshot(db_session, claimed["id"]) == before


# ---------------------------------------------------------------- at the same moment


def post(url: str, headers: dict, body: dict | None = None) -> int:
    request = urllib.request.Request(
        url,
        data=json.dumps(body or {}).encode(),
        method="POST",
        headers={**headers, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        assert error.headers["Content-Type"] == "application/problem+json"
        return error.code


def test_two_candidates_claim_at_once_and_one_wins(fresh_app):
    """Real threads, real HTTP, the database under test: exactly one claim wins.

    On PostgreSQL the instance row lock orders two overlapping claims and the second is told
    the task is held (409). SQLite's write lock orders whole requests, so the second starts
    after the first committed and no longer sees the task (404), like anyone it is not for.
    """
    with fresh_app.app_context():
        alice = find_user(db_session=db.session, username="alice")
        ticket = create_ticket(
            db_session=db.session, requester=alice, title="并发认领", process_key="it_service"
        )
        db.session.commit()
        (task,) = engine.open_tasks(db_session=db.session, instance_id=ticket.process_instance_id)
        task_id = task.id
        db.session.remove()

    server = make_server("127.0.0.1", 0, fresh_app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}{TASKS}/{task_id}/claim"
    results: dict[str, int] = {}
    barrier = threading.Barrier(2)

    def claim(username: str) -> None:
        barrier.wait()
        results[username] = post(url, auth_header(fresh_app, username))

    try:
        threads = [threading.Thread(target=claim, args=(name,)) for name in ("desk", "reviewer")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        server.shutdown()

    assert sorted(results.values()) in ([200, 404], [200, 409]), results
    winner = next(name for name, status in results.items() if status == 200)
    with fresh_app.app_context():
        assert db.session.get(HumanTask, task_id).assignee == winner
        claims = db.session.scalars(
            select(ProcessEvent).where(ProcessEvent.event_type == "task_claimed")
        ).all()
        assert [event.actor for event in claims] == [winner]
        db.session.remove()


def test_a_claim_is_news_on_the_work_order(as_user, db_session):
    """The work order's updated_at moves when someone takes its task."""
    from app.tickets.models import Ticket

    ticket = as_user("alice").post("/api/v1/tickets", json={"title": "打印机卡纸"}).json
    before = db_session.get(Ticket, ticket["id"]).updated_at
    [task] = as_user("desk").get(f"/api/v1/tasks?ticket_id={ticket['id']}").json["items"]
    assert as_user("desk").post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200
    db_session.expire_all()
    assert db_session.get(Ticket, ticket["id"]).updated_at > before
