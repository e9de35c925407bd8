"""The timer worker loop: it wakes when a timer is written, and however many workers run and
whichever of them dies mid-step, every due timer fires exactly once."""

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from app import engine
from app.engine.models import HumanTask, ProcessEvent, ProcessInstance, Timer
from app.engine.signals import instance_stepped
from app.extensions import db
from app.jobs.timer_worker import TimerWorker
from app.tickets.models import Ticket
from tests.conftest import ROOT, SHANGHAI, backend
from tests.test_timers import overdue_tickets

PROCESS = ROOT / "bench" / "timer_wait.bpmn"

# A worker whose step stops after saving, inside its transaction, until it is killed: batches
# (PostgreSQL) are saved by save_steps, single instances (SQLite) by save_step.
HOLDING_WORKER = """
import time
import app.engine.timers as timers
from app.jobs.timer_worker import TimerWorker
from wsgi import app

save_step, save_steps = timers.save_step, timers.save_steps

def hold(db_session, ids):
    db_session.flush()
    print("holding", *ids, flush=True)
    time.sleep(600)

def save_and_hold(db_session, step, **kwargs):
    save_step(db_session, step, **kwargs)
    hold(db_session, [step.instance.id])

def save_all_and_hold(db_session, steps, **kwargs):
    failed = save_steps(db_session, steps, **kwargs)
    hold(db_session, [step.instance.id for step in steps])
    return failed

timers.save_step, timers.save_steps = save_and_hold, save_all_and_hold
TimerWorker(app).run()
"""


def start_instances(app, count: int, *, delay: str = "PT1S", ago: timedelta | None = None):
    """``count`` committed instances waiting on a timer of ``delay``, started ``ago``."""
    moment = datetime.now(SHANGHAI) - (ago or timedelta(0))
    with app.app_context(), time_machine.travel(moment, tick=True):
        engine.deploy(db_session=db.session, files=[(PROCESS.name, PROCESS.read_bytes())])
        ids = [
            engine.start(db_session=db.session, process_key="timer_wait", data={"delay": delay}).id
            for _ in range(count)
        ]
        db.session.commit()
        db.session.remove()
    return ids


def fired_per_instance(app, ids) -> dict[int, int]:
    with app.app_context():
        rows = db.session.execute(
            select(ProcessEvent.instance_id, func.count())
            .where(ProcessEvent.event_type == "timer_fired", ProcessEvent.instance_id.in_(ids))
            .group_by(ProcessEvent.instance_id)
        ).all()
        db.session.remove()
    return dict(rows)


def pending_timers(app) -> int:
    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(Timer))
        db.session.remove()
    return count


def wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.mark.skipif(backend() != "postgresql", reason="LISTEN/NOTIFY exists on PostgreSQL only")
def test_a_sleeping_worker_wakes_when_a_timer_due_soon_is_written(fresh_app):
    worker = TimerWorker(fresh_app)
    thread = worker.start()
    try:
        # No timer at all: the worker sleeps a full minute unless told otherwise.
        assert wait_until(lambda: worker._listener is not None, 10)
        time.sleep(0.3)
        started = time.monotonic()
        (instance_id,) = start_instances(fresh_app, 1, delay="PT1S")

        assert wait_until(lambda: fired_per_instance(fresh_app, [instance_id]), 15)
        assert time.monotonic() - started < 10
        assert worker.wake_ups >= 1
    finally:
        worker.stop()
        thread.join(timeout=10)
    assert fired_per_instance(fresh_app, [instance_id]) == {instance_id: 1}
    assert pending_timers(fresh_app) == 0


def test_the_worker_fires_a_timer_that_falls_due_while_it_runs(fresh_app):
    (instance_id,) = start_instances(fresh_app, 1, delay="PT2S")
    worker = TimerWorker(fresh_app)
    thread = worker.start()
    try:
        assert wait_until(lambda: fired_per_instance(fresh_app, [instance_id]), 15)
    finally:
        worker.stop()
        thread.join(timeout=10)
    with fresh_app.app_context():
        assert (
            db.session.scalar(
                select(func.count())
                .select_from(ProcessEvent)
                .where(ProcessEvent.event_type == "timer_fired")
            )
            == 1
        )
        instance = engine.get_instance(db_session=db.session, instance_id=instance_id)
        assert instance.status == "completed"
        db.session.remove()


def test_two_workers_fire_each_due_timer_exactly_once(fresh_app):
    fresh_app.config["TIMER_CLAIM_SIZE"] = 4
    fresh_app.config["TIMER_BATCH_SIZE"] = 8
    ids = start_instances(fresh_app, 40, ago=timedelta(minutes=5))
    workers = [TimerWorker(fresh_app), TimerWorker(fresh_app)]
    threads = [w.start() for w in workers]
    try:
        assert wait_until(lambda: pending_timers(fresh_app) == 0, 60)
    finally:
        for w in workers:
            w.stop()
        for t in threads:
            t.join(timeout=10)
    assert fired_per_instance(fresh_app, ids) == {i: 1 for i in ids}


def test_a_worker_killed_inside_its_transaction_leaves_the_timer_to_another(fresh_app):
    (instance_id,) = start_instances(fresh_app, 1, ago=timedelta(minutes=5))
    with fresh_app.app_context():
        db.engine.dispose()
    env = {**os.environ, "PAIDAN_DATABASE_URL": fresh_app.config["SQLALCHEMY_DATABASE_URI"]}
    doomed = subprocess.Popen(
        [sys.executable, "-c", HOLDING_WORKER],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in doomed.stdout], daemon=True).start()
    try:
        deadline = time.monotonic() + 60
        line = ""
        while not line.startswith("holding") and time.monotonic() < deadline:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        assert line.split() == ["holding", str(instance_id)]
    finally:
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)

    # What the dead worker did is gone with its transaction.
    assert fired_per_instance(fresh_app, [instance_id]) == {}
    assert pending_timers(fresh_app) == 1

    survivor = TimerWorker(fresh_app)
    thread = survivor.start()
    try:
        assert wait_until(lambda: pending_timers(fresh_app) == 0, 30)
    finally:
        survivor.stop()
        thread.join(timeout=10)
    assert fired_per_instance(fresh_app, [instance_id]) == {instance_id: 1}


BATCHES = pytest.mark.skipif(
    backend() != "postgresql", reason="batches need row locks: PostgreSQL only (SQLite fires one)"
)


def events_of(instance_id: int) -> list[tuple[str, str | None]]:
    return [
        (e.event_type, e.element_id)
        for e in db.session.scalars(
            select(ProcessEvent)
            .where(ProcessEvent.instance_id == instance_id)
            .order_by(ProcessEvent.id)
        )
    ]


@BATCHES
def test_a_batch_fires_around_a_broken_instance_and_postpones_only_its_timer(fresh_app):
    ids = start_instances(fresh_app, 6, ago=timedelta(minutes=5))
    broken = ids[2]
    with fresh_app.app_context():
        db.session.get(ProcessInstance, broken).state = "{}"  # damaged: it cannot be loaded
        db.session.commit()
        before = events_of(broken)

        report = engine.fire_due_timers(db_session=db.session, batch_size=4)

        assert (report.fired, report.failed) == (5, 1)
        timer = db.session.scalars(select(Timer).where(Timer.instance_id == broken)).one()
        assert timer.attempts == 1 and timer.last_error
        assert timer.due_at > datetime.now(SHANGHAI)
        instance = db.session.get(ProcessInstance, broken)
        assert (instance.status, instance.state, instance.version) == ("running", "{}", 2)
        assert events_of(broken) == before
        db.session.remove()
    assert fired_per_instance(fresh_app, ids) == {i: 1 for i in ids if i != broken}
    assert pending_timers(fresh_app) == 1


@BATCHES
def test_a_receiver_failing_in_a_batch_rolls_back_its_instance_alone(fresh_app):
    ids = start_instances(fresh_app, 5, ago=timedelta(minutes=5))
    refused = ids[1]

    def refuse(instance, **_):
        if instance.id == refused:
            raise RuntimeError(f"receiver refuses instance {instance.id}")

    instance_stepped.connect(refuse)
    try:
        with fresh_app.app_context():
            before = events_of(refused)
            report = engine.fire_due_timers(db_session=db.session, batch_size=8)

            assert (report.fired, report.failed) == (4, 1)
            timer = db.session.scalars(select(Timer).where(Timer.instance_id == refused)).one()
            assert timer.attempts == 1
            assert f"receiver refuses instance {refused}" in timer.last_error
            instance = db.session.get(ProcessInstance, refused)
            assert (instance.status, instance.version) == ("running", 1)
            assert events_of(refused) == before
            db.session.remove()
    finally:
        instance_stepped.disconnect(refuse)
    assert fired_per_instance(fresh_app, ids) == {i: 1 for i in ids if i != refused}


@BATCHES
def test_a_batch_tells_the_receivers_what_a_single_step_tells_them(fresh_app):
    alone, *batched = overdue_tickets(fresh_app, 3)
    with fresh_app.app_context():
        now = datetime.now(SHANGHAI)
        # One instance fired alone (a batch of one takes the single-step path) ...
        db.session.execute(
            Timer.__table__.update()
            .where(Timer.instance_id.in_(batched))
            .values(due_at=now + timedelta(hours=1))
        )
        db.session.commit()
        assert engine.fire_due_timers(db_session=db.session, now=now).fired == 1
        # ... the two others together.
        db.session.execute(Timer.__table__.update().values(due_at=now - timedelta(minutes=1)))
        db.session.commit()
        report = engine.fire_due_timers(db_session=db.session, now=now, batch_size=4)
        assert (report.fired, report.failed) == (2, 0)

        def seen(instance_id: int):
            ticket = db.session.scalars(
                select(Ticket).where(Ticket.process_instance_id == instance_id)
            ).one()
            tasks = db.session.scalars(
                select(HumanTask)
                .where(HumanTask.instance_id == instance_id, HumanTask.status == "open")
                .order_by(HumanTask.element_id)
            ).all()
            return (
                ticket.status,
                ticket.current_step,
                [(t.element_id, t.assignee, t.candidate_groups) for t in tasks],
                events_of(instance_id)[-4:],
            )

        assert seen(batched[0]) == seen(alone) == seen(batched[1])
        assert seen(alone)[1]  # the escalation task is the ticket's current step
        db.session.remove()
