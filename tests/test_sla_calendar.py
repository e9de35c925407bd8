"""Business calendars: working hours over the 2026 Mid-Autumn and National Day holidays and
their adjusted workdays, 24×7, a year without official data, importing it, CSV errors, time
zones, and working_minutes as the inverse of add.

The 2026 arrangement, as chinese-calendar 1.11.0 has it (State Council notice of 2025):
Mid-Autumn Fri 25 – Sun 27 September; National Day Thu 1 – Wed 7 October; adjusted
workdays Sunday 20 September and Saturday 10 October.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest

from app.errors import Conflict, InvalidInput
from app.sla.calendar import MissingOfficialYear, WorkCalendar
from app.sla.calendars_service import (
    add_day,
    create_calendar,
    ensure_default_calendars,
    import_days,
    list_days,
    load_calendar,
    remove_day,
    uncovered_years,
    update_calendar,
)
from tests.conftest import SHANGHAI

EIGHT_HOURS = 8 * 60
# Test data for 2027 (the real arrangement is published late in 2026): New Year, Spring
# Festival from Saturday 6 February, and an adjusted working Saturday.
CSV_2027 = """date,kind,name
2027-01-01,holiday,元旦
2027-02-06,holiday,春节
2027-02-07,holiday,春节
2027-02-08,holiday,春节
2027-02-09,holiday,春节
2027-02-10,holiday,春节
2027-02-11,holiday,春节
2027-02-12,holiday,春节
2027-02-20,workday,春节调休上班
"""


def shanghai(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


@pytest.fixture
def standard(db_session) -> WorkCalendar:
    calendars = ensure_default_calendars(db_session)
    return load_calendar(db_session, calendars["standard"].id)


@pytest.fixture
def round_the_clock(db_session) -> WorkCalendar:
    calendars = ensure_default_calendars(db_session)
    return load_calendar(db_session, calendars["24x7"].id)


def test_the_2026_arrangement_is_the_one_the_tests_count_on():
    holidays = [date(2026, 9, day) for day in (25, 26, 27)] + [
        date(2026, 10, day) for day in range(1, 8)
    ]
    assert all(chinese_calendar.is_holiday(day) for day in holidays)
    assert chinese_calendar.is_workday(date(2026, 9, 20))  # a Sunday
    assert chinese_calendar.is_workday(date(2026, 10, 10))  # a Saturday
    assert chinese_calendar.is_workday(date(2026, 10, 8))


def test_eight_hours_from_friday_25_september_1600_skip_the_mid_autumn_holiday(standard):
    # That Friday is itself the first day of Mid-Autumn: nothing counts before Monday 09:00,
    # and Monday's 3 + 5 working hours make the eight.
    start = shanghai(2026, 9, 25, 16, 0)
    assert not standard.is_working_day(start.date())
    due = standard.add(start, EIGHT_HOURS)
    assert due == shanghai(2026, 9, 28, 18, 0)
    assert due.tzinfo is UTC and due == datetime(2026, 9, 28, 10, 0, tzinfo=UTC)


def test_eight_hours_from_the_eve_of_national_day_fall_due_on_8_october_at_1600(standard):
    # Wednesday 30 September 16:00–18:00 counts 2 h; 1–7 October rest; Thursday 8 October
    # 09:00–12:00 and 13:00–16:00 make the other 6 h.
    start = shanghai(2026, 9, 30, 16, 0)
    due = standard.add(start, EIGHT_HOURS)
    assert due == shanghai(2026, 10, 8, 16, 0)
    assert [standard.is_working_day(date(2026, 10, day)) for day in range(1, 9)] == [False] * 7 + [
        True
    ]
    assert standard.working_minutes(start, due) == EIGHT_HOURS


def test_adjusted_weekend_workdays_count_with_the_standard_hours(standard):
    saturday = date(2026, 10, 10)
    assert standard.is_working_day(saturday)
    assert not standard.is_working_day(date(2026, 10, 11))
    # Friday 16:00–18:00, then Saturday 09:00–12:00 and 13:00–16:00.
    assert standard.add(shanghai(2026, 10, 9, 16, 0), EIGHT_HOURS) == shanghai(2026, 10, 10, 16, 0)
    # Sunday 20 September works; Saturday 19 September does not.
    assert standard.add(shanghai(2026, 9, 18, 17, 0), 120) == shanghai(2026, 9, 20, 10, 0)
    assert standard.working_minutes(shanghai(2026, 9, 19, 0, 0), shanghai(2026, 9, 21, 0, 0)) == (
        EIGHT_HOURS
    )


def test_a_24x7_calendar_counts_every_minute_through_holidays_and_unknown_years(
    round_the_clock,
):
    start = shanghai(2026, 9, 30, 16, 0)
    assert round_the_clock.add(start, EIGHT_HOURS) == shanghai(2026, 10, 1, 0, 0)
    national_day = (shanghai(2026, 10, 1, 0, 0), shanghai(2026, 10, 8, 0, 0))
    assert round_the_clock.working_minutes(*national_day) == 7 * 24 * 60
    assert round_the_clock.is_working_day(date(2026, 10, 3))
    assert round_the_clock.add(shanghai(2027, 2, 6, 12, 0), 90) == shanghai(2027, 2, 6, 13, 30)


def test_2027_without_official_rows_raises_a_clear_error_and_is_flagged(db_session, standard):
    assert uncovered_years(db_session, [2025, 2026, 2027, 2028]) == [2027, 2028]
    with pytest.raises(MissingOfficialYear) as raised:
        standard.add(shanghai(2026, 12, 31, 16, 0), EIGHT_HOURS)
    assert raised.value.year == 2027
    assert "2027 年" in raised.value.zh and "standard" in raised.value.zh
    assert "for 2027" in raised.value.en and "import or enter" in raised.value.en
    with pytest.raises(MissingOfficialYear):
        standard.is_working_day(date(2027, 3, 1))
    with pytest.raises(MissingOfficialYear):
        standard.working_minutes(shanghai(2026, 12, 31, 9, 0), shanghai(2027, 1, 4, 9, 0))


def test_after_importing_2027_the_calendar_counts_through_new_year(db_session):
    calendars = ensure_default_calendars(db_session)
    rows = import_days(db_session=db_session, text=CSV_2027, actor="admin")
    assert len(rows) == 9
    assert uncovered_years(db_session, [2026, 2027]) == []
    standard = load_calendar(db_session, calendars["standard"].id)
    # Thursday 31 December 16:00–18:00, New Year's Day and the weekend rest, then Monday
    # 4 January 09:00–12:00 and 13:00–16:00.
    assert standard.add(shanghai(2026, 12, 31, 16, 0), EIGHT_HOURS) == shanghai(2027, 1, 4, 16, 0)
    assert not standard.is_working_day(date(2027, 2, 8))  # a Monday of the Spring Festival
    assert standard.is_working_day(date(2027, 2, 20))  # the adjusted Saturday
    assert standard.is_working_day(date(2027, 3, 1))  # an ordinary Monday
    assert not standard.is_working_day(date(2027, 3, 6))  # an ordinary Saturday
    days = list_days(db_session=db_session, year=2027)
    assert [(str(d.date), d.kind) for d in days][:2] == [
        ("2027-01-01", "holiday"),
        ("2027-02-06", "holiday"),
    ]


def test_an_official_row_corrects_a_year_the_library_knows(db_session):
    calendars = ensure_default_calendars(db_session)
    add_day(
        db_session=db_session, calendar_id=None, day=date(2026, 12, 31), kind="holiday", name="补休"
    )
    standard = load_calendar(db_session, calendars["standard"].id)
    assert not standard.is_working_day(date(2026, 12, 31))
    assert standard.is_working_day(date(2026, 12, 30)), (
        "the rest of 2026 still comes from the library"
    )
    assert uncovered_years(db_session, [2026]) == []


def test_reimporting_a_date_changes_it_instead_of_doubling_it(db_session):
    import_days(db_session=db_session, text=CSV_2027)
    import_days(db_session=db_session, text="2027-02-20,holiday,改为放假\n")
    days = {str(d.date): d for d in list_days(db_session=db_session, year=2027)}
    assert len(days) == 9
    assert (days["2027-02-20"].kind, days["2027-02-20"].name) == ("holiday", "改为放假")


def test_csv_import_errors_name_every_bad_line_and_store_nothing(db_session):
    text = "\n".join(
        [
            "date,kind,name",
            "2027-01-01,holiday,元旦",
            "2027-13-01,holiday,不存在的月份",
            "2027-02-06,vacation,春节",
            "2027-01-01,holiday,又是元旦",
            "",
            "2027-02-20",
            "2027-02-21,closure,停工",
        ]
    )
    with pytest.raises(InvalidInput) as raised:
        import_days(db_session=db_session, text=text)
    error = raised.value
    assert set(error.errors["lines"]) == {"3", "4", "5", "7", "8"}
    for number in (3, 4, 5, 7, 8):
        assert f"line {number}:" in error.en and f"第 {number} 行" in error.zh
    assert "2027-13-01" in error.en and "'vacation'" in error.en
    assert "repeats line 2" in error.en
    assert "nothing was stored" in error.en and "未保存任何日期" in error.zh
    assert list_days(db_session=db_session, year=2027) == []
    assert uncovered_years(db_session, [2027]) == [2027]


def test_closures_belong_to_one_calendar(db_session):
    calendars = ensure_default_calendars(db_session)
    branch = create_calendar(
        db_session=db_session,
        values={"code": "branch", "name": "分部", "working_hours": {"0": [["09:00", "17:00"]]}},
    )
    day = add_day(
        db_session=db_session,
        calendar_id=branch.id,
        day="2026-11-30",
        kind="closure",
        name="搬迁",
    )
    assert not load_calendar(db_session, branch.id).is_working_day(date(2026, 11, 30))
    assert load_calendar(db_session, calendars["standard"].id).is_working_day(date(2026, 11, 30))
    with pytest.raises(InvalidInput) as raised:
        add_day(db_session=db_session, calendar_id=None, day="2026-11-30", kind="closure")
    assert "kind" in raised.value.errors
    with pytest.raises(InvalidInput):
        add_day(
            db_session=db_session,
            calendar_id=calendars["24x7"].id,
            day="2026-11-30",
            kind="closure",
        )
    remove_day(db_session=db_session, day_id=day.id)
    assert load_calendar(db_session, branch.id).is_working_day(date(2026, 11, 30))


@pytest.mark.parametrize(
    ("values", "field", "named"),
    [
        ({"working_hours": {"0": [["9:00", "12:00"]]}}, "working_hours", "'9:00'"),
        ({"working_hours": {"1": [["09:00", "12:60"]]}}, "working_hours", "Tuesday"),
        ({"working_hours": {"2": [["13:00", "12:00"]]}}, "working_hours", "13:00–12:00"),
        (
            {"working_hours": {"3": [["09:00", "12:30"], ["12:00", "18:00"]]}},
            "working_hours",
            "09:00–12:30 and 12:00–18:00 overlap",
        ),
        ({"working_hours": {"7": [["09:00", "12:00"]]}}, "working_hours", "'7'"),
        ({"working_hours": {}}, "working_hours", "at least one"),
        ({"time_zone": "Asia/Beijing"}, "time_zone", "'Asia/Beijing'"),
        ({"code": "Head Office"}, "code", "'Head Office'"),
        ({"name": ""}, "name", "required"),
        ({"is_24x7": "yes"}, "is_24x7", "true or false"),
    ],
)
def test_bad_calendar_input_names_the_field(db_session, values, field, named):
    values = {
        "code": "office",
        "name": "办公室",
        "working_hours": {"0": [["09:00", "18:00"]]},
        **values,
    }
    with pytest.raises(InvalidInput) as raised:
        create_calendar(db_session=db_session, values=values)
    assert field in raised.value.errors
    assert raised.value.en.startswith(f"{field}: ") and named in raised.value.en
    assert raised.value.zh


def test_a_calendar_can_be_changed_and_codes_stay_unique(db_session):
    calendars = ensure_default_calendars(db_session)
    assert ensure_default_calendars(db_session) == calendars, "created once"
    standard = calendars["standard"]
    assert standard.working_hours["4"] == [["09:00", "12:00"], ["13:00", "18:00"]]
    assert "5" not in standard.working_hours and standard.time_zone == "Asia/Shanghai"
    update_calendar(
        db_session=db_session,
        calendar_id=standard.id,
        values={"working_hours": {**standard.working_hours, "5": [["09:00", "12:00"]]}},
    )
    saturday = shanghai(2026, 11, 28, 9, 0)
    assert load_calendar(db_session, standard.id).add(saturday, 180) == saturday.replace(hour=12)
    with pytest.raises(Conflict) as raised:
        update_calendar(db_session=db_session, calendar_id=standard.id, values={"code": "24x7"})
    assert raised.value.errors == {"code": ["already taken"]}


def test_hours_are_counted_in_the_calendars_time_zone_across_a_dst_change(db_session):
    london = create_calendar(
        db_session=db_session,
        values={
            "code": "london",
            "name": "London office",
            "time_zone": "Europe/London",
            "use_official_holidays": False,
            "working_hours": {str(day): [["09:00", "17:00"]] for day in range(5)},
        },
    )
    calendar = load_calendar(db_session, london.id)
    # Friday 23 October 16:00 BST, given in Shanghai time; British summer time ends on the
    # Sunday, so Monday 10:00 GMT is 10:00 UTC.
    start = datetime(2026, 10, 23, 16, 0, tzinfo=ZoneInfo("Europe/London")).astimezone(SHANGHAI)
    assert calendar.add(start, 120) == datetime(2026, 10, 26, 10, 0, tzinfo=UTC)
    # Chinese holidays do not apply: 1 October 2026 is an ordinary Thursday in London.
    assert calendar.is_working_day(date(2026, 10, 1))
    # No official data is needed either.
    assert calendar.is_working_day(date(2031, 3, 3))


@pytest.mark.parametrize(
    "start",
    [
        shanghai(2026, 9, 24, 10, 15),  # inside the morning
        shanghai(2026, 9, 24, 12, 30),  # lunch
        shanghai(2026, 9, 24, 20, 0),  # evening
        shanghai(2026, 9, 26, 11, 0),  # Mid-Autumn Saturday
        shanghai(2026, 10, 3, 9, 0),  # National Day
    ],
)
@pytest.mark.parametrize("minutes", [0, 1, 59.5, 180, 181, 480, 2000, 12345.25])
def test_working_minutes_is_the_inverse_of_add(standard, start, minutes):
    due = standard.add(start, minutes)
    assert due >= start
    assert standard.working_minutes(start, due) == pytest.approx(minutes, abs=1e-6)
    assert standard.working_minutes(due, start) == pytest.approx(-minutes, abs=1e-6)
    if minutes:
        # The first moment with that many minutes: a moment earlier there are fewer.
        earlier = due - timedelta(seconds=1)
        assert standard.working_minutes(start, earlier) < minutes


def test_add_lands_back_on_a_working_moment(standard):
    start = shanghai(2026, 9, 24, 10, 0)
    for end in (shanghai(2026, 9, 24, 15, 45), shanghai(2026, 10, 8, 9, 1)):
        assert standard.add(start, standard.working_minutes(start, end)) == end
    # A moment outside working time maps back to the end of the last working interval.
    evening = shanghai(2026, 9, 24, 21, 0)
    assert standard.add(start, standard.working_minutes(start, evening)) == shanghai(
        2026, 9, 24, 18, 0
    )


def test_naive_datetimes_are_refused(standard):
    with pytest.raises(ValueError, match="aware"):
        standard.add(datetime(2026, 9, 24, 10, 0), 60)
    with pytest.raises(ValueError, match="aware"):
        standard.working_minutes(datetime(2026, 9, 24, 10, 0), shanghai(2026, 9, 24, 11, 0))
