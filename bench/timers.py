"""Benchmark: timers that fire on time, exactly once, with two worker processes on PostgreSQL.

On a PostgreSQL database it creates and drops:
(a) 100,000 pending timers (instances of bench/timer_wait.bpmn, copied in bulk from the
    saved state of one real instance), 10,000 of them due within one minute and the rest
    hours away. Two `flask --app wsgi worker` processes run, started (and listening) before
    the first timer falls due, as they would be in production; prints how many of the
    10,000 fired exactly once and their lateness p50/p99/max.
(b) A burst of 10,000 timers due in the same second: seconds from the due time until the
    last fired, and the firing rate.
(c) The same burst, with one worker killed (SIGKILL) a moment after the due time and then
    restarted: exactly once, none lost.

Lateness is counted for every timer, two ways: "claimed" is the time its firing batch was
claimed (the time recorded on its timer_fired event) minus the due time; "committed" is the
time this script first saw the event committed (it looks every 0.1 s, so this is at most
0.1 s late itself) minus the due time.

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
import threading
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


class Watcher(threading.Thread):
    """Notes when each timer_fired event is first seen committed, looking every 0.1 s."""

    # Events are numbered when inserted, not when committed: look again this far back, more
    # than all the workers' batches in flight hold.
    LAG = 1000

    def __init__(self, conninfo: str):
        super().__init__(daemon=True)
        self.conninfo = conninfo
        self.seen: dict[int, float] = {}
        self.stopping = threading.Event()

    def run(self) -> None:
        last = 0
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            while not self.stopping.is_set():
                rows = conn.execute(
                    "SELECT id, instance_id FROM process_event "
                    "WHERE id > %s AND event_type = 'timer_fired' ORDER BY id",
                    (max(0, last - self.LAG),),
                ).fetchall()
                now = time.time()
                for _, instance_id in rows:
                    self.seen.setdefault(instance_id, now)
                if rows:
                    last = max(last, rows[-1][0])
                self.stopping.wait(0.1)


def wait_all(timers: Timers, watcher: Watcher, ids: range, timeout: float) -> float | None:
    """Wall-clock time at which every instance of ``ids`` had fired, or None on timeout.

    Asks the watcher (no query of its own, so that the benchmark takes little of the CPU it
    measures), and the database once the watcher has seen them all.
    """
    deadline = time.monotonic() + timeout
    asked = time.monotonic()
    while time.monotonic() < deadline:
        if all(i in watcher.seen for i in ids) and timers.count_fired(ids) >= len(ids):
            return max(watcher.seen[i] for i in ids)
        if time.monotonic() - asked > 5:  # in case the watcher missed one
            asked = time.monotonic()
            if timers.count_fired(ids) >= len(ids):
                return time.time()
        time.sleep(0.1)
    return None


def wait_listening(timers: Timers, count: int, timeout: float) -> None:
    """Until ``count`` workers are LISTENing (they are up, with their app loaded)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(timers.conninfo, autocommit=True) as conn:
        while time.monotonic() < deadline:
            listening = conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query = 'LISTEN paidan_timers'"
            ).fetchone()[0]
            if listening >= count:
                return
            time.sleep(0.1)
    raise SystemExit(f"the workers did not start listening within {timeout:.0f} s")


def once_report(label: str, fired: dict, ids: range) -> None:
    counts = [fired.get(i, (0, None))[0] for i in ids]
    print(
        f"  {label}: {len(ids):,} due, fired exactly once {counts.count(1):,}, "
        f"never {counts.count(0):,}, more than once {sum(1 for c in counts if c > 1):,}"
    )


def lateness(fired: dict, dues: dict[int, datetime], seen: dict[int, float]) -> str:
    claimed = [
        max(0.0, (fired[i][1] - due).total_seconds()) for i, due in dues.items() if i in fired
    ]
    committed = [seen[i] - due.timestamp() for i, due in dues.items() if i in seen]
    missed = f" (of {len(committed):,} seen)" if len(committed) < len(dues) else ""
    return f"claimed {_quantiles(claimed)}; committed {_quantiles(committed)}{missed}"


def _quantiles(values: list[float]) -> str:
    if len(values) < 2:
        return "n/a"
    values = sorted(values)
    p = quantiles(values, n=100)
    return f"p50 {p[49] * 1000:.0f} ms, p99 {p[98] * 1000:.0f} ms, max {values[-1] * 1000:.0f} ms"


class CpuMeter:
    """CPU time of the worker processes and of their PostgreSQL backends from now on (Linux,
    PostgreSQL on this machine): what a firing costs, whatever else shares the cores."""

    def __init__(self, timers: Timers, workers: list[subprocess.Popen]):
        with psycopg.connect(timers.conninfo, autocommit=True) as conn:
            backends = conn.execute(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
        self.pids = {
            "workers": [w.pid for w in workers],
            "PostgreSQL": [pid for (pid,) in backends],
        }
        self.start = self._read()

    def _read(self) -> dict[str, float]:
        return {kind: sum(map(_cpu_seconds, pids)) for kind, pids in self.pids.items()}

    def used(self) -> dict[str, float]:
        end = self._read()
        return {kind: end[kind] - self.start[kind] for kind in end}


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_report(used: dict[str, float], count: int) -> str:
    per = {kind: seconds / count * 1000 for kind, seconds in used.items()}
    total = sum(per.values())
    parts = ", ".join(f"{kind} {ms:.2f} ms" for kind, ms in per.items())
    return (
        f"CPU per firing: {parts}; {2000 / total:,.0f} firings/s would fit in two cores "
        f"of our own ({os.cpu_count()} here, shared)"
    )


def burst(timers: Timers, size: int, lead: float) -> tuple[range, datetime]:
    due = (utcnow() + timedelta(seconds=lead)).replace(microsecond=0) + timedelta(seconds=1)
    ids = timers.add([due] * size)
    ahead = due.timestamp() - time.time()
    print(f"  {size:,} timers committed {ahead:.1f} s before their due time")
    return ids, due


def rate(fired: dict, ids: range, due: datetime, done: float | None) -> str:
    if done is None:
        return "not all fired"
    first = min(fired[i][1] for i in ids).timestamp()
    return (
        f"all fired {done - due.timestamp():.1f} s after the due time; "
        f"{len(ids) / (done - first):,.0f} firings/s"
    )


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
        print(
            f"made {args.pending - args.due:,} timers due in hours in {time.perf_counter() - started:.1f} s"
        )
        watcher = Watcher(timers.conninfo)
        watcher.start()
        with open(log_path, "w") as log:
            workers = [start_worker(url, log), start_worker(url, log)]
            wait_listening(timers, 2, 120)
            soon = utcnow() + timedelta(seconds=15)
            due_times = [soon + timedelta(seconds=60 * i / args.due) for i in range(args.due)]
            due_ids = timers.add(due_times)
            print(
                f"two workers listening; {args.due:,} more timers fall due between +15 s and "
                f"+75 s ({args.pending:,} pending, load average {os.getloadavg()[0]:.1f})"
            )

            print("(a) timers due within one minute, two workers:")
            cpu = CpuMeter(timers, workers)
            if wait_all(timers, watcher, due_ids, 180) is None:
                print("  not all fired within 180 s")
            used = cpu.used()
            fired = timers.fired(due_ids)
            once_report("within a minute", fired, due_ids)
            dues = dict(zip(due_ids, due_times, strict=True))
            print(f"  lateness {lateness(fired, dues, watcher.seen)}")
            print(f"  {cpu_report(used, len(due_ids))}")

            print(f"(b) a burst of {args.burst:,} due in the same second:")
            ids, due = burst(timers, args.burst, lead=3)
            cpu = CpuMeter(timers, workers)
            done = wait_all(timers, watcher, ids, 300)
            used = cpu.used()
            fired = timers.fired(ids)
            once_report("burst", fired, ids)
            print(f"  {rate(fired, ids, due, done)}")
            print(f"  lateness {lateness(fired, dict.fromkeys(ids, due), watcher.seen)}")
            print(f"  {cpu_report(used, len(ids))}")

            print(f"(c) a burst of {args.burst:,}, one worker killed with SIGKILL and restarted:")
            ids, due = burst(timers, args.burst, lead=3)
            time.sleep(max(0.0, due.timestamp() - time.time()) + 1.0)
            before = timers.count_fired(ids)
            workers[0].send_signal(signal.SIGKILL)
            workers[0].wait()
            workers[0] = start_worker(url, log)
            print(f"  killed one worker after {before:,} had fired; restarted it")
            done = wait_all(timers, watcher, ids, 300)
            fired = timers.fired(ids)
            once_report("burst with a kill", fired, ids)
            print(f"  {rate(fired, ids, due, done)}")
            untouched = len(timers.fired(range(1, due_ids.start)))
            print(f"  timers hours away that fired: {untouched:,} (expected 0)")
            print(f"  load average at the end {os.getloadavg()[0]:.1f} (2 cores)")
        watcher.stopping.set()
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
