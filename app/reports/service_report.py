"""The service report (服务报告): a bilingual PDF of a closed work order (its fields, every
completed step with who did it and how long it took, times, parts and costs, photos, the
requester's acceptance and rating), stored as an attachment of kind ``service_report``.

Reports are never made inside an engine step (that would slow every archive): the job in
app.reports.jobs makes the missing ones, the download makes one on first use, and a rating
makes a fresh one. The newest report of a work order is the one served.
"""

from __future__ import annotations

import io
from collections import defaultdict, deque
from decimal import Decimal
from xml.sax.saxutils import escape

from flask_babel import lazy_gettext as _l
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from app import engine
from app.attachments.models import Attachment
from app.attachments.service import add_generated, attachments_of, blob_path
from app.engine.models import ProcessDefinition, ProcessEvent, ProcessInstance
from app.errors import Conflict, NotFound
from app.reports.pdf import (
    TITLE,
    both,
    fields_table,
    footer,
    grid,
    heading,
    hours_minutes,
    local_time,
    photo,
    photo_grid,
    text,
)
from app.tickets.models import STATUSES, Device, Satisfaction, Ticket
from app.tickets.progress import display_names
from app.timeutil import utcnow

REPORT_KIND = "service_report"
REPORT_ACTOR = "system"
MAX_PHOTOS = 12
# Process variables the report shows when the work order's process set them, by section.
WORK_KEYS = ("fault_cause", "work_done", "solution", "escalation_note", "review_comment")
# (Not parts_needed: the repair process clears it once the parts are issued, to route rework.)
PARTS_KEYS = ("parts_list", "parts_issued", "parts_note")
ACCEPTANCE_KEYS = ("acceptance_result", "acceptance_comment")
RESPONSE_EVENTS = ("task_claimed", "task_completed", "task_transferred")
WIDTHS = [50 * mm, None]  # item | content tables


# ---------------------------------------------------------------- finding and storing


def latest_report(*, db_session: Session, ticket_id: int) -> Attachment | None:
    """The newest service report of the work order (the one served), if any."""
    return db_session.scalar(
        select(Attachment)
        .where(Attachment.ticket_id == ticket_id, Attachment.kind == REPORT_KIND)
        .order_by(Attachment.id.desc())
        .limit(1)
    )


def _stored(report: Attachment | None) -> bool:
    return report is not None and blob_path(report.sha256).is_file()


def tickets_without_report(*, db_session: Session, limit: int = 50) -> list[int]:
    """Closed work orders that have no service report yet, longest closed first."""
    has_report = exists().where(Attachment.ticket_id == Ticket.id, Attachment.kind == REPORT_KIND)
    return list(
        db_session.scalars(
            select(Ticket.id)
            .where(Ticket.status == "closed", ~has_report)
            .order_by(Ticket.closed_at, Ticket.id)
            .limit(limit)
        )
    )


def _lock_closed(db_session: Session, ticket_id: int, *, skip_locked: bool) -> Ticket | None:
    """The closed ticket, its row locked (PostgreSQL) so that two makers never both make one;
    None when it is not closed or (``skip_locked``) another worker holds it."""
    return db_session.execute(
        select(Ticket)
        .where(Ticket.id == ticket_id, Ticket.status == "closed")
        .with_for_update(skip_locked=skip_locked)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def _store(db_session: Session, ticket: Ticket) -> Attachment:
    return add_generated(
        db_session=db_session,
        ticket_id=ticket.id,
        actor=REPORT_ACTOR,
        kind=REPORT_KIND,
        filename=f"服务报告-{ticket.number}.pdf",
        content_type="application/pdf",
        data=render_report(db_session=db_session, ticket=ticket),
    )


def make_missing_report(
    *, db_session: Session, ticket_id: int, skip_locked: bool = False
) -> Attachment | None:
    """Make the report of a closed work order that has none; None when it has one already,
    is not closed, or another worker is making it. The caller commits."""
    ticket = _lock_closed(db_session, ticket_id, skip_locked=skip_locked)
    if ticket is None or _stored(latest_report(db_session=db_session, ticket_id=ticket_id)):
        return None
    return _store(db_session, ticket)


def current_report(*, db_session: Session, ticket: Ticket) -> Attachment:
    """The report to serve: the newest, made now if there is none (the caller commits).
    404 while the work order is open: a report describes finished work."""
    if ticket.status != "closed":
        raise NotFound(
            f"工单 {ticket.number} 尚未归档，归档后才有服务报告",
            f"work order {ticket.number} is not archived yet; its service report comes after",
        )
    report = latest_report(db_session=db_session, ticket_id=ticket.id)
    if _stored(report):
        return report
    made = make_missing_report(db_session=db_session, ticket_id=ticket.id)
    return made or latest_report(db_session=db_session, ticket_id=ticket.id)


def refresh_report(*, db_session: Session, ticket: Ticket) -> Attachment:
    """Make the report again (after a rating, so that it shows the rating); the caller commits."""
    locked = _lock_closed(db_session, ticket.id, skip_locked=False)
    if locked is None:
        raise Conflict(
            f"工单 {ticket.number} 尚未归档，不能生成服务报告",
            f"work order {ticket.number} is not archived, so it has no service report yet",
        )
    return _store(db_session, locked)


# ---------------------------------------------------------------- what the report says


def _form_label(definition: ProcessDefinition | None, key: str) -> str:
    """The label the process's forms give a variable, as stored (bilingual)."""
    for schema in ((definition.forms if definition else None) or {}).values():
        for component in schema.get("components", []):
            if component.get("key") == key and component.get("label"):
                return component["label"]
    return key


def _form_value(definition: ProcessDefinition | None, key: str, value) -> str:
    if isinstance(value, bool):
        return both(_l("Yes")) if value else both(_l("No"))
    for schema in ((definition.forms if definition else None) or {}).values():
        for component in schema.get("components", []):
            if component.get("key") == key:
                for option in component.get("values") or []:
                    if option.get("value") == value:
                        return option.get("label") or str(value)
    return str(value)


def _process_rows(definition, data: dict, keys) -> list[list[str]]:
    return [
        [_form_label(definition, key), _form_value(definition, key, data[key])]
        for key in keys
        if data.get(key) not in (None, "")
    ]


def _money(value: Decimal | None) -> str:
    return f"¥ {value or Decimal('0'):,.2f}"


def _hours(start, end) -> str:
    return hours_minutes((end - start).total_seconds() if start and end else None)


def _work_order(db_session: Session, ticket: Ticket, definition, names: dict) -> list:
    device = (
        db_session.scalar(select(Device).where(Device.device_no == ticket.device_no))
        if ticket.device_no
        else None
    )
    status_zh, status_en = STATUSES.get(ticket.status, (ticket.status, ticket.status))
    requester = ticket.requester.username
    return [
        heading(_l("Work order")),
        fields_table(
            [
                (_l("Number"), ticket.number),
                (_l("Title"), ticket.title),
                (_l("Process"), definition.name if definition else ticket.process_key),
                (_l("Category"), _form_value(definition, "category", ticket.category)),
                (_l("Priority"), _form_value(definition, "priority", ticket.priority)),
                (_l("Region"), _form_value(definition, "region", ticket.region)),
                (_l("Device"), " ".join(filter(None, (ticket.device_no, device and device.name)))),
                (_l("Location"), ticket.location_address),
                (
                    _l("Contact"),
                    " ".join(filter(None, (ticket.contact_name, ticket.contact_phone))),
                ),
                (_l("Requester"), names.get(requester, requester)),
                (_l("Status"), f"{status_zh} / {status_en}"),
                (_l("Description"), ticket.description),
            ]
        ),
    ]


def _times(ticket: Ticket, events: list[ProcessEvent]) -> list:
    responses = [
        e.at
        for e in events
        if e.event_type in RESPONSE_EVENTS and e.actor and e.actor != ticket.requester.username
    ]
    return [
        heading(_l("Times")),
        fields_table(
            [
                (_l("Reported"), local_time(ticket.created_at)),
                (_l("First response"), local_time(min(responses) if responses else None)),
                (_l("Closed"), local_time(ticket.closed_at)),
                (_l("Total time (h:mm)"), _hours(ticket.created_at, ticket.closed_at)),
            ]
        ),
    ]


def _steps(events: list[ProcessEvent], names: dict[str, str]) -> list:
    """Every completed task: its name, who, when, and how long since it opened."""
    opened: dict[str, deque] = defaultdict(deque)
    rows = []
    for event in events:
        if event.event_type == "task_created":
            opened[event.element_id].append(event.at)
        elif event.event_type == "task_completed":
            start = opened[event.element_id].popleft() if opened[event.element_id] else None
            rows.append(
                [
                    event.element_name or event.element_id,
                    names.get(event.actor, event.actor or "—"),
                    local_time(event.at),
                    _hours(start, event.at),
                ]
            )
    return [
        heading(_l("Steps")),
        grid(
            [_l("Step"), _l("Done by"), _l("When"), _l("Time taken (h:mm)")],
            rows or [["—", "", "", ""]],
            [None, 36 * mm, 34 * mm, 26 * mm],
        ),
    ]


def _work_and_parts(ticket: Ticket, definition, data: dict) -> list:
    story = []
    work = _process_rows(definition, data, WORK_KEYS)
    if work:
        story += [heading(_l("Work done")), grid([_l("Item"), _l("Content")], work, WIDTHS)]
    costs = [
        [both(_l("Parts cost")), _money(ticket.parts_cost)],
        [both(_l("Labour cost")), _money(ticket.labour_cost)],
        [both(_l("Total cost")), _money(ticket.total_cost)],
    ]
    parts = _process_rows(definition, data, PARTS_KEYS)
    return [
        *story,
        heading(_l("Parts and costs")),
        grid([_l("Item"), _l("Content")], [*parts, *costs], WIDTHS),
    ]


def _photos(db_session: Session, ticket: Ticket) -> list:
    images = [
        a for a in attachments_of(db_session=db_session, ticket_id=ticket.id) if a.kind == "image"
    ]
    if not images:
        return []
    shown = [(photo(blob_path(a.sha256), a.filename), a.filename) for a in images[:MAX_PHOTOS]]
    story = [heading(_l("Photos")), photo_grid(shown)]
    if len(images) > MAX_PHOTOS:
        more = both(_l("More photos are attached to the work order"))
        story.append(text(f"{more}: {len(images) - MAX_PHOTOS}"))
    return story


def _acceptance(db_session: Session, ticket: Ticket, definition, data: dict) -> list:
    rows = _process_rows(definition, data, ACCEPTANCE_KEYS)
    satisfaction = db_session.get(Satisfaction, ticket.id)
    if satisfaction is not None:
        rows.append([both(_l("Satisfaction")), f"{satisfaction.rating} / 5"])
        if satisfaction.comment:
            rows.append([both(_l("Rating comment")), satisfaction.comment])
    return [
        heading(_l("Acceptance and rating")),
        grid([_l("Item"), _l("Content")], rows, WIDTHS)
        if rows
        else text(both(_l("The requester has not accepted or rated the work yet"))),
    ]


def render_report(*, db_session: Session, ticket: Ticket) -> bytes:
    """The PDF of a work order, as it stands now."""
    instance = (
        db_session.get(ProcessInstance, ticket.process_instance_id)
        if ticket.process_instance_id
        else None
    )
    definition = instance.definition if instance else None
    data = engine.instance_data(db_session=db_session, instance=instance) if instance else {}
    events = engine.history(db_session=db_session, instance_id=instance.id) if instance else []
    names = display_names(db_session, [e.actor for e in events] + [ticket.requester.username])
    title = both(_l("Service report"), " ")
    story = [
        Paragraph(escape(title), TITLE),
        text(f"{ticket.number}  {ticket.title}"),
        Spacer(1, 4 * mm),
        *_work_order(db_session, ticket, definition, names),
        *_times(ticket, events),
        *_steps(events, names),
        *_work_and_parts(ticket, definition, data),
        *_photos(db_session, ticket),
        *_acceptance(db_session, ticket, definition, data),
    ]
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=16 * mm,
        rightMargin=16 * mm,
        topMargin=16 * mm,
        bottomMargin=18 * mm,
        title=f"{title} {ticket.number}",
        author="Paidan 派单",
    )
    page = footer(ticket.number or "", utcnow())
    document.build(story, onFirstPage=page, onLaterPages=page)
    return buffer.getvalue()
