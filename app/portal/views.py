"""Requester portal: report a fault, my work orders, acceptance and rating."""

from __future__ import annotations

import json

from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from app.api import paginate, wants_page
from app.attachments.service import Upload, add_attachments
from app.auth.access import login_required, roles_required
from app.engine.models import ProcessDefinition
from app.errors import InvalidInput
from app.extensions import db
from app.forms.localize import localized_schema
from app.forms.validation import fields, validate
from app.i18n import current_language, pick
from app.portal import service
from app.reports.service_report import refresh_report
from app.site.service import position
from app.tickets.models import Device, Ticket
from app.tickets.service import create_ticket

bp = Blueprint("portal", __name__, url_prefix="/portal")

PAGE_SIZE = 20
ADDRESS_MAX = 300
# The shipped work-order types, named and explained in the page language. A process an admin
# deploys shows its own name ("中文 / English" names show the page language's side).
SHIPPED_TYPES = {
    "it_service": (
        _l("IT service request"),
        _l("Computers, accounts, network, printers or software"),
    ),
    "equipment_repair": (
        _l("Equipment repair"),
        _l("A device or facility is broken: air conditioning, power, machines"),
    ),
}


def type_label(definition: ProcessDefinition) -> tuple[str, str]:
    """The name of a work-order type and a one-line hint, in the page language."""
    name = definition.name or definition.key
    if pick(name) == name and definition.key in SHIPPED_TYPES:
        label, hint = SHIPPED_TYPES[definition.key]
        return str(label), str(hint)
    return pick(name), ""


def _me():
    # Relationships need the user object itself, not flask-login's proxy.
    return current_user._get_current_object()


@bp.get("")
@login_required
def my_reports():
    """我的工单: what I reported, newest first, with what waits for me on each."""
    page = min(max(request.args.get("page", 1, type=int), 1), 1_000_000)
    found = paginate(db.session, service.my_reports_query(user=current_user), page, PAGE_SIZE)
    reports = service.annotate_reports(
        db_session=db.session, user=current_user, tickets=found["items"]
    )
    return render_template(
        "portal/my_reports.html",
        reports=reports,
        page=page,
        has_more=page * PAGE_SIZE < found["total"],
        may_report=current_user.role in service.REPORTING_ROLES,
    )


@bp.get("/new")
@roles_required(*service.REPORTING_ROLES)
def choose_type():
    types = [
        (start.definition.key, *type_label(start.definition))
        for start in service.reportable_processes(db_session=db.session)
    ]
    return render_template("portal/choose_type.html", types=types)


@bp.get("/new/<process_key>")
@roles_required(*service.REPORTING_ROLES)
def new_report(process_key: str):
    """The start form of a work-order type; ``?device_no=`` (from a device's QR code) fills in
    the device, its region and its address."""
    start = service.get_start_form(db_session=db.session, process_key=process_key)
    keys = {component["key"] for component in fields(start.schema)}
    data: dict = {}
    device = None
    device_no = request.args.get("device_no", "").strip()[:60]
    if device_no and "device_no" in keys:
        data["device_no"] = device_no
        device = db.session.scalar(select(Device).where(Device.device_no == device_no))
        if device is not None and "region" in keys:
            data["region"] = device.region
    config = current_app.config
    return render_template(
        "portal/new_report.html",
        islands=["form", "site"],
        process_key=start.definition.key,
        label=type_label(start.definition)[0],
        schema=localized_schema(start.schema, current_language()),
        data=data,
        device=device,
        address=device.address if device is not None else "",
        address_max=ADDRESS_MAX,
        max_files=config["ATTACHMENTS_PER_REQUEST"],
        image_mb=config["ATTACHMENT_IMAGE_MAX_BYTES"] // (1024 * 1024),
        video_mb=config["ATTACHMENT_VIDEO_MAX_BYTES"] // (1024 * 1024),
    )


def _submitted_data() -> dict:
    try:
        data = json.loads(request.form.get("data") or "{}")
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise InvalidInput(
            "表单数据 data 必须是 JSON 对象", "the form data (field data) must be a JSON object"
        )
    return data


def _location() -> dict:
    lat, lng = position(request.form)
    address = request.form.get("address", "").strip()
    if len(address) > ADDRESS_MAX:
        raise InvalidInput(
            f"地址 address 最多 {ADDRESS_MAX} 个字（收到 {len(address)} 个）",
            f"the address may have at most {ADDRESS_MAX} characters ({len(address)} were sent)",
            errors={"address": [f"≤ {ADDRESS_MAX}"]},
        )
    return {"address": address, "lat": lat, "lng": lng}


@bp.post("/new/<process_key>")
@roles_required(*service.REPORTING_ROLES)
def submit_report(process_key: str):
    """Create the work order and store its photos in one transaction: a refused file leaves
    no work order behind, and a refused form stores no file."""
    start = service.get_start_form(db_session=db.session, process_key=process_key)
    schema = localized_schema(start.schema, current_language())
    values = validate(schema, _submitted_data())
    ticket = create_ticket(
        db_session=db.session,
        requester=_me(),
        process_key=start.definition.key,
        location=_location(),
        **service.ticket_arguments(values),
    )
    uploads = [
        Upload(f.filename, f.stream, f.mimetype)
        for f in request.files.getlist("files")
        if f.filename
    ]
    if uploads:
        add_attachments(
            db_session=db.session,
            ticket_id=ticket.id,
            actor=current_user.username,
            uploads=uploads,
        )
    db.session.commit()
    return jsonify(redirect=f"/tickets/{ticket.id}", ticket_id=ticket.id, number=ticket.number)


# ---------------------------------------------------------------- rating


@bp.app_template_global("portal_suggested_rating")
def suggested_rating(ticket: Ticket) -> int | None:
    """For portal/_rating.html: the score the requester already gave at acceptance."""
    return service.suggested_rating(db_session=db.session, ticket=ticket)


@bp.post("/tickets/<int:ticket_id>/rating")
@login_required
def rate(ticket_id: int):
    satisfaction = service.rate_ticket(
        db_session=db.session,
        user=_me(),
        ticket_id=ticket_id,
        rating=request.form.get("rating"),
        comment=request.form.get("comment", ""),
    )
    ticket = db.session.get(Ticket, ticket_id)
    # The service report shows the rating: make it anew in the same transaction.
    refresh_report(db_session=db.session, ticket=ticket)
    db.session.commit()
    if request.headers.get("HX-Request"):
        return render_template("portal/_rating_body.html", ticket=ticket, satisfaction=satisfaction)
    if wants_page():
        flash(_("Thank you for your rating"))
        return redirect(f"/tickets/{ticket_id}#rating")
    return jsonify(rating=satisfaction.rating, comment=satisfaction.comment)
