"""Business calendars: creating and changing them, their days (official holidays, adjusted
workdays, closures) by hand or imported from CSV, and loading a `WorkCalendar` to count on.

Functions take the session and never commit.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from datetime import date

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.audit.service import record
from app.errors import Conflict, InvalidInput, NotFound
from app.sla.calendar import DAY_KINDS, OFFICIAL_KINDS, WorkCalendar, library_years
from app.sla.calendar_checks import (
    FIELDS,
    KIND_LABELS,
    LABELS,
    MAX_NAME,
    as_date,
    day_problems,
    validated,
)
from app.sla.models import BusinessCalendar, CalendarDay
from app.timeutil import utcnow

STANDARD_HOURS = [["09:00", "12:00"], ["13:00", "18:00"]]
DEFAULT_CALENDARS = (
    {
        "code": "standard",
        "name": "标准工作时间（周一至周五 9:00–12:00、13:00–18:00）",
        "working_hours": {str(weekday): STANDARD_HOURS for weekday in range(5)},
        "use_official_holidays": True,
        "is_24x7": False,
    },
    {
        "code": "24x7",
        "name": "7×24 小时",
        "working_hours": {},
        "use_official_holidays": False,
        "is_24x7": True,
    },
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# ---------------------------------------------------------------- calendars


def list_calendars(*, db_session: Session) -> list[BusinessCalendar]:
    return list(db_session.scalars(select(BusinessCalendar).order_by(BusinessCalendar.code)))


def get_calendar(*, db_session: Session, calendar_id: int) -> BusinessCalendar:
    calendar = db_session.get(BusinessCalendar, calendar_id)
    if calendar is None:
        raise NotFound(f"没有 id 为 {calendar_id} 的工作日历", f"No calendar with id {calendar_id}")
    return calendar


def calendar_dict(calendar: BusinessCalendar) -> dict:
    return {"id": calendar.id, **{field: getattr(calendar, field) for field in FIELDS}}


def create_calendar(
    *, db_session: Session, values: dict, actor: str | None = None
) -> BusinessCalendar:
    """A new calendar; ``code`` and ``name`` are required, the rest defaults to Asia/Shanghai,
    official holidays on, not 24×7, and (for a 24×7 calendar only) no hours."""
    values = {
        "time_zone": "Asia/Shanghai",
        "use_official_holidays": True,
        "is_24x7": False,
        "working_hours": {},
        **values,
    }
    checked = validated(values, required=("code", "name"))
    _check_unique_code(db_session, checked["code"], None)
    calendar = BusinessCalendar(**checked)
    db_session.add(calendar)
    db_session.flush()
    _audit(db_session, "calendar.create", calendar.id, actor, after=calendar_dict(calendar))
    return calendar


def update_calendar(
    *, db_session: Session, calendar_id: int, values: dict, actor: str | None = None
) -> BusinessCalendar:
    """Change the fields given; the result is validated as a whole (hours against 24×7)."""
    calendar = get_calendar(db_session=db_session, calendar_id=calendar_id)
    before = calendar_dict(calendar)
    checked = validated({**before, **values}, required=("code", "name"), only=set(values))
    if "code" in checked:
        _check_unique_code(db_session, checked["code"], calendar.id)
    for field, value in checked.items():
        setattr(calendar, field, value)
    calendar.updated_at = utcnow()
    db_session.flush()
    _audit(db_session, "calendar.update", calendar.id, actor, before, calendar_dict(calendar))
    return calendar


def ensure_default_calendars(db_session: Session) -> dict[str, BusinessCalendar]:
    """The "standard" (Mon–Fri 09:00–12:00, 13:00–18:00, official holidays) and "24x7"
    calendars, created when missing; existing ones are left as admins changed them."""
    result = {}
    for values in DEFAULT_CALENDARS:
        calendar = db_session.scalar(
            select(BusinessCalendar).where(BusinessCalendar.code == values["code"])
        )
        result[values["code"]] = calendar or create_calendar(
            db_session=db_session, values=dict(values), actor="system"
        )
    return result


# ---------------------------------------------------------------- days


def list_days(
    *, db_session: Session, calendar_id: int | None = None, year: int | None = None
) -> list[CalendarDay]:
    """The official table (``calendar_id`` None) or one calendar's closures, by date."""
    query = select(CalendarDay).where(_scope(calendar_id)).order_by(CalendarDay.date)
    if year is not None:
        query = query.where(CalendarDay.date.between(date(year, 1, 1), date(year, 12, 31)))
    return list(db_session.scalars(query))


def add_day(
    *,
    db_session: Session,
    calendar_id: int | None,
    day: date | str,
    kind: str,
    name: str = "",
    actor: str | None = None,
    replace: bool = True,
) -> CalendarDay:
    """An official holiday or adjusted workday (``calendar_id`` None), or a closure of one
    calendar. A date already in that table is changed to the new kind and name, or, with
    ``replace`` false, refused (409 naming what is there)."""
    calendar = _calendar_for_days(db_session, calendar_id)
    problems = day_problems(day, kind, name, calendar)
    if problems:
        field, zh, en = problems[0]
        raise InvalidInput(
            f"{LABELS[field]}：{zh}", f"{field}: {en}", errors={f: [e] for f, _, e in problems}
        )
    if not replace:
        _check_free_date(db_session, calendar_id, as_date(day))
    (row,) = _store_days(db_session, calendar_id, [(as_date(day), kind, name.strip())])
    _audit(db_session, "calendar.day.add", calendar_id, actor, after=_day_dict(row))
    return row


def remove_day(*, db_session: Session, day_id: int, actor: str | None = None) -> None:
    row = db_session.get(CalendarDay, day_id)
    if row is None:
        raise NotFound(f"没有 id 为 {day_id} 的日历日期", f"No calendar day with id {day_id}")
    _audit(db_session, "calendar.day.remove", row.calendar_id, actor, before=_day_dict(row))
    db_session.delete(row)
    db_session.flush()


def import_days(
    *,
    db_session: Session,
    text: str,
    calendar_id: int | None = None,
    actor: str | None = None,
    official_too: bool = False,
) -> list[CalendarDay]:
    """Days from CSV text, one "date,kind,name" a line (e.g. "2027-02-06,holiday,春节"); an
    optional header line, blank lines and lines starting with # are skipped. Every bad line
    is named with its number, and nothing is stored if any line is bad. Dates already in the
    table take the imported kind and name. With ``official_too`` (a calendar that follows the
    official holidays), holiday and workday lines go to the official table, closures to the
    calendar."""
    calendar = _calendar_for_days(db_session, calendar_id)
    parsed: list[tuple[date, str, str]] = []
    bad: dict[int, tuple[str, str]] = {}
    seen: dict[date, int] = {}
    for number, line in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        cells = [cell.strip() for cell in next(csv.reader([line]), [])]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if number == 1 and [cell.lower() for cell in cells[:2]] == ["date", "kind"]:
            continue
        if len(cells) not in (2, 3):
            bad[number] = (
                f"应为「日期,类型,名称」三列，实际 {len(cells)} 列",
                f"expected 3 columns date,kind,name, got {len(cells)}",
            )
            continue
        day, kind, name = (*cells, "")[:3]
        problems = line_problems(day, kind, name, calendar, official_too)
        if problems:
            bad[number] = (
                "；".join(f"{LABELS[field]}{zh}" for field, zh, _ in problems),
                "; ".join(f"{field} {en}" for field, _, en in problems),
            )
            continue
        moment = as_date(day)
        if moment in seen:
            bad[number] = (
                f"日期 {day} 与第 {seen[moment]} 行重复",
                f"date {day} repeats line {seen[moment]}",
            )
            continue
        seen[moment] = number
        parsed.append((moment, kind, name))
    if bad:
        raise InvalidInput(
            "导入失败，未保存任何日期："
            + "；".join(f"第 {n} 行：{zh}" for n, (zh, _) in bad.items()),
            "Import failed, nothing was stored: "
            + "; ".join(f"line {n}: {en}" for n, (_, en) in bad.items()),
            errors={"lines": {str(n): en for n, (_, en) in bad.items()}},
        )
    if not parsed:
        raise InvalidInput("导入的文件中没有日期", "The imported text holds no dates")
    official = [line for line in parsed if official_too and line[1] in OFFICIAL_KINDS]
    own = [line for line in parsed if not (official_too and line[1] in OFFICIAL_KINDS)]
    rows = (_store_days(db_session, None, official) if official else []) + (
        _store_days(db_session, calendar_id, own) if own else []
    )
    _audit(
        db_session,
        "calendar.day.import",
        calendar_id,
        actor,
        after={"count": len(rows), "first": str(parsed[0][0]), "last": str(parsed[-1][0])},
    )
    return rows


def uncovered_years(db_session: Session, years: Iterable[int]) -> list[int]:
    """The years among ``years`` whose official holidays are unknown: chinese-calendar does not
    know them and the official table has no holiday in them. Deadlines on a calendar with
    official holidays cannot be computed there; the admin page flags them."""
    wanted = sorted(set(years) - library_years())
    if not wanted:
        return []
    known = {
        day.year
        for day in db_session.scalars(
            select(CalendarDay.date).where(
                CalendarDay.calendar_id.is_(None),
                CalendarDay.kind == "holiday",
                CalendarDay.date.between(date(wanted[0], 1, 1), date(wanted[-1], 12, 31)),
            )
        )
    }
    return [year for year in wanted if year not in known]


# ---------------------------------------------------------------- loading


def load_calendar(db_session: Session, calendar_id: int) -> WorkCalendar:
    """The `WorkCalendar` of a calendar: its hours, the official table and its closures."""
    calendar = get_calendar(db_session=db_session, calendar_id=calendar_id)
    days = db_session.scalars(
        select(CalendarDay).where(
            or_(CalendarDay.calendar_id.is_(None), CalendarDay.calendar_id == calendar.id)
        )
    )
    return WorkCalendar.from_rows(calendar, days)


# ---------------------------------------------------------------- checking


def _check_unique_code(db_session: Session, code: str, own_id: int | None) -> None:
    taken = db_session.scalar(select(BusinessCalendar.id).where(BusinessCalendar.code == code))
    if taken is not None and taken != own_id:
        raise Conflict(
            f"代码：已有代码为「{code}」的工作日历",
            f"code: a calendar with code {code!r} already exists",
            errors={"code": ["already taken"]},
        )


def _calendar_for_days(db_session: Session, calendar_id: int | None) -> BusinessCalendar | None:
    if calendar_id is None:
        return None
    calendar = get_calendar(db_session=db_session, calendar_id=calendar_id)
    if calendar.is_24x7:
        raise InvalidInput(
            f"工作日历 {calendar.code} 为 7×24 小时，不设停工日",
            f"Calendar {calendar.code} is 24×7 and has no closures",
        )
    return calendar


def line_problems(day, kind, name, calendar, official_too: bool) -> list[tuple[str, str, str]]:
    """`day_problems` of one day; with ``official_too`` all three kinds are taken (holidays
    and adjusted workdays for the official table, closures for the calendar)."""
    if not official_too:
        problems = day_problems(day, kind, name, calendar)
    else:
        problems = day_problems(day, kind, name, None if kind in OFFICIAL_KINDS else calendar)
        if kind not in DAY_KINDS:
            known_zh = "、".join(f"{k}（{KIND_LABELS[k]}）" for k in DAY_KINDS)
            problems = [p for p in problems if p[0] != "kind"] + [
                (
                    "kind",
                    f"「{kind}」无效，应为 {known_zh} 之一",
                    f"{kind!r} must be one of {', '.join(DAY_KINDS)}",
                )
            ]
    if isinstance(name, str) and len(name) <= MAX_NAME and _CONTROL.search(name):
        problems.append(("name", "不能包含控制字符", "must not contain control characters"))
    return problems


def _check_free_date(db_session: Session, calendar_id: int | None, day: date) -> None:
    taken = db_session.scalar(
        select(CalendarDay).where(_scope(calendar_id), CalendarDay.date == day)
    )
    if taken is not None:
        where_zh = "法定节假日表中" if calendar_id is None else "该工作日历中"
        where_en = "the official table" if calendar_id is None else "this calendar"
        label = f"「{taken.name}」" if taken.name else ""
        raise Conflict(
            f"日期：{day} 在{where_zh}已是{KIND_LABELS[taken.kind]}{label}，不能重复添加；"
            "如需修改，请先删除该日期",
            f"date: {day} is already a {taken.kind} in {where_en}"
            + (f" ({taken.name})" if taken.name else "")
            + "; remove it first to change it",
            errors={"date": [f"{day} is already a {taken.kind}"]},
        )


def _scope(calendar_id: int | None):
    if calendar_id is None:
        return CalendarDay.calendar_id.is_(None)
    return CalendarDay.calendar_id == calendar_id


def _store_days(
    db_session: Session, calendar_id: int | None, days: list[tuple[date, str, str]]
) -> list[CalendarDay]:
    existing = {
        row.date: row
        for row in db_session.scalars(
            select(CalendarDay).where(
                _scope(calendar_id), CalendarDay.date.in_([day for day, _, _ in days])
            )
        )
    }
    rows = []
    for day, kind, name in days:
        row = existing.get(day)
        if row is None:
            row = CalendarDay(calendar_id=calendar_id, date=day)
            db_session.add(row)
        row.kind, row.name = kind, name
        rows.append(row)
    db_session.flush()
    return rows


def _day_dict(row: CalendarDay) -> dict:
    return {"id": row.id, "date": str(row.date), "kind": row.kind, "name": row.name}


def _audit(db_session, action, calendar_id, actor, before=None, after=None) -> None:
    record(
        db_session=db_session,
        action=action,
        object_type="business_calendar",
        object_id=calendar_id,
        actor=actor,
        before=before,
        after=after,
    )
