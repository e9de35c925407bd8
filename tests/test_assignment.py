"""Who a user task is for: lanes name the group when the task names none; candidate users."""

from pathlib import Path

from app import engine
from app.auth.service import find_user
from app.inbox.service import visible_tasks_query

DATA = Path(__file__).resolve().parent / "data"


def inbox(db_session, username: str) -> list[str]:
    user = find_user(db_session=db_session, username=username)
    return [task.element_id for task in db_session.scalars(visible_tasks_query(db_session, user))]


def test_lanes_and_candidate_users_decide_whose_inbox_a_task_lands_in(db_session):
    engine.deploy(db_session=db_session, files=[("lanes.bpmn", (DATA / "lanes.bpmn").read_bytes())])
    instance = engine.start(db_session=db_session, process_key="lend_device", actor="alice")
    db_session.commit()

    (prepare,) = engine.open_tasks(db_session=db_session, instance_id=instance.id)
    assert prepare.candidate_groups == ["service_desk"]  # lane named by group code
    assert inbox(db_session, "desk") == ["task_prepare"] and inbox(db_session, "hw1") == []
    engine.complete_task(db_session=db_session, task_id=prepare.id, actor="desk")

    (hand_over,) = engine.open_tasks(db_session=db_session, instance_id=instance.id)
    assert hand_over.candidate_groups == ["硬件组"]  # lane named by the group's Chinese name
    assert inbox(db_session, "hw1") == ["task_hand_over"] and inbox(db_session, "desk") == []
    engine.complete_task(db_session=db_session, task_id=hand_over.id, actor="hw1")

    (sign,) = engine.open_tasks(db_session=db_session, instance_id=instance.id)
    assert (sign.candidate_users, sign.candidate_groups) == (["alice", "bob"], [])
    assert inbox(db_session, "alice") == ["task_sign"] == inbox(db_session, "bob")
    assert inbox(db_session, "hw1") == [] and "task_sign" in inbox(db_session, "admin")
