"""Driving work orders through their processes the way people do, checking state after each step."""

from __future__ import annotations

import json

from sqlalchemy import select

from app import engine
from app.auth.service import find_user
from app.engine.models import HumanTask, ProcessEvent, ProcessInstance
from app.engine.runtime import load_workflow
from app.engine.serializer import dump_state, load_data
from app.inbox.service import complete
from app.tickets.models import Ticket
from app.tickets.service import create_ticket

STATE_LIMIT = 20 * 1024


class Flow:
    """One work order; every step is followed by the round-trip and size checks."""

    def __init__(self, db_session, requester: str, process_key: str, **fields):
        self.db = db_session
        user = find_user(db_session=db_session, username=requester)
        self.ticket: Ticket = create_ticket(
            db_session=db_session,
            requester=user,
            process_key=process_key,
            title=fields.pop("title", "测试工单"),
            **fields,
        )
        db_session.commit()
        self.max_state = 0
        self.check_state()

    @property
    def instance(self) -> ProcessInstance:
        return self.db.get(ProcessInstance, self.ticket.process_instance_id)

    def open_tasks(self) -> dict[str, HumanTask]:
        tasks = engine.open_tasks(db_session=self.db, instance_id=self.ticket.process_instance_id)
        return {task.element_id: task for task in tasks}

    def task(self, element_id: str) -> HumanTask:
        tasks = self.open_tasks()
        assert element_id in tasks, f"{element_id} is not open; open: {sorted(tasks)}"
        return tasks[element_id]

    def do(self, element_id: str, username: str, **data) -> None:
        task = self.task(element_id)
        user = find_user(db_session=self.db, username=username)
        complete(db_session=self.db, user=user, task_id=task.id, data=data)
        self.db.commit()
        self.check_state()

    def fire_timers(self, now) -> None:
        engine.fire_due_timers(db_session=self.db, now=now)
        self.check_state()

    def check_state(self) -> None:
        """Save -> load gives the same workflow, the data read straight from the saved state
        (serializer.load_data, without restoring) is its latest task's, and the stored state
        stays small."""
        instance = self.instance
        self.db.refresh(instance)
        size = len(instance.state.encode())
        self.max_state = max(self.max_state, size)
        assert size < STATE_LIMIT, f"state of {instance.process_key} is {size} bytes"
        workflow = load_workflow(instance)
        assert json.loads(dump_state(workflow)) == json.loads(instance.state)
        stored = json.loads(instance.state)["tasks"]
        assert {str(t.id): t.state for t in workflow.tasks.values()} == {
            k: v["state"] for k, v in stored.items()
        }
        seen = workflow.last_task.data if workflow.last_task is not None else workflow.data
        assert load_data(instance.state) == seen

    def events(self, event_type: str | None = None) -> list[ProcessEvent]:
        query = select(ProcessEvent).where(ProcessEvent.instance_id == self.instance.id)
        if event_type:
            query = query.where(ProcessEvent.event_type == event_type)
        return list(self.db.scalars(query.order_by(ProcessEvent.id)))

    def data(self) -> dict:
        return engine.instance_data(db_session=self.db, instance=self.instance)

    def completed_elements(self) -> list[str]:
        return [
            e.element_id
            for e in self.events()
            if e.event_type in {"task_completed", "element_completed"}
        ]
