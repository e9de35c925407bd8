"""The compiled definition of an instance is cached by instance id (engine.queries.compiled_of):
an id given again after a rollback (SQLite does that) must never answer with the old version."""

from __future__ import annotations

from pathlib import Path

from app import engine
from app.engine.queries import compiled_of

DATA = Path(__file__).resolve().parent / "data"


def test_an_id_given_again_after_a_rollback_gets_its_own_definition(db_session):
    engine.deploy(
        db_session=db_session,
        files=[
            (name, (DATA / name).read_bytes()) for name in ("lanes.bpmn", "wait_for_payment.bpmn")
        ],
        actor="admin",
    )
    db_session.flush()
    savepoint = db_session.begin_nested()
    first = engine.start(db_session=db_session, process_key="lend_device", actor="alice")
    assert compiled_of(db_session, first.id).spec.name == "lend_device"
    gone = first.id
    savepoint.rollback()

    second = engine.start(
        db_session=db_session, process_key="wait_for_payment", data={"order_no": "A-1"}
    )
    assert compiled_of(db_session, second.id).spec.name == "wait_for_payment"
    # Asked twice in one transaction: the same answer, from the cache.
    assert compiled_of(db_session, second.id).spec.name == "wait_for_payment"
    if db_session.get_bind().dialect.name == "sqlite":
        assert second.id == gone, "SQLite hands the rolled-back id out again"
