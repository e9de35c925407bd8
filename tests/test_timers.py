"""Timers live in the database: they survive a restart, and workers in separate processes
share the due ones without firing any twice."""

import os
import subprocess
import sys
from datetime import datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import engine
from app.auth.service import find_user
from app.engine.models import HumanTask, ProcessEvent, Timer
from app.engine.timers import _claim_due_instance
from app.extensions import db
from app.tickets.service import create_ticket
from tests.conftest import ROOT, SHANGHAI, backend

FORWARD = {
    "category": "hardware",
    "priority": "P1",
    "region": "beijing",
    "resolution": "forward",
    "triage_note": "",
}


def overdue_tickets(app, count: int) -> list[int]:
    """Tickets whose 4-hour SLA timer started five hours ago, committed."""
    with (
        app.app_context(),
        time_machine.travel(datetime.now(SHANGHAI) - timedelta(hours=5), tick=False),
    ):
        alice = find_user(db_session=db.session, username="alice")
        desk = find_user(db_session=db.session, username="desk")
        ids = []
        for i in range(count):
            ticket = create_ticket(
                db_session=db.session, requester=alice, title=f"超时 {i}", process_key="it_service"
            )
            (triage,) = engine.open_tasks(
                db_session=db.session, instance_id=ticket.process_instance_id
            )
            engine.complete_task(
                db_session=db.session, task_id=triage.id, data=FORWARD, actor=desk.username
            )
            ids.append(ticket.process_instance_id)
        db.session.commit()
        db.session.remove()
    return ids


def run_worker(app) -> subprocess.Popen:
    env = {**os.environ, "PAIDAN_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"]}
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--once"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def escalations(app, instance_ids) -> dict[int, int]:
    with app.app_context():
        rows = db.session.execute(
            select(ProcessEvent.instance_id, func.count())
            .where(
                ProcessEvent.event_type == "timer_fired", ProcessEvent.instance_id.in_(instance_ids)
            )
            .group_by(ProcessEvent.instance_id)
        ).all()
        db.session.remove()
    return dict(rows)


def test_a_timer_set_before_a_restart_is_fired_by_a_worker_process(fresh_app):
    (instance_id,) = overdue_tickets(fresh_app, 1)
    with fresh_app.app_context():
        db.engine.dispose()  # the web process goes away; a new process picks up

    worker = run_worker(fresh_app)
    output, _ = worker.communicate(timeout=120)
    assert worker.returncode == 0, output
    assert "fired 1" in output

    with fresh_app.app_context():
        tasks = engine.open_tasks(db_session=db.session, instance_id=instance_id)
        assert [(t.element_id, t.assignee) for t in tasks] == [("task_escalate", "hw_lead")]
        assert db.session.scalar(select(func.count()).select_from(Timer)) == 0
        # This process still holds the workflow it saved before the worker moved it on; the
        # next step here must work from what the worker stored, not from that copy.
        engine.complete_task(
            db_session=db.session,
            task_id=tasks[0].id,
            actor="hw_lead",
            data={"solution": "组长处理", "escalation_note": "超时"},
        )
        db.session.commit()
        (review,) = engine.open_tasks(db_session=db.session, instance_id=instance_id)
        assert review.element_id == "task_review"
        db.session.remove()


def test_two_worker_processes_fire_each_due_timer_exactly_once(fresh_app):
    ids = overdue_tickets(fresh_app, 12)
    workers = [run_worker(fresh_app), run_worker(fresh_app)]
    outputs = [w.communicate(timeout=120)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs

    assert escalations(fresh_app, ids) == {i: 1 for i in ids}
    with fresh_app.app_context():
        open_escalations = db.session.scalar(
            select(func.count())
            .select_from(HumanTask)
            .where(HumanTask.element_id == "task_escalate", HumanTask.status == "open")
        )
        assert open_escalations == 12
        db.session.remove()


@pytest.mark.skipif(backend() != "postgresql", reason="SKIP LOCKED exists on PostgreSQL only")
def test_a_claimed_instance_is_skipped_by_another_worker(fresh_app):
    ids = overdue_tickets(fresh_app, 2)
    with fresh_app.app_context():
        first, second = Session(db.engine), Session(db.engine)
        try:
            now = datetime.now(SHANGHAI)
            claimed_by_first = _claim_due_instance(first, now, set())
            claimed_by_second = _claim_due_instance(second, now, set())
            assert {claimed_by_first, claimed_by_second} == set(ids)
            assert _claim_due_instance(Session(db.engine), now, set()) is None
        finally:
            first.rollback()
            second.rollback()
            first.close()
            second.close()


def test_a_broken_timer_is_postponed_with_its_error_and_others_still_fire(fresh_app):
    ids = overdue_tickets(fresh_app, 2)
    with fresh_app.app_context():
        from app.engine.models import ProcessInstance

        # One instance's saved state is damaged: its timer cannot fire, the other's must.
        broken = db.session.get(ProcessInstance, ids[0])
        broken.state = "{}"
        db.session.commit()
        report = engine.fire_due_timers(db_session=db.session)
        assert (report.fired, report.failed) == (1, 1)
        timer = db.session.scalars(select(Timer).where(Timer.instance_id == ids[0])).one()
        assert timer.attempts == 1 and timer.last_error
        assert timer.due_at > datetime.now(SHANGHAI)
        db.session.remove()
    assert escalations(fresh_app, ids) == {ids[1]: 1}
