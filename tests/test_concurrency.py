"""Two people complete the same task at the same moment: exactly one wins, the other gets 409.

Real threads send real HTTP requests to a real server on the database under test (on
PostgreSQL the instance row lock decides; on SQLite the write lock and the version counter).
"""

import json
import threading
import urllib.error
import urllib.request

from sqlalchemy import func, select
from werkzeug.serving import make_server

from app import engine
from app.auth.service import find_user
from app.engine.models import ProcessEvent, ProcessInstance
from app.extensions import db
from app.tickets.service import create_ticket
from tests.conftest import auth_header

ROUNDS = 5


def post(url: str, headers: dict, body: dict) -> int:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={**headers, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        assert error.headers["Content-Type"] == "application/problem+json"
        return error.code


def test_two_concurrent_completions_one_wins_one_gets_409(fresh_app):
    with fresh_app.app_context():
        alice = find_user(db_session=db.session, username="alice")
        tickets = [
            create_ticket(
                db_session=db.session,
                requester=alice,
                title=f"并发测试 {i}",
                process_key="it_service",
            )
            for i in range(ROUNDS)
        ]
        db.session.commit()
        cases = []
        for ticket in tickets:
            (task,) = engine.open_tasks(
                db_session=db.session, instance_id=ticket.process_instance_id
            )
            instance = db.session.get(ProcessInstance, ticket.process_instance_id)
            cases.append((task.id, instance.id, instance.version))
        db.session.remove()

    server = make_server("127.0.0.1", 0, fresh_app, threaded=True)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    base = f"http://127.0.0.1:{server.server_port}/api/v1/tasks"
    try:
        for task_id, _, _ in cases:
            results: list[int] = []
            barrier = threading.Barrier(2)

            def complete(username, priority, task_id=task_id, barrier=barrier, results=results):
                barrier.wait()
                results.append(
                    post(
                        f"{base}/{task_id}/complete",
                        auth_header(fresh_app, username),
                        {
                            "data": {
                                "category": "network",
                                "priority": priority,
                                "region": "beijing",
                                "resolution": "forward",
                                "triage_note": username,
                            }
                        },
                    )
                )

            threads = [
                threading.Thread(target=complete, args=("desk", "P1")),
                threading.Thread(target=complete, args=("admin", "P4")),
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            assert sorted(results) == [200, 409], results
    finally:
        server.shutdown()

    with fresh_app.app_context():
        for task_id, instance_id, version in cases:
            instance = db.session.get(ProcessInstance, instance_id)
            assert instance.version == version + 1, "exactly one step was saved"
            completions = db.session.scalars(
                select(ProcessEvent).where(
                    ProcessEvent.instance_id == instance_id,
                    ProcessEvent.event_type == "task_completed",
                )
            ).all()
            assert len(completions) == 1
            winner = completions[0]
            # the instance carries the winner's data and moved on exactly once
            data = engine.instance_data(db_session=db.session, instance=instance)
            assert data["triage_note"] == winner.actor
            assert data["sla_hours"] == (4 if winner.actor == "desk" else 72)
            open_now = engine.open_tasks(db_session=db.session, instance_id=instance_id)
            assert [t.element_id for t in open_now] == ["task_handle"]
            assert (
                engine.get_task(db_session=db.session, task_id=task_id).completed_by == winner.actor
            )
        assert (
            db.session.scalar(
                select(func.count())
                .select_from(ProcessEvent)
                .where(
                    ProcessEvent.event_type == "task_created",
                    ProcessEvent.element_id == "task_handle",
                )
            )
            == ROUNDS
        )
        db.session.remove()
