"""Business calendars as pure values: working hours per weekday in one time zone, Chinese
public holidays and adjusted workdays (调休), closures, and arithmetic in working minutes.

No Flask and no database here: `WorkCalendar` is built from plain values (or a calendar row
and its day rows), so the SLA clock, a job and a test use it the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from chinese_calendar import holidays as library_holidays
from chinese_calendar import workdays as library_workdays

from app.errors import PaidanError

DAY_KINDS = ("holiday", "workday", "closure")
# Official rows (no calendar) say which days the State Council moved; a closure is one calendar's.
OFFICIAL_KINDS = ("holiday", "workday")
WEEKDAYS_ZH = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
WEEKDAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")
# A calendar with hours on some weekday works at least once a week; this bound only stops a
# search through a calendar whose every day is closed.
SEARCH_LIMIT_DAYS = 3 * 366
MICROSECONDS_PER_MINUTE = 60_000_000


class MissingOfficialYear(PaidanError):
    """Official holidays of a year are unknown: the deadline cannot be computed honestly."""

    status = 422
    title = "Unprocessable Content"

    def __init__(self, calendar_code: str, year: int):
        super().__init__(
            f"工作日历 {calendar_code}：没有 {year} 年的法定节假日和调休数据，"
            f"请在工作日历管理中导入或录入 {year} 年的节假日和调休上班日",
            f"Calendar {calendar_code}: no official holidays or adjusted workdays are known for "
            f"{year}; import or enter the {year} holidays and adjusted workdays in the calendar admin",
            errors={"year": [str(year)]},
        )
        self.year = year


@lru_cache(maxsize=1)
def library_years() -> frozenset[int]:
    """The years chinese-calendar knows (2004–2026 in 1.11.0)."""
    known = {day.year for day in library_holidays} | {day.year for day in library_workdays}
    return frozenset(range(min(known), max(known) + 1))


def parse_hhmm(text: str) -> time | None:
    """ "09:30" -> 09:30; "24:00" -> None (the end of the day); raises ValueError otherwise."""
    if not isinstance(text, str) or not HHMM.match(text):
        raise ValueError(f"{text!r} is not a time HH:MM")
    if text == "24:00":
        return None
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _minutes(text: str) -> int:
    moment = parse_hhmm(text)
    return 24 * 60 if moment is None else moment.hour * 60 + moment.minute


@dataclass(frozen=True)
class Day:
    """One row of the day table: ``calendar_id`` None for the official table of all calendars."""

    date: date
    kind: str
    name: str = ""
    calendar_id: int | None = None


class WorkCalendar:
    """Working time of one calendar. Aware datetimes in, aware UTC out; days and hours are
    those of the calendar's time zone.

    A day's hours: none on a closure or an official holiday; on an adjusted workday (调休),
    that weekday's hours if it has any, else the hours of the first of Monday–Friday with
    hours; otherwise the weekday's hours. Official days come from chinese-calendar for the
    years it knows and from the official table for later years; a table row for a year the
    library knows corrects that date. A 24×7 calendar counts every minute.
    """

    def __init__(
        self,
        *,
        code: str,
        time_zone: str = "Asia/Shanghai",
        working_hours: dict | None = None,
        use_official_holidays: bool = True,
        is_24x7: bool = False,
        days: Iterable[Day] = (),
    ):
        self.code = code
        self.zone = ZoneInfo(time_zone)
        self.use_official_holidays = use_official_holidays
        self.is_24x7 = is_24x7
        self.hours: dict[int, tuple[tuple[int, int], ...]] = {
            int(weekday): tuple(
                sorted((_minutes(start), _minutes(end)) for start, end in intervals)
            )
            for weekday, intervals in (working_hours or {}).items()
        }
        self.closures: set[date] = set()
        self.official: dict[date, str] = {}
        self.table_years: set[int] = set()
        for day in days:
            if day.calendar_id is None:
                self.official[day.date] = day.kind
                if day.kind == "holiday":
                    self.table_years.add(day.date.year)
            elif day.kind == "closure":
                self.closures.add(day.date)
        weekdays = [self.hours.get(weekday, ()) for weekday in range(5)]
        self.adjusted_hours = next((hours for hours in weekdays if hours), ()) or next(
            (hours for hours in self.hours.values() if hours), ()
        )

    @classmethod
    def from_rows(cls, calendar, day_rows: Iterable) -> WorkCalendar:
        """From a `business_calendar` row and `calendar_day` rows (any objects with the
        same attributes): the official ones and those of this calendar."""
        return cls(
            code=calendar.code,
            time_zone=calendar.time_zone,
            working_hours=calendar.working_hours,
            use_official_holidays=calendar.use_official_holidays,
            is_24x7=calendar.is_24x7,
            days=[
                Day(row.date, row.kind, row.name or "", row.calendar_id)
                for row in day_rows
                if row.calendar_id in (None, calendar.id)
            ],
        )

    # ------------------------------------------------------------ days

    def official_kind(self, day: date) -> str | None:
        """ "holiday", "workday" (adjusted) or None for an ordinary day; raises
        `MissingOfficialYear` for a year neither the library nor the table knows."""
        if day in self.official:
            return self.official[day]
        if day.year in library_years():
            if day in library_workdays:
                return "workday"
            # A weekend inside a holiday counts too: a calendar working Saturdays rests then.
            return "holiday" if day in library_holidays else None
        if day.year in self.table_years:
            return None
        raise MissingOfficialYear(self.code, day.year)

    def hours_on(self, day: date) -> tuple[tuple[int, int], ...]:
        """The working intervals of a local date, in minutes after local midnight."""
        if self.is_24x7:
            return ((0, 24 * 60),)
        if day in self.closures:
            return ()
        ordinary = self.hours.get(day.weekday(), ())
        if not self.use_official_holidays:
            return ordinary
        kind = self.official_kind(day)
        if kind == "holiday":
            return ()
        if kind == "workday":
            return ordinary or self.adjusted_hours
        return ordinary

    def is_working_day(self, day: date) -> bool:
        return bool(self.hours_on(day))

    def _intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        """The working intervals of a local date as aware UTC datetimes."""
        midnight = datetime.combine(day, time(0), self.zone)
        result = []
        for start, end in self.hours_on(day):
            begins = _local(midnight, start, self.zone)
            ends = _local(midnight, end, self.zone)
            if ends > begins:
                result.append((begins, ends))
        return result

    def _local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    # ------------------------------------------------------------ arithmetic

    def add(self, start: datetime, minutes: float) -> datetime:
        """The first moment at which ``minutes`` working minutes have passed since ``start``."""
        start = _utc(start, "start")
        if minutes < 0:
            raise ValueError(f"minutes must not be negative, got {minutes}")
        left = timedelta(microseconds=round(minutes * MICROSECONDS_PER_MINUTE))
        if self.is_24x7 or not left:
            return start + left
        day = self._local_date(start)
        idle = 0
        while idle <= SEARCH_LIMIT_DAYS:
            intervals = self._intervals(day)
            idle = 0 if intervals else idle + 1
            for begins, ends in intervals:
                begins = max(begins, start)
                if ends <= begins:
                    continue
                if left <= ends - begins:
                    return begins + left
                left -= ends - begins
            day += timedelta(days=1)
        raise PaidanError(
            f"工作日历 {self.code}：{SEARCH_LIMIT_DAYS} 天内没有工作时间，请检查工作时段和停工日",
            f"Calendar {self.code}: no working time within {SEARCH_LIMIT_DAYS} days; "
            "check its working hours and closures",
            status=422,
        )

    def working_minutes(self, a: datetime, b: datetime) -> float:
        """Working minutes between ``a`` and ``b`` (negative when ``b`` is before ``a``)."""
        a, b = _utc(a, "a"), _utc(b, "b")
        if b < a:
            return -self.working_minutes(b, a)
        if self.is_24x7:
            return (b - a) / timedelta(minutes=1)
        total = timedelta(0)
        day, last = self._local_date(a), self._local_date(b)
        while day <= last:
            for begins, ends in self._intervals(day):
                overlap = min(ends, b) - max(begins, a)
                if overlap > timedelta(0):
                    total += overlap
            day += timedelta(days=1)
        return total / timedelta(minutes=1)


def _local(midnight: datetime, minutes: int, zone: ZoneInfo) -> datetime:
    """Local wall time ``minutes`` after midnight of that day, as UTC (24:00 is next midnight)."""
    if minutes == 24 * 60:
        following = midnight.date() + timedelta(days=1)
        return datetime.combine(following, time(0), zone).astimezone(UTC)
    wall = datetime.combine(midnight.date(), time(minutes // 60, minutes % 60), zone)
    return wall.astimezone(UTC)


def _utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got naive {moment!r}")
    return moment.astimezone(UTC)
