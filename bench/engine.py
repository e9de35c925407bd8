"""Benchmark: shipped-process instances per second, start to archive.

Three figures on this machine: SpiffWorkflow alone in memory (the same specs and safe script
engine, no storage), and the full service layer (ticket, engine step per transaction, state,
projections, events, commit) on SQLite and on PostgreSQL. Prints the persisted/in-memory ratio.

    python bench/engine.py [--instances 300] [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import bench_app, scratch_database
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from app import engine
from app.auth.org_service import create_group
from app.auth.service import create_user
from app.demo import deploy_shipped
from app.engine.runtime import specs_of
from app.engine.scripting import SCRIPT_ENGINE
from app.extensions import db
from app.tickets.service import create_ticket

START = {
    "ticket_id": 0,
    "ticket_no": "IT-0",
    "title": "压测",
    "description": "",
    "requester": "req",
    "category": "",
    "priority": "P3",
    "region": "beijing",
    "device_no": "",
}
STEPS = [
    (
        "task_triage",
        {
            "category": "hardware",
            "priority": "P2",
            "region": "beijing",
            "resolution": "forward",
            "triage_note": "",
        },
    ),
    ("task_handle", {"solution": "已处理", "time_spent_minutes": 5}),
    ("task_review", {"review_result": "approve", "review_comment": ""}),
]


def build(url: str):
    app = bench_app(url)
    with app.app_context():
        create_group(db_session=db.session, code="service_desk", name="服务台")
        lead = create_user(
            db_session=db.session, username="lead", password="bench-pass", role="handler"
        )
        create_group(db_session=db.session, code="hardware", name="硬件组").lead_id = lead.id
        create_user(db_session=db.session, username="req", password="bench-pass", role="requester")
        deploy_shipped(app)
        db.session.commit()
    return app


def in_memory(app, count: int) -> float:
    with app.app_context():
        spec, subprocess_specs = specs_of(
            engine.latest_definition(db_session=db.session, key="it_service")
        )
        began = time.perf_counter()
        for _ in range(count):
            workflow = BpmnWorkflow(spec, subprocess_specs, script_engine=SCRIPT_ENGINE)
            workflow.get_tasks(state=TaskState.READY)[0].set_data(**START)
            workflow.do_engine_steps()
            for element_id, data in STEPS:
                (task,) = workflow.get_tasks(state=TaskState.READY, manual=True)
                assert task.task_spec.bpmn_id == element_id
                task.set_data(**data)
                task.run()
                workflow.do_engine_steps()
            assert workflow.is_completed()
        return count / (time.perf_counter() - began)


def persisted(app, count: int) -> float:
    with app.app_context():
        session = db.session
        from app.auth.service import find_user

        requester = find_user(db_session=session, username="req")
        began = time.perf_counter()
        for i in range(count):
            ticket = create_ticket(
                db_session=session, requester=requester, title=f"压测 {i}", process_key="it_service"
            )
            instance_id = ticket.process_instance_id
            session.commit()
            for element_id, data in STEPS:
                (task,) = engine.open_tasks(db_session=session, instance_id=instance_id)
                assert task.element_id == element_id
                engine.complete_task(db_session=session, task_id=task.id, data=data, actor="bench")
                session.commit()
            assert (
                engine.get_instance(db_session=session, instance_id=instance_id).status
                == "completed"
            )
        rate = count / (time.perf_counter() - began)
        session.remove()
        return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=300)
    parser.add_argument(
        "--postgres",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
        help="a server URL; a scratch database is created and dropped ('' to skip)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        sqlite_app = build(f"sqlite:///{folder}/bench.sqlite3")
        in_memory(sqlite_app, 20)  # warm caches and imports
        # This machine's speed wanders; the median of three rounds steadies the figures.
        memory_rate = median(in_memory(sqlite_app, args.instances) for _ in range(3))
        print(f"in memory (SpiffWorkflow only):   {memory_rate:8.1f} instances/s")
        sqlite_rate = median(persisted(sqlite_app, args.instances) for _ in range(3))
        print(
            f"persisted, SQLite (service layer): {sqlite_rate:8.1f} instances/s  "
            f"= {sqlite_rate / memory_rate:6.1%} of in memory"
        )

    if args.postgres:
        with scratch_database(args.postgres, "paidan_bench_engine") as url:
            pg_app = build(url)
            pg_rate = median(persisted(pg_app, args.instances) for _ in range(3))
            print(
                f"persisted, PostgreSQL:             {pg_rate:8.1f} instances/s  "
                f"= {pg_rate / memory_rate:6.1%} of in memory"
            )
    print(
        f"(median of 3 rounds of {args.instances} instances of it_service, "
        "3 user tasks + DMN + gateways each; "
        "one transaction per step)"
    )


if __name__ == "__main__":
    main()
