"""The service-report job: makes the reports of closed work orders that have none."""

from __future__ import annotations

import logging

from flask import Flask
from sqlalchemy.orm import Session

from app.extensions import db
from app.reports.service_report import make_missing_report, tickets_without_report

log = logging.getLogger(__name__)
BATCH = 50


def make_missing_reports(*, db_session: Session, limit: int = BATCH) -> int:
    """Make up to ``limit`` missing reports; returns how many were made.

    Each report is committed on its own (this job function, like the timer job, is the one
    that commits), so one that fails leaves the others made. Safe to run in several processes
    at once: a ticket is locked (SKIP LOCKED on PostgreSQL) and checked again before its report
    is made, so no work order gets two.
    """
    made = 0
    for ticket_id in tickets_without_report(db_session=db_session, limit=limit):
        try:
            if make_missing_report(db_session=db_session, ticket_id=ticket_id, skip_locked=True):
                made += 1
            db_session.commit()
        except Exception:
            db_session.rollback()
            log.exception("service report of work order %s could not be made", ticket_id)
    return made


def service_reports(app: Flask) -> int:
    """One pass of the job, with an app context (the scheduler's entry point)."""
    with app.app_context():
        try:
            made = make_missing_reports(db_session=db.session)
        finally:
            db.session.remove()
    if made:
        log.info("service reports: %s made", made)
    return made
