"""Dispatch pages: why a work order's engineer was chosen, the dispatcher's choice from the
ranked list (with the override reason), and the pool (工单池) where engineers grab work.

Every read and write goes through app.dispatch.service, which checks who may see and do what;
these views only shape what it answers for the page language."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from app.auth.access import roles_required
from app.dispatch import service
from app.dispatch.scoring import haversine_km
from app.engine.models import HumanTask
from app.errors import Conflict, NotFound, PaidanError
from app.extensions import db
from app.i18n import current_language, error_text, pick
from app.tickets.models import Ticket
from app.tickets.progress import display_names, duration_text
from app.tickets.service import get_visible_ticket, visible_tickets_query
from app.timeutil import utcnow

bp = Blueprint("dispatch_pages", __name__)

# Who is shown the explanation: the people who work on work orders, not requesters or finance.
STAFF = ("admin", "dispatcher", "handler", "reviewer")
DISPATCHERS = ("admin", "dispatcher")
POOL_ROLES = ("handler",)
RUNNERS_UP = 5
# The dispatcher chooses among the best few; the ranking keeps more for the record.
CHOICES = 10


def _me():
    # Services compare and store the user object itself, not flask-login's proxy.
    return current_user._get_current_object()


def _wants_fragment() -> bool:
    return bool(request.headers.get("HX-Request"))


def _parse_time(value) -> datetime | None:
    if isinstance(value, datetime) or value is None:
        return value
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None


def _reason_text(row: dict) -> str:
    """An exclusion reason as stored (Reason.zh / Reason.en), in the page language."""
    return row.get("zh" if current_language() == "zh" else "en") or row.get("code", "")


# ---------------------------------------------------------------- the explanation panel


@dataclass
class Decision:
    id: int
    chosen: str
    chosen_name: str
    decided_by: str | None
    how: str
    at: datetime
    reason: str | None
    deadline: datetime | None
    breakdown: dict | None
    chosen_reason: str | None
    runners_up: list[dict]
    excluded: list[dict]


@dataclass
class Choice:
    ticket_id: int
    task_name: str
    ranked: list[dict] = field(default_factory=list)
    excluded: list[dict] = field(default_factory=list)


@dataclass
class Explanation:
    decision: Decision | None
    choice: Choice | None


def _how(decision, names: dict[str, str]) -> str:
    """Who made the decision, in words: the system, a grab from the pool, or a person."""
    by = names.get(decision.decided_by, decision.decided_by) if decision.decided_by else None
    if decision.mode == "pool" and by:
        return _("grabbed from the pool by %(name)s", name=by)
    if by is None:
        return _("chosen by the system")
    if decision.reason:
        return _("assigned by %(name)s, overriding the recommendation", name=by)
    return _("assigned by %(name)s", name=by)


def _decision(decision) -> Decision:
    ranking = decision.ranking or {}
    ranked = ranking.get("ranked") or []
    excluded = ranking.get("excluded") or []
    names = display_names(
        db.session,
        {decision.chosen, decision.decided_by}
        | {row["username"] for row in ranked}
        | {row["username"] for row in excluded},
    )
    chosen = next((row for row in ranked if row["username"] == decision.chosen), None)
    breakdown = None
    if chosen is not None:
        breakdown = {**chosen, "eta": _parse_time(chosen.get("eta"))}
    chosen_excluded = next((row for row in excluded if row["username"] == decision.chosen), None)
    return Decision(
        id=decision.id,
        chosen=decision.chosen,
        chosen_name=names.get(decision.chosen, decision.chosen),
        decided_by=decision.decided_by,
        how=_how(decision, names),
        at=decision.created_at,
        reason=decision.reason,
        deadline=_deadline(decision),
        breakdown=breakdown,
        chosen_reason=_reason_text(chosen_excluded) if chosen_excluded else None,
        runners_up=[
            {**row, "name": names.get(row["username"], row["username"])}
            for row in ranked
            if row["username"] != decision.chosen
        ][:RUNNERS_UP],
        excluded=[
            {
                "username": row["username"],
                "code": row.get("code", ""),
                "name": names.get(row["username"], row["username"]),
                "reason": _reason_text(row),
            }
            for row in excluded
            if row["username"] != decision.chosen
        ],
    )


def _deadline(decision) -> datetime | None:
    """The SLA deadline the arrival was weighed against: stored with the ranking, else the
    task's due time."""
    stored = _parse_time(((decision.ranking or {}).get("job") or {}).get("deadline"))
    if stored is not None:
        return stored
    if decision.task_id is None:
        return None
    return db.session.scalar(select(HumanTask.due_at).where(HumanTask.id == decision.task_id))


def _choice(ticket: Ticket) -> Choice | None:
    """The ranked list for a dispatcher, while the work order has a task waiting for an engineer."""
    if service.dispatchable_task(db_session=db.session, ticket=ticket) is None:
        return None
    rec = service.recommendation(db_session=db.session, user=_me(), ticket_id=ticket.id)
    ranking, task = rec.ranking, rec.task
    ranked = ranking.ranked[:CHOICES]
    names = display_names(
        db.session, {b.username for b in ranked} | {username for username, _r in ranking.excluded}
    )
    choice = Choice(ticket_id=ticket.id, task_name=task.name)
    for breakdown in ranked:
        choice.ranked.append(
            {
                "username": breakdown.username,
                "name": names.get(breakdown.username, breakdown.username),
                "total": breakdown.total,
                "travel_minutes": breakdown.travel_minutes,
                "holds": task.assignee == breakdown.username,
            }
        )
    for username, reason in ranking.excluded:
        choice.excluded.append(
            {
                "username": username,
                "name": names.get(username, username),
                "reason": reason.zh if current_language() == "zh" else reason.en,
                "holds": task.assignee == username,
            }
        )
    return choice


@bp.app_template_global("dispatch_explanation")
def dispatch_explanation(ticket: Ticket) -> Explanation | None:
    """For the work-order page: the latest decision explained, and for dispatchers and admins
    the ranked choice. None for requesters and finance, and when there is nothing to show."""
    user = current_user
    if not user.is_authenticated or user.role not in STAFF:
        return None
    latest = service.latest_decision(db_session=db.session, ticket_id=ticket.id)
    choice = _choice(ticket) if user.role in DISPATCHERS else None
    if latest is None and choice is None:
        return None
    return Explanation(decision=_decision(latest) if latest else None, choice=choice)


@bp.post("/dispatch/tickets/<int:ticket_id>/assign")
@roles_required(*DISPATCHERS)
def assign(ticket_id: int):
    """The dispatcher's choice: give the work order's waiting task to one engineer (an override
    of the recommendation needs a reason). htmx gets the panel back, showing the decision."""
    username = request.form.get("username", "").strip()
    reason = request.form.get("reason", "").strip() or None
    try:
        service.assign(
            db_session=db.session, user=_me(), ticket_id=ticket_id, username=username, reason=reason
        )
    except PaidanError as error:
        if not _wants_fragment() or error.status == 404:
            raise
        # Shown under the engineer's form: the sentence in the page language is the whole
        # message (the field names beside it are for API clients).
        db.session.rollback()
        return render_template("dispatch/_refusal.html", message=error_text(error)), error.status
    db.session.commit()
    ticket = get_visible_ticket(db_session=db.session, user=_me(), ticket_id=ticket_id)
    if _wants_fragment():
        return render_template("dispatch/_panel.html", dispatch=dispatch_explanation(ticket))
    name = display_names(db.session, [username]).get(username, username)
    flash(_("Assigned to %(name)s.", name=name), "success")
    return redirect(
        url_for("ticket_pages.ticket_page", ticket_id=ticket_id, _anchor="dispatch"), 303
    )


# ---------------------------------------------------------------- the pool


@dataclass
class PoolRow:
    task: HumanTask
    ticket: Ticket | None
    ticket_visible: bool
    priority: str | None
    distance_km: float | None
    waiting: str
    overdue: bool


def _pool_rows(tasks: list[HumanTask], here) -> list[PoolRow]:
    """The pool's tasks as the page lists them; ``here`` is the engineer's position
    (service.position_of) or None."""
    now = utcnow()
    ids = {task.ticket_id for task in tasks if task.ticket_id}
    tickets = {t.id: t for t in db.session.scalars(select(Ticket).where(Ticket.id.in_(ids)))}
    visible = set(
        db.session.scalars(
            visible_tickets_query(db_session=db.session, user=_me())
            .where(Ticket.id.in_(ids))
            .with_only_columns(Ticket.id)
        )
    )
    rows = []
    for task in tasks:
        ticket = tickets.get(task.ticket_id)
        distance = priority = None
        if ticket is not None:
            # The job as dispatch sees it: the priority after triage, the place of the work.
            job = service.job_for(db_session=db.session, ticket=ticket)
            priority = job.priority
            if here is not None and job.lat is not None and job.lng is not None:
                distance = haversine_km(here.lat, here.lng, job.lat, job.lng)
        rows.append(
            PoolRow(
                task=task,
                ticket=ticket,
                ticket_visible=ticket is not None and ticket.id in visible,
                priority=priority,
                distance_km=distance,
                waiting=duration_text(now - task.created_at),
                overdue=task.due_at is not None and task.due_at <= now,
            )
        )
    return rows


def _position_text(position) -> str:
    if position.source == "live":
        return _("Distances from your current position.")
    if position.source == "checkin":
        return _("Distances from your last check-in.")
    return _("Distances from your home base.")


def pool_label() -> str:
    """The pool's name in the page language (the main navigation shows it to engineers)."""
    return _("Pool")


@bp.get("/pool")
@roles_required(*POOL_ROLES)
def pool():
    """The pool tasks this engineer is qualified for, with distance and time waiting."""
    tasks = service.pool(db_session=db.session, user=_me())
    here = service.position_of(db_session=db.session, user=_me(), now=utcnow())
    return render_template(
        "dispatch/pool.html",
        rows=_pool_rows(tasks, here),
        position={"source": here.source, "text": _position_text(here)} if here else None,
        islands=["position"],
    )


def _lost_message(task_id: str) -> tuple[str, str] | None:
    """The loser's message (已被 xxx 抢走) when someone else holds a task that was offered to
    this engineer; None otherwise (the service's own refusal stands, and nobody learns who
    holds tasks that were never theirs to grab)."""
    task = db.session.get(HumanTask, task_id)
    me = current_user
    if task is None or not task.assignee or task.assignee == me.username:
        return None
    offered = me.username in task.candidate_users or set(task.candidate_groups) & set(
        me.group_names()
    )
    if not offered:
        return None
    name = display_names(db.session, [task.assignee]).get(task.assignee, task.assignee)
    return (f"已被 {name} 抢走", f"already grabbed by {name}")


@bp.post("/pool/<task_id>/grab")
@roles_required(*POOL_ROLES)
def grab(task_id: str):
    """抢单: exactly one engineer wins; the others are told who did, in place."""
    try:
        task = service.grab(db_session=db.session, user=_me(), task_id=task_id)
    except (Conflict, NotFound) as error:
        db.session.rollback()
        lost = _lost_message(task_id)
        if lost is None:
            raise
        if _wants_fragment():
            message = lost[0] if current_language() == "zh" else lost[1]
            return render_template(
                "dispatch/_pool_lost.html", message=message, task_id=task_id
            ), 409
        raise Conflict(*lost) from error
    db.session.commit()
    if _wants_fragment():
        here = service.position_of(db_session=db.session, user=_me(), now=utcnow())
        (row,) = _pool_rows([task], here)
        return render_template("dispatch/_pool_item.html", row=row, grabbed=True)
    flash(_("It is yours now: %(name)s", name=pick(task.name)), "success")
    return redirect(url_for("inbox_pages.task_page", task_id=task.id), 303)
