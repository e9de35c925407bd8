"""Firing due timers: the worker's job, in batches of claimed instances (this module commits)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import BigInteger, Select, all_, any_, bindparam, literal, select, true
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, aliased, lazyload
from sqlalchemy.orm.exc import StaleDataError

from app.engine.models import (
    ProcessInstance,
    Timer,
)
from app.engine.runtime import (
    Step,
    load_step,
    open_step,
    run_engine,
    save_step,
    save_steps,
)
from app.timeutil import utcnow

log = logging.getLogger(__name__)

# How far down the due_at index one claim looks for instances that no other worker holds.
# A worker holds one claim at a time (at most CLAIM_GROWTH × TIMER_CLAIM_SIZE instances, 80
# by default), so this serves some 25 workers before one finds nothing it could take.
CLAIM_WINDOW = 2000
# While claims come back full, each is twice the last, up to this many times ``batch_size``.
CLAIM_GROWTH = 4


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
    stop: Callable[[], bool] | None = None,
) -> FireReport:
    """Fire the due timers of up to ``limit`` instances (this job function commits).

    Instance rows are claimed with FOR UPDATE SKIP LOCKED on PostgreSQL, ``batch_size`` per
    transaction (more while claims come back full, up to CLAIM_GROWTH times as many), so
    several workers share the work and never fire one timer twice: the claim is a row lock
    inside the firing transaction, and a worker that dies leaves it to the others when its
    transaction rolls back. A batch is loaded by the claim itself and saved
    with one statement per table (runtime.save_steps); an instance whose timer fails is left
    out of it and its due timers postponed with the error kept on the timer row. Should the
    batch fail as a whole (a database error, a signal receiver), it is rolled back and its
    instances fired one per transaction, so that only the failing one is postponed. Without
    ``now`` every batch uses the time it was claimed at. SQLite has no row locks: there a
    batch is always one instance, read again under its version check. ``stop`` is asked
    before each claim; when it says yes the pass ends there.
    """
    report = FireReport()
    tried: set[int] = set()
    if db_session.get_bind().dialect.name == "sqlite":
        batch_size = 1
    claim = batch_size
    while report.fired + report.failed < limit and not (stop and stop()):
        batch_now = now or utcnow()
        size = min(claim, limit - report.fired - report.failed)
        if batch_size == 1:
            instance_ids = claim_due_instances(db_session, batch_now, tried, size)
            if not instance_ids:
                break
            tried.update(instance_ids)
            report += _fire_alone(db_session, instance_ids[0], batch_now, retry_seconds)
        else:
            instances = claim_due_batch(db_session, batch_now, tried, size)
            if not instances:
                break
            tried.update(instance.id for instance in instances)
            report += _fire_batch(db_session, instances, batch_now, retry_seconds)
            if len(instances) < size:
                # All that was due is fired (or held by others): what falls due from now on
                # waits for the next pass, rather than costing a claim each.
                break
            # A backlog (a burst): bigger claims cost less per timer. Small ones otherwise,
            # so that a few due timers are shared between the workers.
            claim = min(2 * claim, CLAIM_GROWTH * batch_size)
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


def _fire_batch(
    db_session: Session, instances: list[ProcessInstance], now: datetime, retry_seconds: int
) -> FireReport:
    """Fire a claimed batch in this transaction and commit it."""
    instance_ids = [instance.id for instance in instances]
    try:
        steps: list[Step] = []
        failures: list[tuple[int, Exception]] = []
        for instance in instances:
            try:
                step = load_step(instance, actor=None)
                run_engine(step, step.workflow.refresh_timers)
                steps.append(step)
            except Exception as exc:
                log.exception("timer of process instance %s failed", instance.id)
                failures.append((instance.id, exc))
        for step, exc in save_steps(db_session, steps, now=now):
            log.error("timer of process instance %s failed", step.instance.id, exc_info=exc)
            failures.append((step.instance.id, exc))
        _postpone(db_session, failures, now, retry_seconds)
        db_session.commit()
        return FireReport(fired=len(instance_ids) - len(failures), failed=len(failures))
    except Exception:
        db_session.rollback()
        log.exception(
            "a batch of %s timer instances failed; firing them one by one", len(instances)
        )
    report = FireReport()
    for instance_id in instance_ids:
        # The rollback let the locks go: claim again what is still due and not taken since.
        if claim_due_instances(db_session, now, set(), 1, among=[instance_id]):
            report += _fire_alone(db_session, instance_id, now, retry_seconds)
        else:
            db_session.commit()
    return report


def claim_due_batch(
    db_session: Session, now: datetime, tried: set[int], limit: int
) -> list[ProcessInstance]:
    """Lock and load up to ``limit`` running instances with a due timer (PostgreSQL)."""
    found = db_session.scalars(
        _statements().claim_batch,
        {"now": now, "tried": sorted(tried), "limit": limit},
        execution_options={"populate_existing": True},
    )
    # An instance with two due timers comes twice; FOR UPDATE allows no DISTINCT.
    return list(dict.fromkeys(found))


def claim_due_instances(
    db_session: Session,
    now: datetime,
    tried: set[int],
    limit: int,
    *,
    among: list[int] | None = None,
) -> list[int]:
    """Lock up to ``limit`` running instances with a due timer that no other worker holds."""
    if db_session.get_bind().dialect.name == "postgresql":
        statements = _statements()
        params = {"now": now, "tried": sorted(tried), "limit": limit}
        if among is None:
            found = db_session.scalars(statements.claim_ids, params)
        else:
            found = db_session.scalars(statements.claim_among, {**params, "among": among})
        return list(dict.fromkeys(found))
    query = (
        select(ProcessInstance.id)
        .join(Timer, Timer.instance_id == ProcessInstance.id)
        .where(Timer.due_at <= now, ProcessInstance.status == "running")
        .order_by(Timer.due_at)
        .limit(limit)
    )
    if tried:
        query = query.where(ProcessInstance.id.not_in(tried))
    if among is not None:
        query = query.where(ProcessInstance.id.in_(among))
    return list(dict.fromkeys(db_session.scalars(query)))


def _claim_due_instance(db_session: Session, now: datetime, tried: set[int]) -> int | None:
    found = claim_due_instances(db_session, now, tried, 1)
    return found[0] if found else None


def next_due(db_session: Session) -> datetime | None:
    """When the earliest timer of a running instance is due (a walk down the due_at index)."""
    if db_session.get_bind().dialect.name == "postgresql":
        return db_session.scalar(_statements().next_due, {"tried": []})
    return db_session.scalar(
        select(Timer.due_at)
        .join(ProcessInstance, Timer.instance_id == ProcessInstance.id)
        .where(ProcessInstance.status == "running")
        .order_by(Timer.due_at)
        .limit(1)
    )


@dataclass(frozen=True)
class _Statements:
    claim_batch: Select
    claim_ids: Select
    claim_among: Select
    next_due: Select


@cache
def _statements() -> _Statements:
    """The PostgreSQL queries of the timer worker, built once (building one costs more than
    running it)."""
    due, locked = _due_walk(ProcessInstance, due_by=True, among=False, lock=True)
    instance = aliased(ProcessInstance, locked)
    claim_batch = (
        select(instance)
        .select_from(due)
        .join(locked, true())
        .limit(bindparam("limit"))
        .options(lazyload(instance.definition))
    )
    due, locked = _due_walk(ProcessInstance.id, due_by=True, among=False, lock=True)
    claim_ids = select(locked.c.id).select_from(due).join(locked, true()).limit(bindparam("limit"))
    due, locked = _due_walk(ProcessInstance.id, due_by=True, among=True, lock=True)
    claim_among = (
        select(locked.c.id).select_from(due).join(locked, true()).limit(bindparam("limit"))
    )
    due, running = _due_walk(ProcessInstance.id, due_by=False, among=False, lock=False)
    next_due = select(due.c.due_at).select_from(due).join(running, true()).limit(1)
    return _Statements(claim_batch, claim_ids, claim_among, next_due)


def _due_walk(entity, *, due_by: bool, among: bool, lock: bool):
    """Running instances with a timer due by ``:now``, earliest first, that no other
    transaction holds (``lock``: and lock them), leaving out those in ``:tried``; returns
    the walk over the timers and the instances.

    The query walks the due_at index and looks each instance up by primary key (a LATERAL
    subquery kept apart by OFFSET 0), whatever the table statistics say; a plain join lets
    the planner hash every running instance when it misjudges how many there are. The lock
    is taken inside that subquery, row by row as the walk goes, so it never covers more than
    the instances returned. Timer rows belong to running instances only (a step that ends an
    instance deletes its timers), so the walk finds free instances within CLAIM_WINDOW.
    """
    due = select(Timer.instance_id, Timer.due_at)
    if due_by:
        due = due.where(Timer.due_at <= bindparam("now"))
    if among:
        due = due.where(Timer.instance_id == any_(bindparam("among", type_=_ID_ARRAY)))
    due = due.order_by(Timer.due_at).limit(literal(CLAIM_WINDOW, literal_execute=True))
    due = due.subquery("due")
    instances = (
        select(entity)
        .where(
            ProcessInstance.id == due.c.instance_id,
            ProcessInstance.status == "running",
            ProcessInstance.id != all_(bindparam("tried", type_=_ID_ARRAY)),
        )
        .offset(literal(0, literal_execute=True))
    )
    if lock:
        instances = instances.with_for_update(skip_locked=True)
    return due, instances.lateral("due_instance")


_ID_ARRAY = ARRAY(BigInteger)


def _postpone(db_session: Session, failures: list[tuple[int, Exception]], now, retry_seconds):
    for instance_id, exc in failures:
        for timer in db_session.scalars(
            select(Timer).where(Timer.instance_id == instance_id, Timer.due_at <= now)
        ):
            timer.attempts += 1
            timer.last_error = str(exc)[:2000]
            timer.due_at = now + timedelta(seconds=retry_seconds * timer.attempts)
