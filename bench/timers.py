"""Benchmark: timers that fire on time, exactly once, with two worker processes on PostgreSQL.

On a PostgreSQL database it creates and drops:
(a) 100,000 pending timers (instances of bench/timer_wait.bpmn, copied in bulk from the
    saved state of one real instance), 10,000 of them due within the next minute and the
    rest hours away. Two `flask --app wsgi worker` processes run; prints how many of the
    10,000 fired exactly once and their lateness p50/p99/max (the time a firing batch was
    claimed minus the due time).
(b) A burst of 10,000 timers due in the same second: seconds from the due time until the
    last fired.
(c) The same burst, with one worker killed (SIGKILL) a moment after the due time and then
    restarted: exactly once, none lost.

    python bench/timers.py [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]
        [--pending 100000] [--due 10000] [--burst 10000]
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import quantiles

import psycopg
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade

from app import create_app, engine
from app.extensions import db
from app.timeutil import utcnow

ROOT = Path(__file__).resolve().parent.parent
PROCESS = ROOT / "bench" / "timer_wait.bpmn"


class Timers:
    """Bulk-made instances waiting on one timer each, all copies of one real instance."""

    def __init__(self, url: str):
        self.conninfo = (
            sa.engine.make_url(url)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )
        app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench"})
        with app.app_context():
            upgrade(revision="heads")
            engine.deploy(db_session=db.session, files=[(PROCESS.name, PROCESS.read_bytes())])
            db.session.commit()
            model = engine.start(
                db_session=db.session, process_key="timer_wait", data={"delay": "PT9H"}
            )
            db.session.flush()
            self.definition_id = model.definition_id
            self.state = model.state
            self.state_format = model.state_format
            timer = db.session.execute(
                sa.text("SELECT task_id, element_id, due_at FROM timer WHERE instance_id = :i"),
                {"i": model.id},
            ).one()
            self.task_id, self.element_id = timer.task_id, timer.element_id
            self.event_value = timer.due_at.astimezone(UTC).isoformat()
            assert self.event_value in self.state
            db.session.rollback()
            db.engine.dispose()

    def add(self, dues: list[datetime]) -> range:
        """Instances whose timers fall due at ``dues``; returns their ids. Announces them."""
        with psycopg.connect(self.conninfo) as conn:
            first = (
                conn.execute(
                    "SELECT setval('process_instance_id_seq', "
                    "nextval('process_instance_id_seq') + %s - 1)",
                    (len(dues),),
                ).fetchone()[0]
                - len(dues)
                + 1
            )
            ids = range(first, first + len(dues))
            task_ids = [str(uuid.uuid4()) for _ in dues]
            now = utcnow()
            with conn.cursor().copy(
                "COPY process_instance (id, definition_id, process_key, status, state, "
                "state_format, version, started_at, updated_at) FROM STDIN"
            ) as copy:
                for instance_id, due, task_id in zip(ids, dues, task_ids, strict=True):
                    # Task ids are unique in real life and the timer projection relies on it.
                    state = self.state.replace(self.event_value, due.astimezone(UTC).isoformat())
                    state = state.replace(self.task_id, task_id)
                    copy.write_row(
                        (
                            instance_id,
                            self.definition_id,
                            "timer_wait",
                            "running",
                            state,
                            self.state_format,
                            1,
                            now,
                            now,
                        )
                    )
            with conn.cursor().copy(
                "COPY timer (instance_id, task_id, element_id, due_at, attempts) FROM STDIN"
            ) as copy:
                for instance_id, due, task_id in zip(ids, dues, task_ids, strict=True):
                    copy.write_row((instance_id, task_id, self.element_id, due, 0))
            conn.execute("SELECT pg_notify('paidan_timers', '')")
        return ids

    def fired(self, ids: range) -> dict[int, tuple[int, datetime]]:
        """instance id -> (timer_fired events, when the first was recorded)."""
        with psycopg.connect(self.conninfo) as conn:
            rows = conn.execute(
                "SELECT instance_id, count(*), min(at) FROM process_event "
                "WHERE event_type = 'timer_fired' AND instance_id BETWEEN %s AND %s "
                "GROUP BY instance_id",
                (ids.start, ids.stop - 1),
            ).fetchall()
        return {row[0]: (row[1], row[2]) for row in rows}

    def count_fired(self, ids: range) -> int:
        with psycopg.connect(self.conninfo) as conn:
            return conn.execute(
                "SELECT count(*) FROM process_event WHERE event_type = 'timer_fired' "
                "AND instance_id BETWEEN %s AND %s",
                (ids.start, ids.stop - 1),
            ).fetchone()[0]


def start_worker(url: str, log: io.TextIOBase) -> subprocess.Popen:
    env = {**os.environ, "PAIDAN_DATABASE_URL": url}
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "worker"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def wait_all(timers: Timers, ids: range, timeout: float) -> float | None:
    """Wall-clock time at which every instance of ``ids`` had fired, or None on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if timers.count_fired(ids) >= len(ids):
            return time.time()
        time.sleep(0.1)
    return None


def once_report(label: str, fired: dict, ids: range) -> None:
    counts = [fired.get(i, (0, None))[0] for i in ids]
    print(
        f"  {label}: {len(ids):,} due, fired exactly once {counts.count(1):,}, "
        f"never {counts.count(0):,}, more than once {sum(1 for c in counts if c > 1):,}"
    )


def lateness(fired: dict, dues: dict[int, datetime]) -> str:
    late = sorted(
        max(0.0, (fired[i][1] - due).total_seconds()) for i, due in dues.items() if i in fired
    )
    if len(late) < 2:
        return "n/a"
    p = quantiles(late, n=100)
    return f"p50 {p[49] * 1000:.0f} ms, p99 {p[98] * 1000:.0f} ms, max {late[-1] * 1000:.0f} ms"


def burst(timers: Timers, size: int, lead: float) -> tuple[range, datetime]:
    due = (utcnow() + timedelta(seconds=lead)).replace(microsecond=0) + timedelta(seconds=1)
    return timers.add([due] * size), due


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # still stop the workers, drop the db
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument("--burst", type=int, default=10_000)
    args = parser.parse_args()

    name = f"paidan_bench_timers_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(args.postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
    workers: list[subprocess.Popen] = []
    log_path = Path(f"/tmp/{name}.log")
    try:
        timers = Timers(url)
        started = time.perf_counter()
        later = utcnow() + timedelta(hours=2)
        timers.add([later + timedelta(seconds=i) for i in range(args.pending - args.due)])
        soon = utcnow() + timedelta(seconds=15)
        due_times = [soon + timedelta(seconds=60 * i / args.due) for i in range(args.due)]
        due_ids = timers.add(due_times)
        print(
            f"made {args.pending:,} pending timers in {time.perf_counter() - started:.1f} s; "
            f"{args.due:,} fall due between +15 s and +75 s"
        )
        with open(log_path, "w") as log:
            workers = [start_worker(url, log), start_worker(url, log)]

            print("(a) timers due within one minute, two workers:")
            if wait_all(timers, due_ids, 180) is None:
                print("  not all fired within 180 s")
            fired = timers.fired(due_ids)
            once_report("within a minute", fired, due_ids)
            print(f"  lateness {lateness(fired, dict(zip(due_ids, due_times, strict=True)))}")

            print(f"(b) a burst of {args.burst:,} due in the same second:")
            ids, due = burst(timers, args.burst, lead=3)
            done = wait_all(timers, ids, 300)
            fired = timers.fired(ids)
            once_report("burst", fired, ids)
            if done is not None:
                print(f"  all fired {done - due.timestamp():.1f} s after the due time")
            print(f"  lateness {lateness(fired, dict.fromkeys(ids, due))}")

            print(f"(c) a burst of {args.burst:,}, one worker killed with SIGKILL and restarted:")
            ids, due = burst(timers, args.burst, lead=3)
            time.sleep(max(0.0, due.timestamp() - time.time()) + 1.0)
            before = timers.count_fired(ids)
            workers[0].send_signal(signal.SIGKILL)
            workers[0].wait()
            workers[0] = start_worker(url, log)
            print(f"  killed one worker after {before:,} had fired; restarted it")
            done = wait_all(timers, ids, 300)
            fired = timers.fired(ids)
            once_report("burst with a kill", fired, ids)
            if done is not None:
                print(f"  all fired {done - due.timestamp():.1f} s after the due time")
            untouched = len(timers.fired(range(1, due_ids.start)))
            print(f"  timers hours away that fired: {untouched:,} (expected 0)")
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
        print(f"worker log: {log_path}")


if __name__ == "__main__":
    main()
