"""At the site: device QR codes, check-in, photos, voice notes and spare parts from the phone."""

from __future__ import annotations

import segno
from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import or_, select

from app.api import paginate, wants_page
from app.attachments.service import Upload, add_attachments, attachments_of
from app.auth.access import login_required, roles_required
from app.errors import InvalidInput, NotFound
from app.extensions import db
from app.i18n import local_time
from app.portal.service import REPORTING_ROLES, get_start_form
from app.site import service
from app.site.service import SITE_ROLES
from app.tickets.models import Device

bp = Blueprint("site", __name__)

# The work-order type a fault on a device is reported with.
DEVICE_PROCESS = "equipment_repair"
PAGE_SIZE = 50


def _me():
    # Services compare and store the user object itself, not flask-login's proxy.
    return current_user._get_current_object()


@bp.app_template_global("site_distance")
def distance_text(meters: float) -> str:
    if meters < 1000:
        return _("%(meters)s m", meters=round(meters))
    return _("%(km)s km", km=round(meters / 1000, 1))


@bp.app_template_global("site_people")
def people(checkins) -> dict[int, str]:
    """For site/_ticket_site.html: display names of the people who checked in."""
    return service.display_names(
        db_session=db.session, user_ids={checkin.user_id for checkin in checkins}
    )


# ---------------------------------------------------------------- devices and QR codes


@bp.get("/devices")
@roles_required(*SITE_ROLES)
def devices():
    q = request.args.get("q", "").strip()[:100]
    page = min(max(request.args.get("page", 1, type=int), 1), 1_000_000)
    query = select(Device).order_by(Device.device_no)
    if q:
        query = query.where(
            or_(
                Device.device_no.icontains(q, autoescape=True),
                Device.name.icontains(q, autoescape=True),
                Device.address.icontains(q, autoescape=True),
            )
        )
    found = paginate(db.session, query, page, PAGE_SIZE)
    return render_template(
        "site/devices.html",
        devices=found["items"],
        q=q,
        page=page,
        has_more=page * PAGE_SIZE < found["total"],
    )


@bp.get("/devices/<device_no>/qr")
@roles_required(*SITE_ROLES)
def device_qr(device_no: str):
    """A label to print and stick on the device: its QR code opens the site page."""
    device = service.get_device(db_session=db.session, device_no=device_no)
    # ?scan=1 tells the page it was opened at the device, not followed from a link elsewhere.
    url = url_for("site.site_page", device_no=device.device_no, scan=1, _external=True)
    svg = segno.make(url, error="m").svg_inline(scale=4, border=2, omitsize=True, svgclass="qr")
    return render_template(
        "site/qr.html", islands=["site"], device=device, url=url, svg=Markup(svg)
    )


# ---------------------------------------------------------------- the site page


@bp.get("/site/<device_no>")
@login_required
def site_page(device_no: str):
    """What a QR code on the device opens: the device, the work orders there the user may see,
    and for the people working on them check-in, photos, voice notes and spare parts."""
    device = service.get_device(db_session=db.session, device_no=device_no)
    rows, closed = service.site_tickets(db_session=db.session, user=current_user, device=device)
    works_here = service.works_at_site(current_user)
    first = rows[0] if rows else None
    if (
        works_here
        and request.args.get("scan")
        and first is not None
        and first.checkin is None
        and (first.my_task or len(rows) == 1)
    ):
        # Scanned at the device: check in for the job the engineer came for. Opened from a
        # link (at a desk), or for other work orders, the button checks in.
        auto_checkin = first.ticket.id
    else:
        auto_checkin = None
    details = {}
    if works_here:
        details = service.site_records(
            db_session=db.session, ticket_ids=[row.ticket.id for row in rows]
        )
    return render_template(
        "site/site.html",
        islands=["site"],
        device=device,
        rows=rows,
        closed=closed,
        works_here=works_here,
        auto_checkin=auto_checkin,
        details=details,
        show_titles=current_user.role != "finance",
        may_report=current_user.role in REPORTING_ROLES and _device_reports_possible(),
    )


def _device_reports_possible() -> bool:
    try:
        get_start_form(db_session=db.session, process_key=DEVICE_PROCESS)
    except NotFound:
        return False
    return True


def _ticket_id(body: dict) -> int:
    value = body.get("ticket_id")
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(
            "签到需要工单编号 ticket_id（整数）",
            "a check-in needs the work order's ticket_id (a whole number)",
            errors={"ticket_id": ["int"]},
        )
    return value


@bp.post("/site/<device_no>/checkin")
@roles_required(*SITE_ROLES)
def checkin(device_no: str):
    """扫码签到: JSON {ticket_id, lat, lng, accuracy}; the position may be missing."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidInput("签到请求必须是 JSON 对象", "the check-in request must be a JSON object")
    lat, lng = service.position(body)
    row = service.check_in(
        db_session=db.session,
        user=_me(),
        device_no=device_no,
        ticket_id=_ticket_id(body),
        lat=lat,
        lng=lng,
        accuracy_m=service.coordinate(body.get("accuracy"), "accuracy", 0, 1_000_000),
    )
    db.session.commit()
    time = local_time(row.at, "HH:mm")
    return jsonify(
        id=row.id,
        at=row.at.isoformat(),
        time=time,
        label=_("Checked in %(time)s", time=time),
        distance_m=row.distance_m,
        distance=None if row.distance_m is None else distance_text(row.distance_m),
    )


def _files_fragment(device_no: str, ticket_id: int):
    return render_template(
        "site/_files.html",
        device_no=device_no,
        ticket_id=ticket_id,
        attachments=attachments_of(db_session=db.session, ticket_id=ticket_id),
    )


@bp.get("/site/<device_no>/tickets/<int:ticket_id>/files")
@roles_required(*SITE_ROLES)
def files(device_no: str, ticket_id: int):
    service.site_ticket(
        db_session=db.session, user=current_user, device_no=device_no, ticket_id=ticket_id
    )
    return _files_fragment(device_no, ticket_id)


@bp.post("/site/<device_no>/tickets/<int:ticket_id>/files")
@roles_required(*SITE_ROLES)
def add_files(device_no: str, ticket_id: int):
    """Photos, short videos and voice notes from the site, kept with the user's open task."""
    ticket = service.site_ticket(
        db_session=db.session, user=current_user, device_no=device_no, ticket_id=ticket_id
    )
    uploads = [
        Upload(f.filename, f.stream, f.mimetype)
        for f in request.files.getlist("files")
        if f.filename
    ]
    if not uploads:
        raise InvalidInput(
            "请选择要上传的照片、视频或语音",
            "choose the photos, videos or voice notes to upload",
            errors={"files": ["required"]},
        )
    task = service.my_open_task(db_session=db.session, user=current_user, ticket=ticket)
    added = add_attachments(
        db_session=db.session,
        ticket_id=ticket.id,
        actor=current_user.username,
        uploads=uploads,
        task_id=task.id if task else None,
    )
    db.session.commit()
    message = _("Sent: %(names)s", names=", ".join(a.filename for a in added))
    if request.headers.get("HX-Request"):
        return _files_fragment(device_no, ticket.id)
    if wants_page():
        flash(message)
        return redirect(url_for("site.site_page", device_no=device_no))
    return jsonify(
        message=message,
        attachments=[{"id": a.id, "filename": a.filename, "kind": a.kind} for a in added],
    )


@bp.post("/site/<device_no>/tickets/<int:ticket_id>/parts")
@roles_required(*SITE_ROLES)
def request_parts(device_no: str, ticket_id: int):
    """备件申领 from the site: part, quantity and a note."""
    note = service.request_spare_parts(
        db_session=db.session,
        user=_me(),
        device_no=device_no,
        ticket_id=ticket_id,
        part=request.form.get("part"),
        quantity=request.form.get("quantity"),
        note=request.form.get("note", ""),
    )
    db.session.commit()
    if request.headers.get("HX-Request"):
        return render_template(
            "site/_parts.html",
            parts=service.spare_parts_requests(db_session=db.session, ticket_id=ticket_id),
        )
    if wants_page():
        flash(_("Spare parts requested"))
        return redirect(url_for("site.site_page", device_no=device_no))
    return jsonify(note_id=note.id, body=note.body)
