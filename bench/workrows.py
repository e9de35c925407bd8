"""Work orders as the engine leaves them, as rows for the benchmarks' bulk loads: an instance
(its state a stub, which the measured code never restores), its ticket, its open or finished
task offered to a group."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.engine.models import HumanTask, HumanTaskCandidate, ProcessInstance
from app.tickets.models import Ticket


class WorkRows:
    """Rows collected, then inserted in bulk, each table once."""

    def __init__(self) -> None:
        self.instances: list[dict] = []
        self.tickets: list[dict] = []
        self.tasks: list[dict] = []
        self.candidates: list[dict] = []

    def add(
        self,
        *,
        i: int,
        definition_id: int,
        key: str,
        number: str,
        created: datetime,
        ticket: dict,
        task: dict,
        group: str,
    ) -> None:
        """Work order ``i`` (instance and ticket ids alike) of process ``key``; ``ticket`` and
        ``task`` hold the columns that differ between benchmarks (the task's id among them)."""
        self.instances.append(
            {
                "id": i,
                "definition_id": definition_id,
                "process_key": key,
                "business_key": number,
                "ticket_id": i,
                "status": "running",
                "state": "{}",
                "state_format": "bench",
                "version": 1,
                "started_at": created,
                "updated_at": created,
            }
        )
        self.tickets.append(
            {
                "id": i,
                "number": number,
                "process_key": key,
                "description": "",
                "status": "in_progress",
                "custom_fields": {},
                "process_instance_id": i,
                "created_at": created,
                "updated_at": created,
                **ticket,
            }
        )
        self.tasks.append({"instance_id": i, "ticket_id": i, "created_at": created, **task})
        self.candidates.append({"task_id": task["id"], "kind": "group", "value": group})

    def insert(self, session) -> None:
        for model, rows in (
            (ProcessInstance, self.instances),
            (Ticket, self.tickets),
            (HumanTask, self.tasks),
            (HumanTaskCandidate, self.candidates),
        ):
            session.execute(sa.insert(model), rows)
