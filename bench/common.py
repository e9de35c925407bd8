"""What the benchmarks share: an app on a migrated database, a scratch PostgreSQL database,
and work orders as the engine leaves them, as rows for bulk loads (an instance whose state is
a stub, which the measured code never restores, its ticket, its task offered to a group)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import sqlalchemy as sa
from flask import Flask
from flask_migrate import upgrade

from app import create_app
from app.engine.models import HumanTask, HumanTaskCandidate, ProcessInstance
from app.tickets.models import Ticket


def bench_app(url: str) -> Flask:
    """The app on ``url``, migrated; passwords hashed at the cheapest Argon2 cost."""
    app = create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": "bench",
            "ARGON2_TIME_COST": 1,
            "ARGON2_MEMORY_COST": 64,
        }
    )
    with app.app_context():
        upgrade()
    return app


@contextmanager
def scratch_database(server: str, name: str) -> Iterator[str]:
    """A new database ``name`` on the PostgreSQL server at ``server`` (one left by a stopped
    run is dropped first); yields its URL and drops it afterwards."""
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.engine.make_url(server).set(database=name).render_as_string(False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


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
