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
from app.notify.mailer import send_mail
from app.reports.jobs import service_reports
from app.sla.escalation import sla_escalations

log = logging.getLogger(__name__)


def fire_timers(app: Flask) -> engine.FireReport:
    """One pass over the due timers, with an app context (safe to run in several processes)."""
    with app.app_context():
        try:
            report = engine.fire_due_timers(
                db_session=db.session,
                limit=app.config["TIMER_BATCH_SIZE"],
                retry_seconds=app.config["TIMER_RETRY_SECONDS"],
                batch_size=app.config["TIMER_CLAIM_SIZE"],
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


def make_scheduler(app: Flask, *, blocking: bool, timers: bool = True):
    """The interval jobs; ``timers=False`` leaves timers to a TimerWorker loop."""
    scheduler = BlockingScheduler() if blocking else BackgroundScheduler(daemon=True)
    jobs = [(fire_timers, "TIMER_INTERVAL_SECONDS")] if timers else []
    # Every job runs at its configured interval, one at a time, missed runs folded into one.
    for job, interval_setting in (
        *jobs,
        (housekeeping, "HOUSEKEEPING_INTERVAL_SECONDS"),
        (service_reports, "SERVICE_REPORT_INTERVAL_SECONDS"),
        (dispatch_waiting, "DISPATCH_POOL_INTERVAL_SECONDS"),
        (send_mail, "MAIL_INTERVAL_SECONDS"),
        (sla_escalations, "SLA_ESCALATION_INTERVAL_SECONDS"),
    ):
        scheduler.add_job(
            job,
            "interval",
            args=[app],
            seconds=app.config[interval_setting],
            id=job.__name__,
            max_instances=1,
            coalesce=True,
        )
    return scheduler
