"""The dispatch job: pool tasks nobody grabbed within their group's wait, and auto tasks
nobody could take when they opened, are assigned by batch (see planning.assign_waiting)."""

from __future__ import annotations

import logging

from flask import Flask
from sqlalchemy.orm import Session

from app.dispatch.planning import assign_waiting, automatic_groups
from app.extensions import db
from app.timeutil import utcnow

log = logging.getLogger(__name__)


def assign_waiting_tasks(*, db_session: Session) -> int:
    """One pass over the groups dispatched automatically; returns how many tasks were assigned.

    Each group is committed on its own (this job function, like the timer job, is the one that
    commits), so a failing group leaves the others assigned. Safe to run twice or in several
    workers: every task is locked and checked again before it is given to anyone.
    """
    assigned = 0
    for code in automatic_groups(db_session=db_session):
        try:
            assigned += len(assign_waiting(db_session=db_session, group_code=code, now=utcnow()))
            db_session.commit()
        except Exception:
            db_session.rollback()
            log.exception("dispatch: waiting tasks of group %s could not be assigned", code)
    return assigned


def dispatch_waiting(app: Flask) -> int:
    """The scheduler's entry point, with an app context."""
    with app.app_context():
        try:
            assigned = assign_waiting_tasks(db_session=db.session)
        finally:
            db.session.remove()
    if assigned:
        log.info("dispatch: %s waiting tasks assigned", assigned)
    return assigned
