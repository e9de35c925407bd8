"""The timer worker loop: sleep until the next due timer or a wake-up, then fire in batches."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime

import psycopg
from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from app.engine.runtime import TIMER_CHANNEL, TIMER_NOTIFY_HORIZON
from app.engine.timers import CLAIM_GROWTH, FireReport, fire_due_timers, next_due
from app.extensions import db
from app.timeutil import utcnow

log = logging.getLogger(__name__)

# A stop request is noticed within this many seconds, however long the worker sleeps.
_STOP_CHECK_SECONDS = 1.0
# A worker wakes this long after the next due timer, so that the timers falling due meanwhile
# fire in the same pass: a pass costs a claim, a commit and a look at the next due timer,
# whatever it fires, and at 10,000 timers a minute waking for each one cost three times the
# firings themselves.
_GATHER_SECONDS = 0.1


class TimerWorker:
    """Fires due timers as they fall due; run as many as wanted, in processes or threads.

    Between passes it sleeps until the earliest due timer, at most TIMER_NOTIFY_HORIZON. On
    PostgreSQL a transaction that writes a timer due sooner than that sends
    ``NOTIFY paidan_timers`` and the worker wakes at once; on SQLite (one machine) it looks
    again every TIMER_POLL_SECONDS.
    """

    def __init__(self, app: Flask):
        self.app = app
        self.poll_seconds: float = app.config["TIMER_POLL_SECONDS"]
        self.claim_size: int = app.config["TIMER_CLAIM_SIZE"]
        # A pass commits, then starts again with a small claim: in a burst, let the claims
        # grow to their largest (timers.CLAIM_GROWTH) a few times over before that.
        self.pass_limit: int = max(
            app.config["TIMER_BATCH_SIZE"], 8 * CLAIM_GROWTH * self.claim_size
        )
        self.retry_seconds: int = app.config["TIMER_RETRY_SECONDS"]
        self.stopping = threading.Event()
        self.fired = 0
        self.wake_ups = 0  # notifications that ended a sleep early
        self._listener: psycopg.Connection | None = None

    # ------------------------------------------------------------ running

    def run(self) -> None:
        """Loop until ``stop()``; every error is logged and the loop goes on."""
        with self.app.app_context():
            try:
                while not self.stopping.is_set():
                    delay = self.poll_seconds
                    try:
                        self._listen()
                        report = self.fire_all()
                        delay = self.sleep_for(next_due(db.session), report)
                        db.session.commit()  # ends the read transaction before sleeping
                    except SQLAlchemyError:
                        db.session.rollback()
                        log.exception("timer worker: database error; trying again")
                    self._wait(delay)
            finally:
                db.session.remove()
                self._unlisten()

    def start(self) -> threading.Thread:
        """Run the loop in a daemon thread (the embedded default inside `serve`)."""
        thread = threading.Thread(target=self.run, name="timer-worker", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.stopping.set()

    def fire_all(self) -> FireReport:
        """Fire everything due now, pass after pass, until a pass finds less than its limit."""
        total = FireReport()
        while not self.stopping.is_set():
            report = fire_due_timers(
                db_session=db.session,
                limit=self.pass_limit,
                retry_seconds=self.retry_seconds,
                batch_size=self.claim_size,
                stop=self.stopping.is_set,
            )
            total += report
            if report.fired + report.failed < self.pass_limit:
                break
        self.fired += total.fired
        if total.fired or total.failed:
            log.info("timers: %s instances fired, %s failed", total.fired, total.failed)
        return total

    def sleep_for(self, due: datetime | None, report: FireReport) -> float:
        """Seconds until the next due timer (and _GATHER_SECONDS), within what this worker
        may sleep."""
        horizon = TIMER_NOTIFY_HORIZON.total_seconds()
        delay = horizon if due is None else max(0.0, (due - utcnow()).total_seconds())
        if delay == 0 and not (report.fired or report.failed):
            # Due but claimed by another worker (or a person's step): it commits, or dies
            # and its lock goes; look again shortly.
            delay = self.poll_seconds
        elif due is not None:
            # Also when it fell due during the pass that just caught up: a pass per timer
            # would cost more than the timers.
            delay += _GATHER_SECONDS
        if self._listener is None:
            delay = min(delay, self.poll_seconds)
        return max(0.0, min(delay, horizon))

    # ------------------------------------------------------------ waiting

    def _listen(self) -> None:
        if self._listener is not None or db.engine.dialect.name != "postgresql":
            return
        url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        try:
            self._listener = psycopg.connect(url, autocommit=True)
            self._listener.execute(f"LISTEN {TIMER_CHANNEL}")
        except psycopg.Error:
            log.exception("timer worker: cannot LISTEN; polling every %ss", self.poll_seconds)
            self._unlisten()

    def _unlisten(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _wait(self, delay: float) -> None:
        """Sleep ``delay`` seconds, or until a notification or a stop request."""
        deadline = time.monotonic() + delay
        while not self.stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            step = min(left, _STOP_CHECK_SECONDS)
            if self._listener is None:
                self.stopping.wait(step)
                continue
            try:
                if list(self._listener.notifies(timeout=step, stop_after=1)):
                    # One pass serves every notification that queued up meanwhile.
                    for _ in self._listener.notifies(timeout=0):
                        pass
                    self.wake_ups += 1
                    return
            except psycopg.Error:
                log.exception("timer worker: lost the LISTEN connection")
                self._unlisten()
                return
