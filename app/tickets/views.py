"""Work-order pages: the list, one work order with its diagram, timeline, notes and files."""

from __future__ import annotations

import math
import re
from datetime import datetime

from flask import (
    Blueprint,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select

from app.api import paginate
from app.attachments.service import Upload, attachments_of
from app.attachments.views import file_response
from app.auth.access import login_required, may_work_on, roles_required, schema_for
from app.engine.models import HumanTask, ProcessDefinition, ProcessInstance
from app.errors import NotFound
from app.extensions import db
from app.i18n import current_language, pick
from app.reports.service_report import REPORT_KIND, current_report
from app.site.models import CheckIn
from app.sla.clock import ledger
from app.sla.sla_models import SlaClock
from app.tickets.api import FILTER_FIELDS
from app.tickets.contributions import (
    add_files,
    add_note,
    is_staff,
    may_contribute,
    visible_notes,
)
from app.tickets.models import PRIORITIES, REGIONS, STATUSES, Device, Satisfaction, Ticket
from app.tickets.progress import (
    diagram_markers,
    display_names,
    group_names,
    list_text,
    option_label,
    sla_clock,
    timeline,
)
from app.tickets.schemas import TICKET_VIEWS, TicketSchema
from app.tickets.service import (
    get_visible_ticket,
    visible_history,
    visible_open_tasks,
    visible_tickets_query,
)
from app.timeutil import utcnow

bp = Blueprint("ticket_pages", __name__)

# Requesters follow their own reports in the portal; every other role has the list.
LIST_ROLES = ("admin", "dispatcher", "handler", "reviewer", "finance")
PAGE_SIZE = 30
MAX_PAGE = 1_000_000
RELATED_LIMIT = 10
# A search text reaches SQL: control characters (NUL breaks PostgreSQL) are dropped.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _shown_fields(user) -> set[str]:
    """The ticket fields the role is shown, as the API answers it (TICKET_VIEWS)."""
    return set(schema_for(user, TicketSchema, TICKET_VIEWS).fields)


def _refuse_cost_view(user, ticket_id: int, what_zh: str, what_en: str) -> None:
    """Finance is shown the costs of a work order and nothing about what the work was: 404."""
    if "title" not in _shown_fields(user):
        raise NotFound(
            f"工单 {ticket_id} 的{what_zh}不存在", f"work order {ticket_id} has no {what_en}"
        )


@bp.get("/tickets")
@roles_required(*LIST_ROLES)
def ticket_list():
    """The work orders the signed-in person may see, newest first, filtered and paged."""
    # As in the API, a role filters only by fields it is shown (finance cannot search titles).
    shown = _shown_fields(current_user)
    filterable = {name for name in ("status", "priority", "q") if set(FILTER_FIELDS[name]) <= shown}
    status = request.args.get("status", "")
    priority = request.args.get("priority", "")
    text = _CONTROL.sub("", request.args.get("q", "")).strip()[:100]
    filters = {
        "status": status if status in STATUSES else "",
        "priority": priority if priority in PRIORITIES else "",
        "q": text,
    }
    filters = {name: value if name in filterable else "" for name, value in filters.items()}
    page = min(max(request.args.get("page", 1, type=int), 1), MAX_PAGE)
    query = visible_tickets_query(
        db_session=db.session, user=current_user, **{k: v or None for k, v in filters.items()}
    )
    result = paginate(db.session, query, page, PAGE_SIZE)
    shows_costs = "title" not in shown
    return render_template(
        "tickets/list.html",
        tickets=result["items"],
        situation={} if shows_costs else _situation(result["items"]),
        now=utcnow(),
        total=result["total"],
        page=page,
        pages=max(math.ceil(result["total"] / PAGE_SIZE), 1),
        filters=filters,
        filterable=filterable,
        statuses=STATUSES,
        priorities=PRIORITIES,
        shows_costs=shows_costs,
    )


def _situation(tickets: list[Ticket]) -> dict[int, dict]:
    """Per work order of a list page: who holds its open tasks (display names) and the
    nearest deadline of its running SLA clocks. Three queries for the whole page."""
    ids = [ticket.id for ticket in tickets]
    if not ids:
        return {}
    held = db.session.execute(
        select(HumanTask.ticket_id, HumanTask.assignee)
        .where(
            HumanTask.ticket_id.in_(ids),
            HumanTask.status == "open",
            HumanTask.assignee.is_not(None),
        )
        .order_by(HumanTask.created_at, HumanTask.id)
    ).all()
    names = display_names(db.session, [assignee for _ticket_id, assignee in held])
    due = dict(
        db.session.execute(
            select(SlaClock.ticket_id, func.min(SlaClock.deadline))
            .where(
                SlaClock.ticket_id.in_(ids),
                SlaClock.stopped_at.is_(None),
                SlaClock.deadline.is_not(None),
            )
            .group_by(SlaClock.ticket_id)
        ).all()
    )
    found = {ticket_id: {"holders": [], "due": due.get(ticket_id)} for ticket_id in ids}
    for ticket_id, assignee in held:
        name = names.get(assignee, assignee)
        if name not in found[ticket_id]["holders"]:
            found[ticket_id]["holders"].append(name)
    return found


def _definition(ticket: Ticket) -> ProcessDefinition | None:
    if ticket.process_instance_id is None:
        return None
    instance = db.session.get(ProcessInstance, ticket.process_instance_id)
    return instance.definition if instance else None


def _files(ticket: Ticket) -> list:
    """What people attached; service reports are offered by their own link."""
    return [
        a
        for a in attachments_of(db_session=db.session, ticket_id=ticket.id)
        if a.kind != REPORT_KIND
    ]


def _timeline(ticket: Ticket, definition: ProcessDefinition | None) -> dict:
    """The timeline and what it is made of, as the signed-in person may see it."""
    events = visible_history(db_session=db.session, user=current_user, ticket=ticket)
    files = _files(ticket)
    checkins = list(
        db.session.scalars(
            select(CheckIn).where(CheckIn.ticket_id == ticket.id).order_by(CheckIn.at)
        )
    )
    satisfaction = db.session.get(Satisfaction, ticket.id)
    entries = timeline(
        db_session=db.session,
        ticket=ticket,
        definition=definition,
        events=events,
        notes=visible_notes(db_session=db.session, user=current_user, ticket=ticket),
        files=files,
        checkins=checkins,
        satisfaction=satisfaction,
    )
    return {
        "entries": entries,
        "events": events,
        "files": files,
        "checkins": checkins,
        "satisfaction": satisfaction,
    }


def _region_name(definition: ProcessDefinition | None, region: str) -> str:
    named = option_label(definition, "region", region)
    if named:
        return named
    return REGIONS.get(region, region) if current_language() == "zh" else region.title()


@bp.get("/tickets/<int:ticket_id>")
@login_required
def ticket_page(ticket_id: int):
    """One work order: where it stands, what happened, and what the viewer may add."""
    user = current_user
    ticket = get_visible_ticket(db_session=db.session, user=user, ticket_id=ticket_id)
    shown = _shown_fields(user)
    if "title" not in shown:
        # Finance: the costs of the work order and nothing about who or what it was for,
        # as the API answers it.
        return render_template("tickets/costs.html", ticket=ticket)
    definition = _definition(ticket)
    requester_view = user.role == "requester"
    tasks = visible_open_tasks(db_session=db.session, user=user, ticket=ticket)
    parts = _timeline(ticket, definition)
    groups = group_names(db.session, [g for task in tasks for g in task.candidate_groups])
    related = []
    device = None
    if ticket.device_no:
        device = db.session.scalar(select(Device).where(Device.device_no == ticket.device_no))
        related = db.session.scalars(
            visible_tickets_query(db_session=db.session, user=user)
            .where(Ticket.device_no == ticket.device_no, Ticket.id != ticket.id)
            .limit(RELATED_LIMIT)
        ).all()
    return render_template(
        "tickets/detail.html",
        islands=["diagram"],
        ticket=ticket,
        definition=definition,
        process_name=pick(definition.name) if definition else ticket.process_key,
        category=option_label(definition, "category", ticket.category) or ticket.category,
        region=_region_name(definition, ticket.region),
        priority_label=option_label(definition, "priority", ticket.priority) or ticket.priority,
        device=device,
        tasks=[
            (
                task,
                may_work_on(user, task),
                list_text(groups.get(g, g) for g in task.candidate_groups),
            )
            for task in tasks
        ],
        holders=display_names(db.session, [task.assignee for task in tasks]),
        now=utcnow(),
        clock=sla_clock(
            db_session=db.session,
            ticket=ticket,
            definition=definition,
            tasks=tasks,
            with_timers=not requester_view,
        ),
        markers=diagram_markers(
            db_session=db.session,
            ticket=ticket,
            events=parts["events"],
            requester_view=requester_view,
        ),
        sla_ledger=[] if requester_view else _sla_ledger(ticket),
        related=related,
        shows_costs="parts_cost" in shown,
        shows_internal_note="internal_note" in shown,
        staff=is_staff(user),
        contributes=may_contribute(user),
        requester_view=requester_view,
        **parts,
    )


@bp.get("/tickets/<int:ticket_id>/diagram.xml")
@login_required
def diagram(ticket_id: int):
    """The BPMN of the definition version the work order's process runs on."""
    _refuse_cost_view(current_user, ticket_id, "流程图", "process diagram")
    ticket = get_visible_ticket(db_session=db.session, user=current_user, ticket_id=ticket_id)
    definition = _definition(ticket)
    if definition is None:
        raise NotFound(
            f"工单 {ticket.number} 没有流程图", f"work order {ticket.number} has no process diagram"
        )
    response = make_response(definition.bpmn_xml)
    response.mimetype = "application/xml"
    response.headers["X-Content-Type-Options"] = "nosniff"
    # Opened directly, a browser renders XML; elements in the XHTML namespace would run there.
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.cache_control.private = True
    response.cache_control.no_cache = True
    # A definition version never changes, so its content hash is a strong validator.
    response.set_etag(definition.content_hash)
    return response.make_conditional(request)


def _wants_fragment() -> bool:
    return bool(request.headers.get("HX-Request"))


@bp.post("/tickets/<int:ticket_id>/notes")
@login_required
def post_note(ticket_id: int):
    """Add a progress note; htmx gets the timeline back and a fresh form."""
    ticket = get_visible_ticket(db_session=db.session, user=current_user, ticket_id=ticket_id)
    add_note(
        db_session=db.session,
        user=current_user,
        ticket=ticket,
        body=request.form.get("body", ""),
        internal=request.form.get("internal") in {"1", "on", "true"},
    )
    db.session.commit()
    if _wants_fragment():
        return render_template(
            "tickets/_note_added.html",
            ticket=ticket,
            staff=is_staff(current_user),
            **_timeline(ticket, _definition(ticket)),
        )
    flash(_("The note was added."), "success")
    return redirect(url_for(".ticket_page", ticket_id=ticket.id, _anchor="timeline"), 303)


@bp.post("/tickets/<int:ticket_id>/attachments")
@login_required
def post_files(ticket_id: int):
    """Add files, all or none; htmx gets the file list back and the timeline."""
    ticket = get_visible_ticket(db_session=db.session, user=current_user, ticket_id=ticket_id)
    uploads = [
        Upload(f.filename, f.stream, f.mimetype)
        for f in request.files.getlist("files")
        if f.filename
    ]
    added = add_files(db_session=db.session, user=current_user, ticket=ticket, uploads=uploads)
    db.session.commit()
    if _wants_fragment():
        return render_template(
            "tickets/_files_added.html",
            ticket=ticket,
            contributes=True,
            **_timeline(ticket, _definition(ticket)),
        )
    flash(_("Files added: %(num)d", num=len(added)), "success")
    return redirect(url_for(".ticket_page", ticket_id=ticket.id, _anchor="files"), 303)


@bp.get("/tickets/<int:ticket_id>/report.pdf")
@login_required
def service_report(ticket_id: int):
    """The newest service report of an archived work order (made now if it has none yet)."""
    _refuse_cost_view(current_user, ticket_id, "服务报告", "service report")
    ticket = get_visible_ticket(db_session=db.session, user=current_user, ticket_id=ticket_id)
    report = current_report(db_session=db.session, ticket=ticket)
    db.session.commit()
    return file_response(report)


def _sla_ledger(ticket: Ticket) -> list[dict]:
    """The SLA ledger as the page shows it: the API's, with moments as datetimes."""

    def moment(value: str | None) -> datetime | None:
        return datetime.fromisoformat(value) if value else None

    clocks = ledger(db.session, ticket.id)
    for clock in clocks:
        for key in ("started_at", "deadline", "stopped_at"):
            clock[key] = moment(clock[key])
        for interval in clock["intervals"]:
            interval["starts_at"] = moment(interval["starts_at"])
            interval["ends_at"] = moment(interval["ends_at"])
    return clocks
