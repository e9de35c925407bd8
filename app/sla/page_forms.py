"""What the SLA admin pages send and show: form fields turned into the values the services take
(the services check them and name what is wrong), and hours, targets and recipients in words."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from flask_babel import gettext as _

from app.sla.policy_checks import NOTIFY_TARGETS
from app.tickets.progress import list_text

WEEKDAYS = range(7)
# Rows of escalation levels the policy form offers beyond those a policy has.
SPARE_LEVELS = 2
_DASH = re.compile(r"\s*[-–—~～]\s*")
_SEPARATOR = re.compile(r"[,，;；、\s]+")
# Task names may hold spaces: a list of them is split at commas and line ends only.
_LIST = re.compile(r"[,，;；、\r\n]+")


def weekday_name(weekday: int) -> str:
    return (
        _("Monday"),
        _("Tuesday"),
        _("Wednesday"),
        _("Thursday"),
        _("Friday"),
        _("Saturday"),
        _("Sunday"),
    )[weekday]


def kind_name(kind: str) -> str:
    return {
        "holiday": _("Public holiday"),
        "workday": _("Adjusted workday"),
        "closure": _("Closure"),
    }.get(kind, kind)


def target_name(target: str, names: dict[str, str]) -> str:
    """An escalation recipient in words: a role of the work order's people, or a person."""
    if target.startswith("user:"):
        username = target.removeprefix("user:")
        return names.get(username, username)
    return {
        "assignee": _("Assignee"),
        "group_lead": _("Group lead"),
        "manager": _("Dispatchers"),
    }.get(target, target)


def minutes_text(minutes: int) -> str:
    """Working minutes as the page reads them: "90 working minutes (1.5 h)"."""
    if minutes < 60:
        return _("%(minutes)d working minutes", minutes=minutes)
    hours = f"{minutes / 60:.1f}".removesuffix(".0")
    return _("%(minutes)d working minutes (%(hours)s h)", minutes=minutes, hours=hours)


# ---------------------------------------------------------------- working hours


def hours_text(intervals: list) -> str:
    """[["09:00", "12:00"], ["13:00", "18:00"]] -> "09:00-12:00, 13:00-18:00" (the form's way)."""
    return ", ".join("-".join(map(str, interval)) for interval in intervals)


def parse_hours(text: str) -> list[list[str]]:
    """The form's "09:00-12:00, 13:00-18:00" as intervals; a piece without a dash stays one
    item, so the service names the weekday and the interval that is wrong."""
    text = _DASH.sub("-", text.strip())
    return [piece.split("-", 1) for piece in _SEPARATOR.split(text) if piece]


def hours_from_form(form) -> dict[str, list]:
    return {
        str(weekday): parse_hours(form.get(f"hours-{weekday}", ""))
        for weekday in WEEKDAYS
        if form.get(f"hours-{weekday}", "").strip()
    }


def week_summary(working_hours: dict, is_24x7: bool) -> list[str]:
    """The week in a few lines: consecutive days with the same hours together."""
    if is_24x7:
        return [_("Every minute of every day")]
    lines, run = [], []
    for weekday in [*WEEKDAYS, None]:
        hours = working_hours.get(str(weekday)) if weekday is not None else None
        if run and (weekday is None or hours != working_hours.get(str(run[0]))):
            first, last = weekday_name(run[0]), weekday_name(run[-1])
            days = first if len(run) == 1 else _("%(first)s to %(last)s", first=first, last=last)
            lines.append(f"{days}: {hours_text(working_hours[str(run[0])])}")
            run = []
        if hours:
            run.append(weekday)
    return lines or [_("No working hours")]


# ---------------------------------------------------------------- calendars


def calendar_values(form, *, creating: bool) -> dict:
    values = {
        "name": form.get("name", ""),
        "time_zone": form.get("time_zone", "").strip(),
        "use_official_holidays": form.get("use_official_holidays") == "1",
        "is_24x7": form.get("is_24x7") == "1",
        "working_hours": hours_from_form(form),
    }
    if creating:
        values["code"] = form.get("code", "").strip()
    return values


# ---------------------------------------------------------------- policies


@dataclass
class LevelRow:
    """One escalation level as the form shows it."""

    percent: str = ""
    notify: list[str] = field(default_factory=list)
    people: str = ""


def level_rows(levels: list[dict]) -> list[LevelRow]:
    rows = [
        LevelRow(
            percent=str(level["percent"]),
            notify=[t for t in level["notify"] if t in NOTIFY_TARGETS],
            people=", ".join(
                t.removeprefix("user:") for t in level["notify"] if t.startswith("user:")
            ),
        )
        for level in levels
    ]
    return rows + [LevelRow() for _ in range(SPARE_LEVELS)]


def level_rows_from_form(form) -> list[LevelRow]:
    rows = []
    index = 0
    while f"level-{index}-percent" in form:
        rows.append(
            LevelRow(
                percent=form.get(f"level-{index}-percent", "").strip(),
                notify=form.getlist(f"level-{index}-notify"),
                people=form.get(f"level-{index}-people", "").strip(),
            )
        )
        index += 1
    return rows


def levels_from_rows(rows: list[LevelRow]) -> list[dict]:
    """Rows with a percent become levels; a row left empty is not one."""
    levels = []
    for row in rows:
        people = [f"user:{name}" for name in _SEPARATOR.split(row.people) if name]
        if not row.percent and not row.notify and not people:
            continue
        levels.append({"percent": _number(row.percent), "notify": [*row.notify, *people]})
    return levels


def policy_values(form) -> dict:
    """The policy form as service values; numbers that do not parse are passed on as typed,
    so the service's message quotes them."""
    return {
        "name": form.get("name", ""),
        "process_key": form.get("process_key", ""),
        "category": form.get("category", ""),
        "priority": form.get("priority", ""),
        "department_code": form.get("department_code", ""),
        "response_minutes": _number(form.get("response_minutes", "")),
        "resolution_minutes": _number(form.get("resolution_minutes", "")),
        "response_event": form.get("response_event", ""),
        "calendar_id": _number(form.get("calendar_id", "")),
        "pause_on": [i.strip() for i in _LIST.split(form.get("pause_on", "")) if i.strip()],
        "escalation_levels": levels_from_rows(level_rows_from_form(form)),
        "reminder_percent": _number(form.get("reminder_percent", "")),
        "active": form.get("active") == "1",
    }


def levels_text(levels: list[dict], names: dict[str, str]) -> list[str]:
    return [
        f"{level['percent']} %: {list_text(target_name(t, names) for t in level['notify'])}"
        for level in levels
    ]


def _number(text: str):
    text = text.strip()
    if re.fullmatch(r"-?\d{1,12}", text):
        return int(text)
    return text or None
