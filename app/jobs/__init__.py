"""Background work: the APScheduler registry and the worker entry point."""

from __future__ import annotations

import logging

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask

from app import engine
from app.dispatch.jobs import dispatch_waiting
from app.extensions import db
from app.jobs.housekeeping import Purged, purge
from app.reports.jobs import service_reports

log = logging.getLogger(__name__)


def fire_timers(app: Flask) -> engine.FireReport:
    """One pass over the due timers, with an app context (safe to run in several processes)."""
    with app.app_context():
        try:
            report = engine.fire_due_timers(
                db_session=db.session,
                limit=app.config["TIMER_BATCH_SIZE"],
                retry_seconds=app.config["TIMER_RETRY_SECONDS"],
            )
        finally:
            db.session.remove()
    if report.fired or report.failed:
        log.info("timers: %s instances fired, %s failed", report.fired, report.failed)
    return report


def housekeeping(app: Flask) -> Purged:
    """Remove replay answers, expired sign-in tokens and old sign-in attempts."""
    with app.app_context():
        try:
            purged = purge(db_session=db.session, config=app.config)
            db.session.commit()
        finally:
            db.session.remove()
    log.info("housekeeping: %s", purged)
    return purged


def make_scheduler(app: Flask, *, blocking: bool):
    scheduler = BlockingScheduler() if blocking else BackgroundScheduler(daemon=True)
    scheduler.add_job(
        fire_timers,
        "interval",
        args=[app],
        seconds=app.config["TIMER_INTERVAL_SECONDS"],
        id="fire_timers",
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        housekeeping,
        "interval",
        args=[app],
        seconds=app.config["HOUSEKEEPING_INTERVAL_SECONDS"],
        id="housekeeping",
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        service_reports,
        "interval",
        args=[app],
        seconds=app.config["SERVICE_REPORT_INTERVAL_SECONDS"],
        id="service_reports",
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        dispatch_waiting,
        "interval",
        args=[app],
        seconds=app.config["DISPATCH_POOL_INTERVAL_SECONDS"],
        id="dispatch_waiting",
        max_instances=1,
        coalesce=True,
    )
    return scheduler
