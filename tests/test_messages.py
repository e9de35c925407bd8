"""Message delivery: the application picks the one instance waiting under a business key.

tests/data/wait_for_payment.bpmn: start -> wait for message `payment_received` -> user task
task_confirm (service_desk) -> end.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app import engine
from app.engine.models import MessageSubscription, ProcessEvent, ProcessInstance
from app.engine.runtime import load_workflow
from app.engine.serializer import dump_state
from app.errors import Conflict, InvalidInput, NotFound

DATA = Path(__file__).resolve().parent / "data"
KEY = "wait_for_payment"
MESSAGE = "payment_received"


@pytest.fixture
def deployed(db_session):
    [definition] = engine.deploy(
        db_session=db_session,
        files=[("wait_for_payment.bpmn", (DATA / "wait_for_payment.bpmn").read_bytes())],
        actor="admin",
    )
    db_session.commit()
    return definition


def start(db_session, business_key: str) -> ProcessInstance:
    instance = engine.start(
        db_session=db_session,
        process_key=KEY,
        data={"order_no": business_key},
        business_key=business_key,
        actor="alice",
    )
    db_session.commit()
    return instance


def deliver(db_session, key: str, payload: dict | None = None, name: str = MESSAGE):
    instance = engine.deliver_message(
        db_session=db_session,
        name=name,
        correlation_key=key,
        payload=payload,
        actor="payment-gateway",
    )
    db_session.commit()
    return instance


def waits_on(db_session, instance: ProcessInstance) -> list[tuple[str, str]]:
    db_session.refresh(instance)
    return [
        (element["type"], element["element_id"])
        for element in engine.active_elements(db_session=db_session, instance=instance)
    ]


def events(db_session, instance: ProcessInstance, event_type: str | None = None):
    query = select(ProcessEvent).where(ProcessEvent.instance_id == instance.id)
    if event_type:
        query = query.where(ProcessEvent.event_type == event_type)
    return list(db_session.scalars(query.order_by(ProcessEvent.id)))


def subscriptions(db_session, instance: ProcessInstance) -> list[str]:
    return list(
        db_session.scalars(
            select(MessageSubscription.message_name).where(
                MessageSubscription.instance_id == instance.id
            )
        )
    )


def assert_state_round_trips(db_session, instance: ProcessInstance) -> None:
    db_session.refresh(instance)
    assert json.loads(dump_state(load_workflow(instance))) == json.loads(instance.state)


def test_the_fixture_process_deploys_and_waits_for_its_message(db_session, deployed):
    assert (deployed.key, deployed.version) == (KEY, 1)
    instance = start(db_session, "PO-1")
    assert instance.status == "running"
    assert waits_on(db_session, instance) == [("message", "catch_payment")]
    assert subscriptions(db_session, instance) == [MESSAGE]
    assert engine.open_tasks(db_session=db_session, instance_id=instance.id) == []
    assert_state_round_trips(db_session, instance)


def test_a_message_moves_only_the_instance_with_its_key(db_session, deployed):
    po1, po2 = start(db_session, "PO-1"), start(db_session, "PO-2")
    po2_version = po2.version

    received = deliver(db_session, "PO-1", {"amount": 120})

    assert received.id == po1.id
    assert waits_on(db_session, po1) == [("userTask", "task_confirm")]
    [task] = engine.open_tasks(db_session=db_session, instance_id=po1.id)
    assert task.candidate_groups == ["service_desk"]
    data = engine.instance_data(db_session=db_session, instance=po1)
    assert data["amount"] == 120 and data["order_no"] == "PO-1"
    assert subscriptions(db_session, po1) == []
    assert_state_round_trips(db_session, po1)

    # PO-2 has not moved
    assert waits_on(db_session, po2) == [("message", "catch_payment")]
    assert po2.version == po2_version
    assert "amount" not in engine.instance_data(db_session=db_session, instance=po2)
    assert subscriptions(db_session, po2) == [MESSAGE]
    assert events(db_session, po2, "message_received") == []


def test_the_delivery_is_in_the_event_log(db_session, deployed):
    po1 = start(db_session, "PO-1")
    deliver(db_session, "PO-1", {"amount": 120})

    [event] = events(db_session, po1, "message_received")
    assert event.element_id == "catch_payment"
    assert event.element_name == "收到付款"
    assert event.data == {"amount": 120}
    assert event.actor == "payment-gateway"
    order = [e.event_type for e in events(db_session, po1)]
    assert order.index("process_started") < order.index("message_received")
    assert order.index("message_received") < order.index("task_created")


def test_a_second_delivery_finds_nothing_waiting(db_session, deployed):
    po1 = start(db_session, "PO-1")
    deliver(db_session, "PO-1", {"amount": 120})
    version = po1.version

    with pytest.raises(NotFound) as missing:
        deliver(db_session, "PO-1", {"amount": 999})

    error = missing.value
    assert error.status == 404
    assert "PO-1" in error.zh and MESSAGE in error.zh
    assert "PO-1" in error.en and MESSAGE in error.en
    db_session.refresh(po1)
    assert po1.version == version
    assert engine.instance_data(db_session=db_session, instance=po1)["amount"] == 120
    assert len(events(db_session, po1, "message_received")) == 1


def test_an_unknown_key_finds_nothing_waiting(db_session, deployed):
    po1 = start(db_session, "PO-1")
    with pytest.raises(NotFound) as missing:
        deliver(db_session, "PO-404", {"amount": 1})
    assert missing.value.status == 404
    assert "PO-404" in missing.value.zh and "PO-404" in missing.value.en
    assert waits_on(db_session, po1) == [("message", "catch_payment")]


def test_another_message_name_finds_nothing_waiting(db_session, deployed):
    po1 = start(db_session, "PO-1")
    with pytest.raises(NotFound) as missing:
        deliver(db_session, "PO-1", {"amount": 1}, name="payment_refunded")
    assert "payment_refunded" in missing.value.zh and "payment_refunded" in missing.value.en
    assert waits_on(db_session, po1) == [("message", "catch_payment")]


def test_a_key_two_instances_wait_under_is_ambiguous(db_session, deployed):
    first, second = start(db_session, "PO-3"), start(db_session, "PO-3")
    versions = (first.version, second.version)

    with pytest.raises(Conflict) as ambiguous:
        deliver(db_session, "PO-3", {"amount": 50})

    error = ambiguous.value
    assert error.status == 409
    assert "PO-3" in error.zh and "无法确定" in error.zh
    assert "PO-3" in error.en and "ambiguous" in error.en
    assert "2" in error.zh and "2" in error.en
    for instance in (first, second):
        assert waits_on(db_session, instance) == [("message", "catch_payment")]
        assert subscriptions(db_session, instance) == [MESSAGE]
        assert events(db_session, instance, "message_received") == []
        assert "amount" not in engine.instance_data(db_session=db_session, instance=instance)
    assert (first.version, second.version) == versions


def test_a_finished_instance_no_longer_receives(db_session, deployed):
    from app.auth.service import find_user
    from app.inbox.service import complete

    po1 = start(db_session, "PO-1")
    deliver(db_session, "PO-1", {"amount": 120})
    [task] = engine.open_tasks(db_session=db_session, instance_id=po1.id)
    complete(
        db_session=db_session,
        user=find_user(db_session=db_session, username="desk"),
        task_id=task.id,
        data={},
    )
    db_session.commit()
    db_session.refresh(po1)
    assert po1.status == "completed"

    with pytest.raises(NotFound):
        deliver(db_session, "PO-1", {"amount": 120})


def test_a_payload_with_invalid_field_names_is_refused_and_nothing_moves(db_session, deployed):
    po1 = start(db_session, "PO-1")
    with pytest.raises(InvalidInput) as refused:
        deliver(db_session, "PO-1", {"bad name": 1})
    assert "bad name" in refused.value.zh and "bad name" in refused.value.en
    db_session.rollback()
    assert waits_on(db_session, po1) == [("message", "catch_payment")]
    assert events(db_session, po1, "message_received") == []


def test_a_delivery_without_payload_moves_the_instance(db_session, deployed):
    po1 = start(db_session, "PO-1")
    deliver(db_session, "PO-1")
    assert waits_on(db_session, po1) == [("userTask", "task_confirm")]
    count = db_session.scalar(
        select(func.count())
        .select_from(ProcessEvent)
        .where(ProcessEvent.instance_id == po1.id, ProcessEvent.event_type == "message_received")
    )
    assert count == 1
