"""SLA admin pages: the policies in match order (edit, reorder, "which one applies?"), the
business calendars, and one calendar's week, days and CSV import, with a warning on every year
in use that has no holiday data.

Admins change; dispatchers read. Every change goes through the same services as the API
(app.sla.calendars_service, calendar_admin, policies), which check the input and name what is
wrong; these views shape pages and turn form fields into values."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.auth.access import roles_required
from app.engine.models import is_held
from app.errors import NotFound, PaidanError
from app.extensions import db
from app.i18n import error_text
from app.sla import calendar_admin, calendars_service, page_data, policies
from app.sla.api import MAX_ID, read_csv_upload
from app.sla.models import BusinessCalendar, CalendarDay
from app.sla.page_forms import (
    WEEKDAYS,
    calendar_values,
    kind_name,
    level_rows_from_form,
    minutes_text,
    policy_values,
    target_name,
    weekday_name,
)
from app.sla.sla_models import RESPONSE_EVENTS, SlaPolicy

bp = Blueprint("sla_pages", __name__, url_prefix="/sla")

READERS = ("admin", "dispatcher")


@bp.app_template_test("sla_held")
def sla_held(value) -> bool:
    """`{% if task.due_at is sla_held %}`: a due time held by its SLA clock (``clock.NEVER``,
    the clock is paused), which pages show as "已暂停 / Paused" instead of a date in 9999."""
    return is_held(value)


def sla_label() -> str:
    """The pages' name in the main navigation (admins and dispatchers)."""
    return _("SLA settings")


def _can_edit() -> bool:
    return current_user.role == "admin"


def _fragment() -> bool:
    return bool(request.headers.get("HX-Request"))


def _calendar(calendar_id: int) -> BusinessCalendar:
    if calendar_id > MAX_ID:
        raise NotFound(f"没有 id 为 {calendar_id} 的工作日历", f"No calendar with id {calendar_id}")
    return calendars_service.get_calendar(db_session=db.session, calendar_id=calendar_id)


def _policy(policy_id: int) -> SlaPolicy:
    if policy_id > MAX_ID:
        raise NotFound(f"SLA 策略 {policy_id} 不存在", f"SLA policy {policy_id} not found")
    return policies.get_policy(db_session=db.session, policy_id=policy_id)


def _template_globals() -> dict:
    return {
        "can_edit": _can_edit(),
        "kind_name": kind_name,
        "weekday_name": weekday_name,
        "minutes_text": minutes_text,
        "target_name": target_name,
    }


# ---------------------------------------------------------------- policies


@bp.get("")
@roles_required(*READERS)
def policies_page():
    """Policies in match order, and "which policy would a work order like this get?"."""
    choices = page_data.choices()
    asked = {name: request.args.get(name, "") for name in ("process_key", "category", "priority")}
    asked["department"] = request.args.get("department", "")
    trial = None
    if any(asked.values()):
        facts = policies.facts_for(
            db.session,
            **{k: v for k, v in asked.items() if k != "department"},
            department_code=asked["department"],
        )
        trial = {"policy": policies.first_match(db.session, facts)}
    return render_template(
        "sla/policies.html",
        rows=page_data.policy_rows(choices),
        choices=choices,
        asked=asked,
        trial=trial,
        uncovered=page_data.uncovered_of_used_calendars(choices["calendars"]),
        **_template_globals(),
    )


@bp.post("/policies/<int:policy_id>/move")
@roles_required("admin")
def move_policy(policy_id: int):
    """One place up or down in the match order."""
    _policy(policy_id)
    order = [p.id for p in policies.list_policies(db_session=db.session)]
    index = order.index(policy_id)
    other = index - 1 if request.form.get("direction") == "up" else index + 1
    if 0 <= other < len(order):
        order[index], order[other] = order[other], order[index]
        policies.reorder_policies(
            db_session=db.session, policy_ids=order, actor=current_user.username
        )
        db.session.commit()
    if _fragment():
        choices = page_data.choices()
        return render_template(
            "sla/_policy_rows.html", rows=page_data.policy_rows(choices), **_template_globals()
        )
    return redirect(url_for("sla_pages.policies_page"), 303)


def _policy_form(policy: SlaPolicy | None, form: dict | None = None, error=None, status=200):
    choices = page_data.choices()
    if form is None:
        form = page_data.policy_form_values(policy)
    return (
        render_template(
            "sla/policy.html",
            policy=policy,
            form=form,
            choices=choices,
            error=error,
            targets=("assignee", "group_lead", "manager"),
            events=RESPONSE_EVENTS,
            **_template_globals(),
        ),
        status,
    )


def _typed_policy_form() -> dict:
    """What the admin typed, to show again beside the problem."""
    form = {name: request.form.get(name, "") for name in request.form}
    form["active"] = request.form.get("active") == "1"
    form["levels"] = level_rows_from_form(request.form)
    return form


@bp.get("/policies/new")
@roles_required("admin")
def new_policy():
    return _policy_form(None)


@bp.post("/policies/new")
@roles_required("admin")
def create_policy():
    try:
        policy = policies.create_policy(
            db_session=db.session, values=policy_values(request.form), actor=current_user.username
        )
    except PaidanError as error:
        db.session.rollback()
        return _policy_form(None, _typed_policy_form(), error_text(error), error.status)
    db.session.commit()
    flash(_("SLA policy %(name)s saved.", name=policy.name), "success")
    return redirect(url_for("sla_pages.policies_page"), 303)


@bp.get("/policies/<int:policy_id>")
@roles_required(*READERS)
def policy_page(policy_id: int):
    return _policy_form(_policy(policy_id))


@bp.post("/policies/<int:policy_id>")
@roles_required("admin")
def update_policy(policy_id: int):
    policy = _policy(policy_id)
    try:
        policies.update_policy(
            db_session=db.session,
            policy_id=policy.id,
            values=policy_values(request.form),
            actor=current_user.username,
        )
    except PaidanError as error:
        db.session.rollback()
        policy = _policy(policy_id)
        return _policy_form(policy, _typed_policy_form(), error_text(error), error.status)
    db.session.commit()
    flash(_("SLA policy %(name)s saved.", name=policy.name), "success")
    return redirect(url_for("sla_pages.policies_page"), 303)


@bp.post("/policies/<int:policy_id>/delete")
@roles_required("admin")
def delete_policy(policy_id: int):
    policy = _policy(policy_id)
    name = policy.name
    try:
        policies.delete_policy(
            db_session=db.session, policy_id=policy.id, actor=current_user.username
        )
    except PaidanError as error:
        db.session.rollback()
        return _policy_form(_policy(policy_id), None, error_text(error), error.status)
    db.session.commit()
    flash(_("SLA policy %(name)s deleted.", name=name), "success")
    return redirect(url_for("sla_pages.policies_page"), 303)


# ---------------------------------------------------------------- calendars


@bp.get("/calendars")
@roles_required(*READERS)
def calendars_page():
    return _calendars_page()


def _calendars_page(form: dict | None = None, error=None, status=200):
    rows = page_data.calendar_rows()
    codes = {row["calendar"].code for row in rows}
    form = form or page_data.calendar_form(None)
    return (
        render_template(
            "sla/calendars.html",
            rows=rows,
            defaults_missing=any(
                values["code"] not in codes for values in calendars_service.DEFAULT_CALENDARS
            ),
            form=form,
            error=error,
            weekdays=WEEKDAYS,
            **_template_globals(),
        ),
        status,
    )


def _typed_calendar_form() -> dict:
    return {
        **{name: request.form.get(name, "") for name in ("code", "name", "time_zone")},
        "use_official_holidays": request.form.get("use_official_holidays") == "1",
        "is_24x7": request.form.get("is_24x7") == "1",
        "hours": {str(day): request.form.get(f"hours-{day}", "") for day in WEEKDAYS},
    }


@bp.post("/calendars")
@roles_required("admin")
def create_calendar():
    try:
        calendar = calendars_service.create_calendar(
            db_session=db.session,
            values=calendar_values(request.form, creating=True),
            actor=current_user.username,
        )
    except PaidanError as error:
        db.session.rollback()
        return _calendars_page(_typed_calendar_form(), error_text(error), error.status)
    db.session.commit()
    flash(_("Calendar %(name)s saved.", name=calendar.name), "success")
    return redirect(url_for("sla_pages.calendar_page", calendar_id=calendar.id), 303)


@bp.post("/calendars/defaults")
@roles_required("admin")
def add_default_calendars():
    """The standard (Mon–Fri 9–12, 13–18, official holidays) and 24×7 calendars, if missing."""
    calendars_service.ensure_default_calendars(db.session)
    db.session.commit()
    return redirect(url_for("sla_pages.calendars_page"), 303)


def _selected_year(calendar: BusinessCalendar, uncovered: list[int]) -> int:
    asked = request.args.get("year", type=int)
    if asked is not None and 1900 <= asked <= 2200:
        return asked
    return uncovered[0] if uncovered else page_data.this_year(calendar)


def _calendar_page(calendar, form=None, error=None, status=200, year=None):
    if year is None:
        uncovered = calendar_admin.calendar_uncovered_years(db.session, calendar)
        year = _selected_year(calendar, uncovered)
    context = page_data.days_context(calendar, year)
    form = form or page_data.calendar_form(calendar)
    return (
        render_template(
            "sla/calendar.html",
            form=form,
            error=error,
            weekdays=WEEKDAYS,
            **context,
            **_template_globals(),
        ),
        status,
    )


@bp.get("/calendars/<int:calendar_id>")
@roles_required(*READERS)
def calendar_page(calendar_id: int):
    return _calendar_page(_calendar(calendar_id))


@bp.post("/calendars/<int:calendar_id>")
@roles_required("admin")
def update_calendar(calendar_id: int):
    calendar = _calendar(calendar_id)
    try:
        calendar_admin.update_calendar_and_clocks(
            db_session=db.session,
            calendar_id=calendar.id,
            values=calendar_values(request.form, creating=False),
            actor=current_user.username,
        )
    except PaidanError as error:
        db.session.rollback()
        form = _typed_calendar_form()
        return _calendar_page(_calendar(calendar_id), form, error_text(error), error.status)
    db.session.commit()
    flash(_("Calendar %(name)s saved.", name=calendar.name), "success")
    return redirect(url_for("sla_pages.calendar_page", calendar_id=calendar_id), 303)


def _days_answer(calendar_id: int, year: int, error=None, status=200):
    """htmx: the days panel (and the warning, out of band); otherwise back to the page."""
    calendar = _calendar(calendar_id)
    if _fragment():
        context = page_data.days_context(calendar, year)
        return render_template(
            "sla/_days.html", error=error, oob=True, **context, **_template_globals()
        ), status
    if error:
        return _calendar_page(calendar, error=error, status=status, year=year)
    return redirect(url_for("sla_pages.calendar_page", calendar_id=calendar_id, year=year), 303)


@bp.post("/calendars/<int:calendar_id>/days")
@roles_required("admin")
def add_day(calendar_id: int):
    calendar = _calendar(calendar_id)
    day = request.form.get("date", "").strip()
    year = _year_of(day, calendar)
    try:
        calendar_admin.add_calendar_day(
            db_session=db.session,
            calendar_id=calendar_id,
            day=day,
            kind=request.form.get("kind", ""),
            name=request.form.get("name", ""),
            actor=current_user.username,
        )
    except PaidanError as error:
        db.session.rollback()
        return _days_answer(calendar_id, year, error_text(error), error.status)
    db.session.commit()
    return _days_answer(calendar_id, year)


@bp.post("/calendars/<int:calendar_id>/days/<int:day_id>/delete")
@roles_required("admin")
def remove_day(calendar_id: int, day_id: int):
    calendar = _calendar(calendar_id)
    row = db.session.get(CalendarDay, day_id) if day_id <= MAX_ID else None
    year = row.date.year if row is not None else page_data.this_year(calendar)
    calendar_admin.remove_calendar_day(
        db_session=db.session, calendar_id=calendar_id, day_id=day_id, actor=current_user.username
    )
    db.session.commit()
    return _days_answer(calendar_id, year)


@bp.post("/calendars/<int:calendar_id>/days/import")
@roles_required("admin")
def import_days(calendar_id: int):
    calendar = _calendar(calendar_id)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _calendar_page(calendar, error=_("Choose a CSV file first."), status=400)
    try:
        text = read_csv_upload(upload)
        days = calendar_admin.import_calendar_days(
            db_session=db.session, calendar_id=calendar.id, text=text, actor=current_user.username
        )
    except PaidanError as error:
        db.session.rollback()
        return _calendar_page(_calendar(calendar_id), error=error_text(error), status=error.status)
    year = min(day.date.year for day in days)
    db.session.commit()
    flash(_("%(count)d days imported.", count=len(days)), "success")
    return redirect(url_for("sla_pages.calendar_page", calendar_id=calendar_id, year=year), 303)


def _year_of(text: str, calendar: BusinessCalendar) -> int:
    """The year of a typed date, to show its days after the change."""
    head = text[:4]
    if head.isdigit() and 1900 <= int(head) <= 2200:
        return int(head)
    return page_data.this_year(calendar)
