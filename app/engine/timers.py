"""Firing due timers: the worker's job, one instance per transaction (this module commits)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

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


def fire_due_timers(
    *, db_session: Session, now: datetime | None = None, limit: int = 100, retry_seconds: int = 300
) -> FireReport:
    """Fire every due timer, one instance per transaction (this job function commits).

    The instance row is claimed with FOR UPDATE SKIP LOCKED on PostgreSQL, so several workers
    share the work and never fire one timer twice. A timer whose step fails is retried later
    and its error kept on the timer row.
    """
    now = now or utcnow()
    report = FireReport()
    tried: set[int] = set()
    while report.fired + report.failed < limit:
        instance_id = _claim_due_instance(db_session, now, tried)
        if instance_id is None:
            break
        tried.add(instance_id)
        try:
            step = open_step(db_session, instance_id, actor=None)

            def fire(step: Step = step):
                step.workflow.refresh_timers()

            run_engine(step, fire)
            save_step(db_session, step, now=now)
            db_session.commit()
            report.fired += 1
        except Exception as exc:
            db_session.rollback()
            log.exception("timer of process instance %s failed", instance_id)
            _postpone(db_session, instance_id, now, retry_seconds, exc)
            report.failed += 1
    db_session.commit()
    return report


def _claim_due_instance(db_session: Session, now: datetime, tried: set[int]) -> int | None:
    query = (
        select(ProcessInstance.id)
        .join(Timer, Timer.instance_id == ProcessInstance.id)
        .where(Timer.due_at <= now, ProcessInstance.status == "running")
        .order_by(Timer.due_at)
        .limit(1)
        .with_for_update(of=ProcessInstance, skip_locked=True)
    )
    if tried:
        query = query.where(ProcessInstance.id.not_in(tried))
    return db_session.execute(query).scalar_one_or_none()


def _postpone(db_session: Session, instance_id: int, now, retry_seconds: int, exc) -> None:
    try:
        for timer in db_session.scalars(
            select(Timer).where(Timer.instance_id == instance_id, Timer.due_at <= now)
        ):
            timer.attempts += 1
            timer.last_error = str(exc)[:2000]
            timer.due_at = now + timedelta(seconds=retry_seconds * timer.attempts)
        db_session.commit()
    except SQLAlchemyError:
        db_session.rollback()
        log.exception("could not postpone the timers of process instance %s", instance_id)
