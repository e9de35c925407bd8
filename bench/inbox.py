"""Benchmark: the inbox page (GET /inbox) with 10,000 open tasks, server side.

Bulk-inserts work orders, their instances, open tasks and candidates (several groups, 30 %
held by someone, 20 % overdue, mixed priorities) on a fresh SQLite file and, with --postgres,
on a PostgreSQL database it creates and drops. Then a handler whose group holds ~3,000 tasks,
a dispatcher and an admin each load every tab of theirs 20 times through Flask's test client
with a signed-in session. Prints median and p95 in ms; the goal is under 300 ms.

    python bench/inbox.py [--tasks 10000] [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median, quantiles

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import WorkRows, bench_app, scratch_database

from app import engine
from app.auth.org_service import create_department, create_group
from app.auth.service import create_user
from app.demo import deploy_shipped
from app.extensions import db
from app.tickets.models import PRIORITIES

PASSWORD = "bench-pass-1"
REQUESTS = 20
# group code -> share of the tasks; the handler's group (network) holds ~30 %.
GROUPS = {"network": 0.30, "hardware": 0.20, "facilities": 0.15, "service_desk": 0.15}
GROUPS["spare_parts"] = 1 - sum(GROUPS.values())
MEMBERS = 12  # handlers per group: a held task is held by one of them
PROCESSES = {"it_service": ("task_handle", "技术组处理", "it_handle", "IT")}
PROCESSES["equipment_repair"] = ("task_onsite", "现场处理", "repair_onsite", "RP")
# (username, role, tabs it has)
VIEWERS = [
    ("net_h0", "handler", ("mine", "group")),
    ("disp", "dispatcher", ("mine", "group", "all")),
    ("root", "admin", ("mine", "group", "all")),
]


def build(url: str):
    app = bench_app(url)
    with app.app_context():
        create_department(db_session=db.session, code="east", name="华东")
        create_department(db_session=db.session, code="west", name="西部")
        for code in GROUPS:
            create_group(db_session=db.session, code=code, name=f"{code} 组")
            for n in range(MEMBERS):
                create_user(
                    db_session=db.session,
                    username=f"{code[:3]}_h{n}",
                    password=PASSWORD,
                    role="handler",
                    group_codes=[code],
                    department_code="east",
                )
        create_user(
            db_session=db.session,
            username="disp",
            password=PASSWORD,
            role="dispatcher",
            group_codes=["service_desk"],
            department_code="east",
        )
        create_user(db_session=db.session, username="root", password=PASSWORD, role="admin")
        for n, department in enumerate(("east", "west")):
            create_user(
                db_session=db.session,
                username=f"req{n}",
                password=PASSWORD,
                role="requester",
                department_code=department,
            )
        deploy_shipped(app)
        db.session.commit()
    return app


def populate(app, count: int) -> None:
    """Rows as the engine would leave them, inserted in bulk (the instances' state is a stub:
    the inbox never reads it)."""
    rng = random.Random(7)
    now = datetime.now(UTC)
    with app.app_context():
        departments = dict(db.session.execute(sa.text("SELECT code, id FROM department")).all())
        requesters = dict(
            db.session.execute(sa.text("SELECT username, id FROM user_account")).all()
        )
        definitions = {
            key: engine.latest_definition(db_session=db.session, key=key).id for key in PROCESSES
        }
        work = WorkRows()
        groups, weights = list(GROUPS), list(GROUPS.values())
        for i in range(1, count + 1):
            key = "it_service" if i % 3 else "equipment_repair"
            element_id, name, form_key, prefix = PROCESSES[key]
            created = now - timedelta(minutes=rng.randint(10, 14 * 24 * 60))
            east = rng.random() < 0.5
            # Drawn in the order of the loads before WorkRows: the same data for a seed.
            priority = rng.choices(PRIORITIES, weights=(1, 3, 5, 2))[0]
            group = rng.choices(groups, weights=weights)[0]
            roll = rng.random()
            if roll < 0.2:
                due = now - timedelta(minutes=rng.randint(1, 48 * 60))  # overdue
            elif roll < 0.85:
                due = now + timedelta(minutes=rng.randint(1, 72 * 60))
            else:
                due = None
            task_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            work.add(
                i=i,
                definition_id=definitions[key],
                key=key,
                number=f"{prefix}-{created:%Y%m%d}-{i:05d}",
                created=created,
                ticket={
                    "title": f"压测工单 {i} 网络设备故障",
                    "priority": priority,
                    "category": "",
                    "region": "beijing",
                    "department_id": departments["east" if east else "west"],
                    "requester_id": requesters["req0" if east else "req1"],
                },
                task={
                    "id": task_id,
                    "element_id": element_id,
                    "name": name,
                    "form_key": form_key,
                    "assignee": (
                        f"{group[:3]}_h{rng.randrange(MEMBERS)}" if rng.random() < 0.3 else None
                    ),
                    "due_at": due,
                    "status": "open",
                },
                group=group,
            )
        work.insert(db.session)
        db.session.commit()
        if db.engine.dialect.name == "postgresql":
            db.session.execute(sa.text("ANALYZE"))
            db.session.commit()
        db.session.remove()


def signed_in(app, username: str):
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    answer = client.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf_token": token}
    )
    assert answer.status_code == 302, f"{username} could not sign in"
    return client


def timings(app, username: str, tab: str) -> tuple[float, float, int]:
    """Median and p95 in ms of REQUESTS loads of the tab, and the tab's count."""
    client = signed_in(app, username)
    url = f"/inbox?tab={tab}"
    headers = {"Accept": "text/html"}
    for _ in range(2):  # warm templates and caches
        client.get(url, headers=headers)
    samples = []
    for _ in range(REQUESTS):
        began = time.perf_counter()
        answer = client.get(url, headers=headers)
        samples.append((time.perf_counter() - began) * 1000)
        assert answer.status_code == 200, answer.status_code
    page = answer.get_data(as_text=True)
    count = int(re.search(rf'id="tab-count-{tab}"[^>]*>(\d+)<', page).group(1))
    return median(samples), quantiles(samples, n=20)[-1], count


def run(app, label: str, count: int) -> None:
    began = time.perf_counter()
    populate(app, count)
    print(f"{label}: {count} open tasks inserted in {time.perf_counter() - began:.1f} s")
    for username, role, tabs in VIEWERS:
        for tab in tabs:
            middle, p95, listed = timings(app, username, tab)
            print(
                f"  {role:<10} {tab:<5} ({listed:5d} tasks)  "
                f"median {middle:6.1f} ms   p95 {p95:6.1f} ms"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument(
        "--postgres",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
        help="a server URL; a scratch database is created and dropped ('' to skip)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        run(build(f"sqlite:///{folder}/bench.sqlite3"), "SQLite", args.tasks)

    if args.postgres:
        with scratch_database(args.postgres, "paidan_bench_inbox") as url:
            pg_app = build(url)
            run(pg_app, "PostgreSQL", args.tasks)
            with pg_app.app_context():
                db.engine.dispose()
    print(f"(server side, Flask test client, {REQUESTS} requests per line; goal: under 300 ms)")


if __name__ == "__main__":
    main()
