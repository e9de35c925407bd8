"""A waiting timer event gets a new due time (an SLA deadline that moved): the engine fires it
then, not at the old time, and a due time already past fires it at once."""

from __future__ import annotations

from datetime import datetime, timedelta

import time_machine
from sqlalchemy import select

from app import engine
from app.engine.models import Timer
from tests.conftest import SHANGHAI
from tests.test_it_service import FORWARD, it_ticket

START = datetime(2026, 11, 26, 9, 0, tzinfo=SHANGHAI)


def waiting_sla(db_session):
    with time_machine.travel(START, tick=False):
        flow = it_ticket(db_session)
        flow.do(
            "task_triage", "desk", category="hardware", priority="P2", region="beijing", **FORWARD
        )
    return flow


def test_a_later_due_time_holds_the_escalation_back(db_session):
    flow = waiting_sla(db_session)
    later = START + timedelta(hours=11)
    with time_machine.travel(START + timedelta(hours=1), tick=False):
        moved = engine.move_timers(
            db_session=db_session,
            instance_id=flow.instance.id,
            element_ids=["timer_it_sla"],
            due_at=later,
        )
    assert moved == 1
    (row,) = db_session.scalars(select(Timer).where(Timer.instance_id == flow.instance.id))
    assert row.due_at == later

    with time_machine.travel(START + timedelta(hours=8, minutes=1), tick=False):
        flow.fire_timers(datetime.now().astimezone())
        assert list(flow.open_tasks()) == ["task_handle"], "fired at the old due time"
    with time_machine.travel(later + timedelta(minutes=1), tick=False):
        flow.fire_timers(datetime.now().astimezone())
    assert list(flow.open_tasks()) == ["task_escalate"]
    assert [e.element_id for e in flow.events("timer_fired")] == ["timer_it_sla"]


def test_a_due_time_already_past_fires_at_once(db_session):
    flow = waiting_sla(db_session)
    with time_machine.travel(START + timedelta(hours=2), tick=False):
        engine.move_timers(
            db_session=db_session,
            instance_id=flow.instance.id,
            element_ids=["timer_it_sla"],
            due_at=START + timedelta(hours=1),
        )
    assert list(flow.open_tasks()) == ["task_escalate"]
    assert (
        db_session.scalars(select(Timer).where(Timer.instance_id == flow.instance.id)).all() == []
    )


def test_other_elements_and_finished_timers_are_left_alone(db_session):
    flow = waiting_sla(db_session)
    with time_machine.travel(START + timedelta(hours=1), tick=False):
        assert (
            engine.move_timers(
                db_session=db_session,
                instance_id=flow.instance.id,
                element_ids=["no_such_timer"],
                due_at=START + timedelta(hours=20),
            )
            == 0
        )
    (row,) = db_session.scalars(select(Timer).where(Timer.instance_id == flow.instance.id))
    assert row.due_at == START + timedelta(hours=8)
