"""Escalation levels: as a running clock uses up its target, each level of its policy (for
example 50 %, 75 %, 100 %, 150 %) notifies its people once, and the reminder threshold
(超时提醒阈值) reminds the assignee once. A job; notify() deduplicates by clock and level, so
a pass that runs twice (two workers, a retry) notifies once."""

from __future__ import annotations

import logging
from datetime import datetime

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import Group, User
from app.engine.models import HumanTask
from app.extensions import db
from app.notify.service import notify
from app.sla.clock import ledger
from app.sla.sla_models import SlaClock
from app.tickets.models import Ticket
from app.timeutil import utcnow

log = logging.getLogger(__name__)
KIND_ZH = {"response": "响应", "resolution": "解决"}


def recipients(db_session: Session, ticket: Ticket, roles: list[str]) -> list[User]:
    """The people a level names: "assignee" (holders of the work order's open tasks),
    "group_lead" (leads of the groups those tasks are offered to), "manager" (the
    dispatchers: they move work between people), or "user:<username>"."""
    tasks = db_session.scalars(
        select(HumanTask).where(HumanTask.ticket_id == ticket.id, HumanTask.status == "open")
    ).all()
    names: set[str] = set()
    if "assignee" in roles:
        names |= {task.assignee for task in tasks if task.assignee}
    if "group_lead" in roles:
        groups = {group for task in tasks for group in task.candidate_groups}
        leads = db_session.scalars(
            select(User.username)
            .join(Group, Group.lead_id == User.id)
            .where((Group.code.in_(groups)) | (Group.name.in_(groups)))
        )
        names |= set(leads)
    names |= {role.removeprefix("user:") for role in roles if role.startswith("user:")}
    query = select(User).where(User.is_active_account.is_(True))
    if "manager" in roles:
        query = query.where((User.username.in_(names)) | (User.role == "dispatcher"))
    else:
        query = query.where(User.username.in_(names))
    return list(db_session.scalars(query.order_by(User.username)))


def escalate(*, db_session: Session, now: datetime) -> int:
    """Notify every level reached by the running clocks; returns how many levels notified.
    Paused clocks and clocks whose deadline is unknown (no deadline: a year without holiday
    data) wait; stopped ones are done. The caller commits."""
    clocks = db_session.scalars(
        select(SlaClock).where(SlaClock.stopped_at.is_(None), SlaClock.deadline.is_not(None))
    ).all()
    done = 0
    for ticket_id in sorted({clock.ticket_id for clock in clocks}):
        ticket = db_session.get(Ticket, ticket_id)
        by_kind = {clock.kind: clock for clock in clocks if clock.ticket_id == ticket_id}
        for row in ledger(db_session, ticket_id, now):
            clock = by_kind.get(row["kind"])
            if clock is None or clock.policy is None or row["percent_used"] is None:
                continue  # no percent without the holidays of a year it reaches: wait for them
            levels = [
                (
                    f"reminder-{clock.policy.reminder_percent}",
                    clock.policy.reminder_percent,
                    ["assignee"],
                )
            ] + [
                (str(level["percent"]), level["percent"], list(level.get("notify") or []))
                for level in clock.policy.escalation_levels or []
            ]
            for key, percent, roles in levels:
                if row["percent_used"] < percent:
                    continue
                people = recipients(db_session, ticket, roles)
                written = notify(
                    db_session,
                    users=people,
                    kind="sla_reminder" if key.startswith("reminder") else "sla_escalation",
                    title=_title(ticket, row["kind"], percent, key.startswith("reminder")),
                    body=_body(ticket, row),
                    ticket_id=ticket.id,
                    link=f"/tickets/{ticket.id}",
                    dedupe_key=f"sla:{clock.id}:{key}",
                )
                done += bool(written.notifications)
    return done


def _title(ticket: Ticket, kind: str, percent: int, reminder: bool) -> tuple[str, str]:
    if reminder:
        return (
            f"超时提醒：工单 {ticket.number} {KIND_ZH.get(kind, kind)}时限已用 {percent}%",
            f"reminder: work order {ticket.number} has used {percent}% of its {kind} time",
        )
    if percent >= 100:
        return (
            f"工单 {ticket.number} {KIND_ZH.get(kind, kind)}已超时（SLA {percent}%）",
            f"work order {ticket.number}: {kind} time is over (SLA {percent}%)",
        )
    return (
        f"工单 {ticket.number} {KIND_ZH.get(kind, kind)}时限已用 {percent}%",
        f"work order {ticket.number}: {percent}% of the {kind} time is used",
    )


def _body(ticket: Ticket, row: dict) -> tuple[str, str]:
    return (
        f"{ticket.title}。截止时间 {row['deadline']}，剩余 {row['remaining_minutes']} 个工作分钟。",
        f"{ticket.title}. Due {row['deadline']}, {row['remaining_minutes']} working minutes left.",
    )


def sla_escalations(app: Flask) -> int:
    """The scheduler's entry point: one pass, committed, with an app context."""
    with app.app_context():
        try:
            done = escalate(db_session=db.session, now=utcnow())
            db.session.commit()
        finally:
            db.session.remove()
    if done:
        log.info("sla: %s escalation levels notified", done)
    return done
