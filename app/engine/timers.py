"""Firing due timers: the worker's job, in batches of claimed instances (this module commits)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from app.engine.models import (
    ProcessInstance,
    Timer,
)
from app.engine.runtime import (
    Step,
    open_step,
    run_engine,
    save_step,
)
from app.timeutil import utcnow

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- timers


@dataclass
class FireReport:
    fired: int = 0
    failed: int = 0

    def __iadd__(self, other: FireReport) -> FireReport:
        self.fired += other.fired
        self.failed += other.failed
        return self


def fire_due_timers(
    *,
    db_session: Session,
    now: datetime | None = None,
    limit: int = 100,
    retry_seconds: int = 300,
    batch_size: int = 1,
) -> FireReport:
    """Fire the due timers of up to ``limit`` instances (this job function commits).

    Instance rows are claimed with FOR UPDATE SKIP LOCKED on PostgreSQL, ``batch_size`` per
    transaction, so several workers share the work and never fire one timer twice: the claim
    is a row lock inside the firing transaction, and a worker that dies leaves it to the
    others when its transaction rolls back. Each instance of a batch runs in a SAVEPOINT: a
    failing one is rolled back alone, its due timers postponed with the error kept on the
    timer row, and the others of the batch are committed. Without ``now`` every batch uses
    the time it was claimed at. SQLite has no SAVEPOINT worth the name under pysqlite's
    transaction handling, so there a batch is always one instance.
    """
    report = FireReport()
    tried: set[int] = set()
    if db_session.get_bind().dialect.name == "sqlite":
        batch_size = 1
    while report.fired + report.failed < limit:
        batch_now = now or utcnow()
        size = min(batch_size, limit - report.fired - report.failed)
        instance_ids = claim_due_instances(db_session, batch_now, tried, size)
        if not instance_ids:
            break
        tried.update(instance_ids)
        if batch_size == 1:
            report += _fire_alone(db_session, instance_ids[0], batch_now, retry_seconds)
        else:
            report += _fire_batch(db_session, instance_ids, batch_now, retry_seconds)
    db_session.commit()
    return report


def _fire(db_session: Session, instance_id: int, now: datetime) -> None:
    step = open_step(db_session, instance_id, actor=None)

    def fire(step: Step = step):
        step.workflow.refresh_timers()

    run_engine(step, fire)
    save_step(db_session, step, now=now)


def _fire_alone(db_session: Session, instance_id: int, now, retry_seconds: int) -> FireReport:
    try:
        _fire(db_session, instance_id, now)
        db_session.commit()
        return FireReport(fired=1)
    except StaleDataError:
        # SQLite has no row lock: another worker stepped this instance first, and its own
        # step fired what was due. Nothing to retry.
        db_session.rollback()
        return FireReport()
    except Exception as exc:
        db_session.rollback()
        log.exception("timer of process instance %s failed", instance_id)
        try:
            _postpone(db_session, [(instance_id, exc)], now, retry_seconds)
            db_session.commit()
        except SQLAlchemyError:
            db_session.rollback()
            log.exception("could not postpone the timers of process instance %s", instance_id)
        return FireReport(failed=1)


def _fire_batch(db_session: Session, instance_ids: list[int], now, retry_seconds) -> FireReport:
    report = FireReport()
    failures: list[tuple[int, Exception]] = []
    for instance_id in instance_ids:
        try:
            with db_session.begin_nested():
                _fire(db_session, instance_id, now)
            report.fired += 1
        except Exception as exc:
            log.exception("timer of process instance %s failed", instance_id)
            failures.append((instance_id, exc))
    try:
        _postpone(db_session, failures, now, retry_seconds)
        db_session.commit()
    except SQLAlchemyError:
        # The commit lost the whole batch; its instances stay due and the next pass retries.
        db_session.rollback()
        log.exception("a batch of %s timer instances could not be committed", len(instance_ids))
        return FireReport(failed=len(instance_ids))
    report.failed += len(failures)
    return report


def claim_due_instances(
    db_session: Session, now: datetime, tried: set[int], limit: int
) -> list[int]:
    """Lock up to ``limit`` running instances with a due timer that no other worker holds."""
    query = (
        select(ProcessInstance.id)
        .join(Timer, Timer.instance_id == ProcessInstance.id)
        .where(Timer.due_at <= now, ProcessInstance.status == "running")
        .order_by(Timer.due_at)
        .limit(limit)
        .with_for_update(of=ProcessInstance, skip_locked=True)
    )
    if tried:
        query = query.where(ProcessInstance.id.not_in(tried))
    # An instance with two due timers comes twice; FOR UPDATE allows no DISTINCT.
    return list(dict.fromkeys(db_session.scalars(query)))


def _claim_due_instance(db_session: Session, now: datetime, tried: set[int]) -> int | None:
    found = claim_due_instances(db_session, now, tried, 1)
    return found[0] if found else None


def next_due(db_session: Session) -> datetime | None:
    """When the earliest timer of a running instance is due (a walk down the due_at index)."""
    return db_session.scalar(
        select(Timer.due_at)
        .join(ProcessInstance, Timer.instance_id == ProcessInstance.id)
        .where(ProcessInstance.status == "running")
        .order_by(Timer.due_at)
        .limit(1)
    )


def _postpone(db_session: Session, failures: list[tuple[int, Exception]], now, retry_seconds):
    for instance_id, exc in failures:
        for timer in db_session.scalars(
            select(Timer).where(Timer.instance_id == instance_id, Timer.due_at <= now)
        ):
            timer.attempts += 1
            timer.last_error = str(exc)[:2000]
            timer.due_at = now + timedelta(seconds=retry_seconds * timer.attempts)
