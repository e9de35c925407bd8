"""The dispatch API: recommendations with their breakdown, assignment and its override reason,
positions, the pool and a grab race over real HTTP, group configs and engineer profiles."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest
import time_machine
from sqlalchemy import select
from werkzeug.serving import make_server

from app.audit.models import AuditEntry
from app.auth.tokens import issue_personal_token
from app.extensions import db
from tests.conftest import Api, backend
from tests.test_dispatch_service import (
    FAR,
    MONDAY_10,
    NEAR,
    configure,
    engineer,
    skills,
    user,
    work_order,
)


def test_recommendations_rank_with_the_breakdown_and_name_exclusions(db_session, as_user):
    skills(db_session)
    with time_machine.travel(MONDAY_10, tick=False):
        engineer(db_session, "n_near", "network", {"network": 3}, at=NEAR)
        engineer(db_session, "n_far", "network", {"network": 3}, at=FAR)
        flow = work_order(db_session, "network", "P2")
        answer = as_user("desk").get(f"/api/v1/tickets/{flow.ticket.id}/dispatch-recommendations")
    assert answer.status_code == 200, answer.json
    body = answer.json
    assert (body["ticket_id"], body["mode"], body["task"]["element_id"]) == (
        flow.ticket.id,
        "dispatcher",
        "task_handle",
    )
    assert body["job"]["required_skills"] == {"network": 3}
    assert (body["candidates"], body["eligible"]) == (4, 2)
    assert [row["username"] for row in body["ranked"]] == ["n_near", "n_far"]
    best = body["ranked"][0]
    assert best["position_source"] == "live" and best["total"] < body["ranked"][1]["total"]
    assert set(best["parts"]) == {"travel", "load", "sla_risk", "fairness", "familiarity"}
    assert {row["username"]: row["code"] for row in body["excluded"]} == {
        "net1": "skill",
        "net_lead": "skill",
    }
    assert body["excluded"][0]["zh"].startswith("技能不符: 需要 网络 ≥ 3 级")
    assert body["excluded_counts"] == {"skill": 2}
    assert (
        as_user("net1")
        .get(f"/api/v1/tickets/{flow.ticket.id}/dispatch-recommendations")
        .status_code
        == 403
    )


def test_an_override_without_a_reason_is_refused_and_with_one_audited(db_session, as_user):
    skills(db_session)
    with time_machine.travel(MONDAY_10, tick=False):
        engineer(db_session, "n_near", "network", {"network": 3}, at=NEAR)
        engineer(db_session, "n_far", "network", {"network": 3}, at=FAR)
        flow = work_order(db_session, "network", "P3")
        url = f"/api/v1/tickets/{flow.ticket.id}/assign"
        refused = as_user("desk").post(url, json={"username": "n_far"})
        assert refused.status_code == 400
        assert refused.content_type == "application/problem+json"
        assert refused.json["errors"] == {"reason": ["required when overriding the recommendation"]}
        assert "n_near" in refused.json["detail_zh"]
        assert flow.task("task_handle").assignee is None
        # handlers see the work order but do not dispatch it
        assert as_user("net1").post(url, json={"username": "n_near"}).status_code == 403

        done = as_user("desk").post(url, json={"username": "n_far", "reason": "客户指定"})
    assert done.status_code == 200, done.json
    assert (done.json["chosen"], done.json["decided_by"], done.json["reason"]) == (
        "n_far",
        "desk",
        "客户指定",
    )
    assert flow.task("task_handle").assignee == "n_far"
    audit = db_session.scalars(
        select(AuditEntry).where(AuditEntry.action == "task.dispatch.override")
    ).one()
    assert (audit.source, audit.after["reason"]) == ("api", "客户指定")


def test_a_reported_position_is_live_in_the_profile_and_checked(db_session, client, as_user):
    skills(db_session)
    engineer(db_session, "n_one", "network", {"network": 3}, home=FAR)
    db_session.commit()
    me = signed_in(client, db_session, "n_one")
    answer = me.request(
        "PUT",
        "/api/v1/engineers/me/position",
        json={"lat": NEAR[0], "lng": NEAR[1], "accuracy_m": 12},
    )
    assert answer.status_code == 200, answer.json
    assert answer.json["source"] == "live"
    profile = as_user("admin").get("/api/v1/engineers/n_one/profile").json
    assert profile["position"]["source"] == "live" and profile["position"]["lat"] == NEAR[0]
    assert profile["home"] == {"lat": FAR[0], "lng": FAR[1]}
    assert profile["skills"] == {"network": 3}
    bad = me.request("PUT", "/api/v1/engineers/me/position", json={"lat": 91, "lng": 0})
    assert bad.status_code == 400
    assert (
        as_user("desk")
        .request("PUT", "/api/v1/engineers/me/position", json={"lat": 1, "lng": 1})
        .status_code
        == 403
    )


def test_profiles_and_group_configs_are_admins_to_change(db_session, as_user):
    admin = as_user("admin")
    body = {
        "home": {"lat": 31.2, "lng": 121.5},
        "capacity": 4,
        "shifts": [
            {"weekday": 0, "start": "09:00", "end": "18:00"},
            {"weekday": 5, "start": "22:00", "end": "06:00"},
        ],
        "leave": [
            {
                "starts_at": "2026-12-01T09:00:00+08:00",
                "ends_at": "2026-12-02T18:00:00+08:00",
                "reason": "年假",
            }
        ],
    }
    answer = admin.request("PUT", "/api/v1/engineers/net1/profile", json=body)
    assert answer.status_code == 200, answer.json
    assert answer.json["capacity"] == 4 and len(answer.json["shifts"]) == 2
    assert answer.json["leave"][0]["starts_at"] == "2026-12-01T01:00:00+00:00"
    backwards = {
        "leave": [{"starts_at": "2026-12-02T00:00:00Z", "ends_at": "2026-12-01T00:00:00Z"}]
    }
    assert admin.request("PUT", "/api/v1/engineers/net1/profile", json=backwards).status_code == 400
    assert (
        admin.request(
            "PUT",
            "/api/v1/engineers/net1/profile",
            json={"shifts": [{"weekday": 0, "start": "9:00", "end": "18:00"}]},
        ).status_code
        == 400
    )
    assert (
        admin.request("PUT", "/api/v1/engineers/desk/profile", json={"capacity": 3}).status_code
        == 404
    )
    assert as_user("net1").get("/api/v1/engineers/net1/profile").status_code == 200
    assert as_user("net1").get("/api/v1/engineers/hw1/profile").status_code == 404

    config = admin.request(
        "PUT",
        "/api/v1/groups/hardware/dispatch-config",
        json={"mode": "pool", "weights": {"travel": 2}, "pool_wait_minutes": 15},
    )
    assert config.status_code == 200, config.json
    assert (config.json["mode"], config.json["pool_wait_minutes"]) == ("pool", 15)
    assert config.json["weights"]["travel"] == 2 and config.json["weights"]["load"] == 15
    assert as_user("desk").get("/api/v1/groups/hardware/dispatch-config").json["configured"]
    assert as_user("net1").get("/api/v1/groups/hardware/dispatch-config").status_code == 404
    assert (
        admin.request(
            "PUT", "/api/v1/groups/hardware/dispatch-config", json={"mode": "random"}
        ).status_code
        == 400
    )
    assert admin.get("/api/v1/groups/nope/dispatch-config").status_code == 404
    changes = db_session.scalars(
        select(AuditEntry.action).where(
            AuditEntry.action.in_(("engineer.profile", "group.dispatch_config"))
        )
    ).all()
    assert sorted(set(changes)) == ["engineer.profile", "group.dispatch_config"]


def test_the_pool_lists_and_a_grab_takes(db_session, client, as_user):
    skills(db_session)
    configure(db_session, "hardware", "pool")
    engineer(db_session, "h_one", "hardware", {"pc": 3}, home=NEAR)
    engineer(db_session, "h_two", "hardware", {"pc": 3}, home=FAR)
    flow = work_order(db_session, "hardware", "P3")
    db_session.commit()
    one = signed_in(client, db_session, "h_one")
    listed = one.get("/api/v1/dispatch/pool").json
    task_id = flow.task("task_handle").id
    assert [item["id"] for item in listed["items"]] == [task_id]
    assert listed["items"][0]["ticket_number"] == flow.ticket.number
    assert listed["items"][0]["distance_km"] < 1.0
    taken = one.post(f"/api/v1/dispatch/pool/{task_id}/grab")
    assert taken.status_code == 200 and taken.json["assignee"] == "h_one"
    two = signed_in(client, db_session, "h_two")
    lost = two.post(f"/api/v1/dispatch/pool/{task_id}/grab")
    assert lost.status_code == 409 and "h_one" in lost.json["detail_zh"]
    assert one.get("/api/v1/dispatch/pool").json["total"] == 0


def signed_in(client, db_session, username: str) -> Api:
    """An API client for an engineer made in the test (the session's tokens predate them)."""
    api = Api(client, "admin")
    _row, token = issue_personal_token(db_session=db_session, user=user(db_session, username))
    db_session.commit()
    api.headers, api.username = {"Authorization": f"Bearer {token}"}, username
    return api


def _post(url: str, token: str) -> int:
    request = urllib.request.Request(
        url, data=b"", method="POST", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        assert error.headers["Content-Type"] == "application/problem+json"
        assert json.loads(error.read())["status"] == error.code
        return error.code


ROUNDS = 5


@pytest.mark.skipif(
    backend() != "postgresql",
    reason="the race is decided by PostgreSQL's row lock (FOR UPDATE); SQLite serialises "
    "every write transaction at BEGIN, so two threads never race there",
)
def test_two_engineers_grab_at_once_exactly_one_wins(fresh_app):
    with fresh_app.app_context():
        session = db.session
        skills(session)
        configure(session, "hardware", "pool")
        engineer(session, "h_one", "hardware", {"pc": 3}, home=NEAR)
        engineer(session, "h_two", "hardware", {"pc": 3}, home=NEAR)
        session.commit()
        tasks = [
            work_order(session, "hardware", "P3").task("task_handle").id for _ in range(ROUNDS)
        ]
        tokens = {}
        for name in ("h_one", "h_two"):
            _row, tokens[name] = issue_personal_token(db_session=session, user=user(session, name))
        session.commit()
        session.remove()

    server = make_server("127.0.0.1", 0, fresh_app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}/api/v1/dispatch/pool"
    try:
        for task_id in tasks:
            results: list[tuple[str, int]] = []
            barrier = threading.Barrier(2)

            def grab(name, task_id=task_id, barrier=barrier, results=results):
                barrier.wait()
                results.append((name, _post(f"{base}/{task_id}/grab", tokens[name])))

            threads = [threading.Thread(target=grab, args=(name,)) for name in tokens]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            assert sorted(status for _name, status in results) == [200, 409], results
    finally:
        server.shutdown()

    with fresh_app.app_context():
        from app.dispatch.models import DispatchDecision
        from app.engine.models import HumanTask, ProcessEvent

        for task_id in tasks:
            task = db.session.get(HumanTask, task_id)
            claims = db.session.scalars(
                select(ProcessEvent).where(ProcessEvent.event_type == "task_claimed")
            ).all()
            mine = [e for e in claims if e.data["task_id"] == task_id]
            assert len(mine) == 1 and mine[0].actor == task.assignee
            decisions = db.session.scalars(
                select(DispatchDecision).where(DispatchDecision.task_id == task_id)
            ).all()
            assert [(d.mode, d.chosen) for d in decisions] == [("pool", task.assignee)]
        db.session.remove()
