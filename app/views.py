"""The start page, the top navigation every page shows, and what every page template may call.

Navigation shows only what the signed-in person may open; counts use the same visibility
conditions as the lists they lead to (app.auth.access)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select

from app.auth.access import login_required, my_task_condition, roles_required, ticket_condition
from app.auth.models import ROLES
from app.engine.models import HumanTask
from app.extensions import db
from app.i18n import current_language
from app.tickets.models import STATUSES, Ticket

bp = Blueprint("pages", __name__)

STAFF = ("admin", "dispatcher", "handler", "reviewer")


@dataclass
class NavItem:
    key: str
    href: str
    label: str
    count: int | None = None
    active: bool = False


def role_name(role: str) -> str:
    zh, en = ROLES.get(role, (role, role))
    return zh if current_language() == "zh" else en


def status_name(status: str) -> str:
    zh, en = STATUSES.get(status, (status, status))
    return zh if current_language() == "zh" else en


def my_open_task_count(user) -> int:
    """Tasks waiting for this person: assigned to them, or offered to them and unclaimed."""
    return db.session.scalar(
        select(func.count())
        .select_from(HumanTask)
        .where(HumanTask.status == "open", my_task_condition(user))
    )


def nav_items() -> list[NavItem]:
    user = current_user
    items: list[NavItem] = []
    if user.role in STAFF:
        items.append(NavItem("inbox", "/inbox", _("Inbox"), my_open_task_count(user)))
    if user.role == "handler":
        # The pool's page and its words belong to dispatch.
        from app.dispatch.views import pool_label

        items.append(NavItem("pool", "/pool", pool_label()))
    if user.role != "requester":
        items.append(NavItem("tickets", "/tickets", _("Work orders")))
    if user.role in ("admin", "dispatcher"):
        items.append(NavItem("overview", url_for("pages.overview"), _("Overview")))
        # The SLA pages and their words belong to app.sla.
        from app.sla.views import sla_label

        items.append(NavItem("sla", "/sla", sla_label()))
    if user.role == "admin":
        # The designer's pages and their words belong to app.designer.
        from app.designer.views import designer_label

        items.append(NavItem("designer", "/designer", designer_label()))
    if user.role in STAFF:
        items.append(NavItem("devices", "/devices", _("Devices")))
    if user.role != "finance":
        items.append(NavItem("report", "/portal/new", _("Report a fault")))
    if user.role in ("requester", *STAFF[1:]):
        items.append(NavItem("mine", "/portal", _("My reports")))
    for item in items:
        item.active = request.path == item.href or request.path.startswith(item.href + "/")
    return items


@bp.get("/")
@login_required
def home():
    """Each role starts where its work is."""
    if current_user.role == "requester":
        return redirect("/portal")
    if current_user.role == "finance":
        return redirect("/tickets")
    if current_user.role in ("admin", "dispatcher"):
        return redirect(url_for("pages.overview"))
    return redirect("/inbox")


@bp.get("/overview")
@roles_required("admin", "dispatcher")
def overview():
    """Counts and the latest work orders, of the work orders this person may see."""
    visible = ticket_condition(db.session, current_user)
    counts = dict(
        db.session.execute(
            select(Ticket.status, func.count()).where(visible).group_by(Ticket.status)
        ).all()
    )
    recent = db.session.scalars(
        select(Ticket).where(visible).order_by(Ticket.id.desc()).limit(20)
    ).all()
    return render_template(
        "overview.html",
        counts=counts,
        statuses=STATUSES,
        recent=recent,
        open_tasks=my_open_task_count(current_user),
    )


def init_pages(app) -> None:
    from app.forms.localize import form_widget_texts

    app.jinja_env.globals.update(
        nav_items=nav_items,
        role_name=role_name,
        status_name=status_name,
        form_widget_texts=form_widget_texts,
    )
