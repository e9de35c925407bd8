"""Checking business calendar input: fields, working hours ("HH:MM", reversed and overlapping
intervals), time zones and day rows, each problem named in Chinese and English."""

from __future__ import annotations

import re
from datetime import date
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.errors import InvalidInput
from app.sla.calendar import OFFICIAL_KINDS, WEEKDAYS_EN, WEEKDAYS_ZH, parse_hhmm
from app.sla.models import BusinessCalendar

FIELDS = ("code", "name", "time_zone", "working_hours", "use_official_holidays", "is_24x7")
LABELS = {
    "code": "代码",
    "name": "名称",
    "time_zone": "时区",
    "working_hours": "工作时段",
    "use_official_holidays": "按法定节假日休息",
    "is_24x7": "7×24 小时",
    "date": "日期",
    "kind": "类型",
}
KIND_LABELS = {"holiday": "法定节假日", "workday": "调休上班日", "closure": "停工日"}
CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAX_NAME = 100


def validated(values: dict, *, required: tuple[str, ...], only: set | None = None) -> dict:
    """The known fields checked as a whole; raises one InvalidInput naming every bad field."""
    unknown = sorted(set(values) - set(FIELDS) - {"id"})
    errors: dict[str, list[str]] = {}
    messages: list[tuple[str, str]] = []

    def fail(field: str, zh: str, en: str) -> None:
        errors.setdefault(field, []).append(en)
        messages.append((f"{LABELS.get(field, field)}：{zh}", f"{field}: {en}"))

    for field in unknown:
        fail(field, "未知字段", "unknown field")
    for field in required:
        value = values.get(field)
        if not isinstance(value, str) or not value.strip():
            fail(field, "必填", "required")
    code = values.get("code")
    if isinstance(code, str) and code.strip() and not CODE.match(code.strip()):
        fail(
            "code",
            f"「{code}」只能含小写字母、数字、- 和 _，最长 40 个字符",
            f"{code!r} may hold only lowercase letters, digits, - and _, at most 40 characters",
        )
    name = values.get("name")
    if isinstance(name, str) and len(name.strip()) > MAX_NAME:
        fail("name", f"最长 {MAX_NAME} 个字符", f"at most {MAX_NAME} characters")
    zone = values.get("time_zone")
    if not _is_zone(zone):
        fail(
            "time_zone",
            f"未知时区「{zone}」，例如 Asia/Shanghai",
            f"unknown time zone {zone!r}; e.g. Asia/Shanghai",
        )
    for flag in ("use_official_holidays", "is_24x7"):
        if not isinstance(values.get(flag), bool):
            fail(flag, "应为 true 或 false", "must be true or false")
    for zh, en in _hours_problems(values.get("working_hours"), values.get("is_24x7") is True):
        fail("working_hours", zh, en)
    if messages:
        raise InvalidInput(
            "；".join(zh for zh, _ in messages), "; ".join(en for _, en in messages), errors=errors
        )
    checked = {field: values[field] for field in FIELDS if field in values}
    checked["code"], checked["name"] = checked["code"].strip(), checked["name"].strip()
    checked["working_hours"] = {
        str(weekday): [list(interval) for interval in intervals]
        for weekday, intervals in sorted(checked["working_hours"].items(), key=lambda i: int(i[0]))
        if intervals
    }
    return checked if only is None else {f: v for f, v in checked.items() if f in only}


def _hours_problems(hours, is_24x7: bool) -> list[tuple[str, str]]:
    """Bad weekday keys, bad "HH:MM", reversed or overlapping intervals, none at all."""
    if not isinstance(hours, dict):
        return [
            (
                '应为对象，如 {"0": [["09:00", "12:00"]]}（"0" 为周一）',
                'must be an object like {"0": [["09:00", "12:00"]]} ("0" is Monday)',
            )
        ]
    problems = []
    total = 0
    for key, intervals in hours.items():
        if str(key) not in {str(weekday) for weekday in range(7)}:
            problems.append(
                (
                    f"星期「{key}」无效，应为 0（周一）到 6（周日）",
                    f"weekday {key!r} must be 0 (Monday) to 6 (Sunday)",
                )
            )
            continue
        zh_day, en_day = WEEKDAYS_ZH[int(key)], WEEKDAYS_EN[int(key)]
        if not isinstance(intervals, list):
            problems.append((f"{zh_day} 应为时段列表", f"{en_day} must be a list of intervals"))
            continue
        spans = []
        for number, interval in enumerate(intervals, start=1):
            where_zh, where_en = f"{zh_day}第 {number} 段", f"{en_day} interval {number}"
            if not (isinstance(interval, list | tuple) and len(interval) == 2):
                problems.append(
                    (f"{where_zh} 应为 [开始, 结束]", f"{where_en} must be [start, end]")
                )
                continue
            start, end = interval
            times = []
            for label_zh, label_en, value in (("开始", "start", start), ("结束", "end", end)):
                try:
                    parsed = parse_hhmm(value)
                except ValueError:
                    problems.append(
                        (
                            f"{where_zh}{label_zh}时间「{value}」不是 HH:MM（00:00–24:00）",
                            f"{where_en} {label_en} {value!r} is not HH:MM (00:00–24:00)",
                        )
                    )
                    break
                times.append(24 * 60 if parsed is None else parsed.hour * 60 + parsed.minute)
            else:
                if start == "24:00" or times[1] <= times[0]:
                    problems.append(
                        (
                            f"{where_zh} {start}–{end} 结束不晚于开始（跨零点请分成两天）",
                            f"{where_en} {start}–{end} does not end after it starts "
                            "(split a night across two days)",
                        )
                    )
                else:
                    spans.append((times[0], times[1], f"{start}–{end}"))
        spans.sort()
        for before, after in pairwise(spans):
            if after[0] < before[1]:
                problems.append(
                    (
                        f"{zh_day} 时段 {before[2]} 与 {after[2]} 重叠",
                        f"{en_day} intervals {before[2]} and {after[2]} overlap",
                    )
                )
        total += len(spans)
    if not problems and not total and not is_24x7:
        problems.append(
            (
                "至少需要一个工作时段（或设为 7×24 小时）",
                "at least one working interval is needed (or make the calendar 24×7)",
            )
        )
    return problems


def _is_zone(name) -> bool:
    if not isinstance(name, str) or not name.strip():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def day_problems(day, kind, name, calendar: BusinessCalendar | None) -> list[tuple[str, str, str]]:
    """(field, zh, en) for each problem of one day row."""
    problems = []
    if as_date(day) is None:
        problems.append(
            ("date", f"「{day}」不是日期 YYYY-MM-DD", f"{day!r} is not a date YYYY-MM-DD")
        )
    allowed = OFFICIAL_KINDS if calendar is None else ("closure",)
    if kind not in allowed:
        where_zh = "法定节假日表" if calendar is None else f"工作日历 {calendar.code}"
        where_en = "the official table" if calendar is None else f"calendar {calendar.code}"
        known = "、".join(f"{k}（{KIND_LABELS[k]}）" for k in allowed)
        problems.append(
            (
                "kind",
                f"「{kind}」无效，{where_zh}只接受 {known}",
                f"{kind!r} is not allowed; {where_en} takes {', '.join(allowed)}",
            )
        )
    if not isinstance(name, str) or len(name.strip()) > MAX_NAME:
        problems.append(("name", f"最长 {MAX_NAME} 个字符", f"at most {MAX_NAME} characters"))
    return problems


def as_date(value) -> date | None:
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not DATE.match(value.strip()):
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        return None
