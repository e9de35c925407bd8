"""What the SLA admin pages show: the options a policy is matched on (deployed processes, their
categories and priorities, departments, calendars), the policies in words, and one year of a
calendar's days. Reads only; the views decide who sees it."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from sqlalchemy import func, select

from app.auth.models import Department
from app.engine.models import ProcessDefinition
from app.extensions import db
from app.i18n import pick
from app.sla import calendar_admin, calendars_service, policies
from app.sla.calendar import DAY_KINDS, OFFICIAL_KINDS
from app.sla.models import BusinessCalendar, CalendarDay
from app.sla.page_forms import WEEKDAYS, hours_text, level_rows, levels_text, week_summary
from app.sla.sla_models import SlaPolicy
from app.tickets.models import PRIORITIES
from app.tickets.progress import display_names, list_text, option_label
from app.timeutil import utcnow

POLICY_FORM_FIELDS = (
    "name",
    "process_key",
    "category",
    "priority",
    "department_code",
    "response_minutes",
    "resolution_minutes",
    "response_event",
    "calendar_id",
    "reminder_percent",
    "active",
)


def latest_processes() -> dict[str, ProcessDefinition]:
    """The latest version of every deployed process, by key."""
    latest = (
        select(ProcessDefinition.key, func.max(ProcessDefinition.version).label("version"))
        .group_by(ProcessDefinition.key)
        .subquery()
    )
    rows = db.session.scalars(
        select(ProcessDefinition).join(
            latest,
            (latest.c.key == ProcessDefinition.key)
            & (latest.c.version == ProcessDefinition.version),
        )
    )
    return {definition.key: definition for definition in rows}


def choices() -> dict:
    """The options of the policy form and the names the list shows."""
    processes = latest_processes()
    categories: dict[str, str] = {}
    for definition in processes.values():
        for schema in (definition.forms or {}).values():
            for component in schema.get("components", []):
                if component.get("key") == "category":
                    for option in component.get("values") or []:
                        categories.setdefault(option["value"], pick(option.get("label")))
    priorities = {
        value: next((option_label(d, "priority", value) for d in processes.values()), None) or value
        for value in PRIORITIES
    }
    return {
        "processes": {key: pick(d.name) for key, d in sorted(processes.items())},
        "categories": categories,
        "priorities": priorities,
        "departments": dict(
            db.session.execute(
                select(Department.code, Department.name).order_by(Department.code)
            ).all()
        ),
        "calendars": {c.id: c for c in calendars_service.list_calendars(db_session=db.session)},
        "events": {
            "first_action": _("First action by staff (claim, transfer or completion)"),
            "checkin": _("Check-in at the site"),
        },
    }


def policy_rows(choices: dict) -> list[dict]:
    found = policies.list_policies(db_session=db.session)
    people = {
        t.removeprefix("user:")
        for p in found
        for level in p.escalation_levels
        for t in level["notify"]
        if t.startswith("user:")
    }
    names = display_names(db.session, people)

    def shown(mapping: dict, value):
        return mapping.get(value, value) if value else None

    def fits(policy: SlaPolicy) -> str:
        parts = [
            text % {"value": shown(mapping, value)}
            for text, mapping, value in (
                (_("type %(value)s"), choices["processes"], policy.process_key),
                (_("category %(value)s"), choices["categories"], policy.category),
                (_("priority %(value)s"), choices["priorities"], policy.priority),
                (_("department %(value)s"), choices["departments"], policy.department_code),
            )
            if value
        ]
        return list_text(parts) if parts else _("every work order")

    return [
        {
            "policy": policy,
            "fits": fits(policy),
            "calendar": choices["calendars"].get(policy.calendar_id),
            "levels": levels_text(policy.escalation_levels, names),
        }
        for policy in found
    ]


def uncovered_of_used_calendars(calendars: dict) -> dict[int, list[int]]:
    used = set(db.session.scalars(select(SlaPolicy.calendar_id).distinct()))
    found = {}
    for calendar_id in sorted(used):
        years = calendar_admin.calendar_uncovered_years(db.session, calendars[calendar_id])
        if years:
            found[calendar_id] = years
    return found


def days_context(calendar: BusinessCalendar, year: int) -> dict:
    uncovered = calendar_admin.calendar_uncovered_years(db.session, calendar)
    days = list(db.session.scalars(calendar_admin.calendar_days_query(calendar, year)))
    stored_years = {
        day.year
        for day in db.session.scalars(
            calendar_admin.calendar_days_query(calendar).with_only_columns(CalendarDay.date)
        )
    }
    today = this_year(calendar)
    follows = calendar_admin.follows_official(calendar)
    return {
        "calendar": calendar,
        "uncovered": uncovered,
        "year": year,
        "years": sorted(stored_years | set(uncovered) | {today, today + 1, year}),
        "days": days,
        "built_in": calendar_admin.library_days(year) if follows else [],
        "kinds": DAY_KINDS if follows else ("closure",),
        "official_kinds": OFFICIAL_KINDS,
        "follows_official": follows,
    }


def policy_form_values(policy: SlaPolicy | None) -> dict:
    """The policy form filled from a policy, or with the defaults of a new one."""
    source = policy or SlaPolicy(
        escalation_levels=policies.DEFAULT_ESCALATION_LEVELS,
        reminder_percent=75,
        response_event="first_action",
        active=True,
        pause_on=[],
    )
    form = {name: getattr(source, name, None) for name in POLICY_FORM_FIELDS}
    form["pause_on"] = ", ".join(source.pause_on or [])
    form["levels"] = level_rows(source.escalation_levels or [])
    return form


def calendar_rows() -> list[dict]:
    """Every calendar with its week in words and the years it lacks holiday data for."""
    return [
        {
            "calendar": calendar,
            "week": week_summary(calendar.working_hours, calendar.is_24x7),
            "uncovered": calendar_admin.calendar_uncovered_years(db.session, calendar),
        }
        for calendar in calendars_service.list_calendars(db_session=db.session)
    ]


def calendar_form(calendar: BusinessCalendar | None) -> dict:
    """The calendar form filled from a calendar, or for a new one: the standard week."""
    if calendar is None:
        return {
            "time_zone": "Asia/Shanghai",
            "use_official_holidays": True,
            "hours": {str(day): hours_text(calendars_service.STANDARD_HOURS) for day in range(5)},
        }
    return {
        "name": calendar.name,
        "time_zone": calendar.time_zone,
        "use_official_holidays": calendar.use_official_holidays,
        "is_24x7": calendar.is_24x7,
        "hours": {
            str(day): hours_text(calendar.working_hours.get(str(day), [])) for day in WEEKDAYS
        },
    }


def this_year(calendar: BusinessCalendar) -> int:
    """The year it is where the calendar's hours are counted."""
    return utcnow().astimezone(ZoneInfo(calendar.time_zone)).year
