"""One calendar as its admin sees it: the days that shape it (its closures and the official
table it follows), adding, removing and importing them from its page or API, and the years it
is used for that have no official holiday data.

Functions take the session and never commit.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from chinese_calendar import get_holiday_detail
from chinese_calendar.constants import Holiday
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from app.errors import InvalidInput, NotFound
from app.sla import calendars_service
from app.sla.calendar import OFFICIAL_KINDS, library_years
from app.sla.calendar_checks import LABELS
from app.sla.calendars_service import (
    add_day,
    get_calendar,
    import_days,
    line_problems,
    remove_day,
    uncovered_years,
)
from app.sla.clock import follow_calendars
from app.sla.models import BusinessCalendar, CalendarDay
from app.sla.sla_models import SlaClock
from app.timeutil import utcnow

# A calendar is in use for this year and for the year this many days ahead: deadlines computed
# now reach that far, and the State Council publishes the next year's holidays in October or
# November, so from October the next year is flagged until its days are entered.
LOOKAHEAD_DAYS = 90


def follows_official(calendar: BusinessCalendar) -> bool:
    """Whether official holidays and adjusted workdays shape this calendar."""
    return calendar.use_official_holidays and not calendar.is_24x7


def calendar_days_query(calendar: BusinessCalendar, year: int | None = None) -> Select:
    """The stored days that shape a calendar, by date: its closures and, when it follows the
    official holidays, the official table (shared by every such calendar)."""
    scope = CalendarDay.calendar_id == calendar.id
    if follows_official(calendar):
        scope = or_(scope, CalendarDay.calendar_id.is_(None))
    query = select(CalendarDay).where(scope).order_by(CalendarDay.date, CalendarDay.id)
    if year is not None:
        query = query.where(CalendarDay.date.between(date(year, 1, 1), date(year, 12, 31)))
    return query


def add_calendar_day(
    *,
    db_session: Session,
    calendar_id: int,
    day: date | str,
    kind: str,
    name: str = "",
    actor: str | None = None,
) -> CalendarDay:
    """A day for a calendar: a holiday or adjusted workday goes to the official table (it
    applies to every calendar that follows the official holidays), a closure to this calendar.
    A date already there is refused (409): remove it first to change it. Running SLA clocks
    on the calendars it shapes are computed again (`follow_days`)."""
    calendar = _calendar_taking_days(db_session, calendar_id)
    problems = line_problems(day, kind, name, calendar, follows_official(calendar))
    if problems:
        raise InvalidInput(
            "；".join(f"{LABELS[field]}：{zh}" for field, zh, _ in problems),
            "; ".join(f"{field}: {en}" for field, _, en in problems),
            errors={field: [en] for field, _, en in problems},
        )
    official = kind in OFFICIAL_KINDS and follows_official(calendar)
    row = add_day(
        db_session=db_session,
        calendar_id=None if official else calendar.id,
        day=day,
        kind=kind,
        name=name,
        actor=actor,
        replace=False,
    )
    follow_days(db_session, [row])
    return row


def remove_calendar_day(
    *, db_session: Session, calendar_id: int, day_id: int, actor: str | None = None
) -> None:
    """Remove one of the days that shape the calendar (an official row removed here is gone
    for every calendar); any other day is not found."""
    calendar = get_calendar(db_session=db_session, calendar_id=calendar_id)
    row = db_session.get(CalendarDay, day_id)
    ours = row is not None and (
        row.calendar_id == calendar.id or (row.calendar_id is None and follows_official(calendar))
    )
    if not ours:
        raise NotFound(
            f"工作日历 {calendar.code} 没有 id 为 {day_id} 的日期",
            f"Calendar {calendar.code} has no day with id {day_id}",
        )
    remove_day(db_session=db_session, day_id=day_id, actor=actor)
    follow_days(db_session, [row])


def import_calendar_days(
    *, db_session: Session, calendar_id: int, text: str, actor: str | None = None
) -> list[CalendarDay]:
    """CSV lines for a calendar: holidays and adjusted workdays to the official table (when it
    follows them), closures to the calendar; all or nothing (see `import_days`). Running SLA
    clocks on the calendars they shape are computed again (`follow_days`)."""
    calendar = _calendar_taking_days(db_session, calendar_id)
    rows = import_days(
        db_session=db_session,
        text=text,
        calendar_id=calendar.id,
        actor=actor,
        official_too=follows_official(calendar),
    )
    follow_days(db_session, rows)
    return rows


def follow_days(db_session: Session, rows: list[CalendarDay]) -> int:
    """After days were added or removed: the deadlines of running SLA clocks on the calendars
    they shape (an official row: every calendar following the official table; a closure: its
    calendar) that end on or after the first of them are computed again, and their timers and
    task due dates move at commit. A year entered makes its unknown deadlines known. Returns how
    many deadlines moved."""
    if not rows:
        return 0
    ids = {row.calendar_id for row in rows if row.calendar_id is not None}
    if any(row.calendar_id is None for row in rows):
        ids.update(
            calendar.id
            for calendar in db_session.scalars(select(BusinessCalendar))
            if follows_official(calendar)
        )
    # The day before, at midnight UTC: the first day's start in any time zone.
    first = min(row.date for row in rows) - timedelta(days=1)
    return follow_calendars(db_session, sorted(ids), since=datetime.combine(first, time(), UTC))


def update_calendar_and_clocks(
    *, db_session: Session, calendar_id: int, values: dict, actor: str | None = None
) -> BusinessCalendar:
    """calendars_service.update_calendar, then every running SLA clock on the calendar computed
    again on its new hours, time zone or holidays (their timers move at commit)."""
    calendar = calendars_service.update_calendar(
        db_session=db_session, calendar_id=calendar_id, values=values, actor=actor
    )
    follow_calendars(db_session, [calendar.id])
    return calendar


def years_in_use(db_session: Session, calendar: BusinessCalendar, today: date) -> list[int]:
    """This year, the year `LOOKAHEAD_DAYS` ahead, and every year a running SLA clock counted
    on the calendar spans (from its start to its deadline, or to today while paused)."""
    years = {today.year, (today + timedelta(days=LOOKAHEAD_DAYS)).year}
    first, last = db_session.execute(
        select(func.min(SlaClock.started_at), func.max(SlaClock.deadline)).where(
            SlaClock.calendar_id == calendar.id, SlaClock.stopped_at.is_(None)
        )
    ).one()
    if first is not None:
        zone = ZoneInfo(calendar.time_zone)
        end = max(last.astimezone(zone).date(), today) if last is not None else today
        years.update(range(first.astimezone(zone).year, end.year + 1))
    return sorted(years)


def calendar_uncovered_years(
    db_session: Session, calendar: BusinessCalendar, today: date | None = None
) -> list[int]:
    """The years the calendar is used for (`years_in_use`) whose official holidays are
    unknown. Deadlines there cannot be computed (never treated as all workdays); a calendar
    that ignores official holidays, or is 24×7, has none."""
    if not follows_official(calendar):
        return []
    if today is None:
        today = utcnow().astimezone(ZoneInfo(calendar.time_zone)).date()
    return uncovered_years(db_session, years_in_use(db_session, calendar, today))


def library_days(year: int) -> list[tuple[date, str, str, str]]:
    """(date, kind, Chinese name, English name) of the official holidays and adjusted
    workdays chinese-calendar knows for ``year``; empty for a year it does not know."""
    if year not in library_years():
        return []
    chinese = {holiday.value: holiday.chinese for holiday in Holiday}
    found = []
    day = date(year, 1, 1)
    while day.year == year:
        on_holiday, name = get_holiday_detail(day)
        if name:
            kind = "holiday" if on_holiday else "workday"
            found.append((day, kind, chinese.get(name, name), name))
        day += timedelta(days=1)
    return found


def _calendar_taking_days(db_session: Session, calendar_id: int) -> BusinessCalendar:
    calendar = get_calendar(db_session=db_session, calendar_id=calendar_id)
    if calendar.is_24x7:
        raise InvalidInput(
            f"工作日历 {calendar.code} 为 7×24 小时，节假日、调休和停工日对它都不适用",
            f"Calendar {calendar.code} is 24×7: holidays, adjusted workdays and closures do "
            "not apply to it",
        )
    return calendar
