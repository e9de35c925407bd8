"""Checking SLA policy input: every field named in Chinese and English, escalation levels and
their recipients, match fields (a department must exist), targets in working minutes."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import Department, User
from app.errors import InvalidInput
from app.extensions import db
from app.sla.sla_models import RESPONSE_EVENTS
from app.tickets.models import PRIORITIES

NOTIFY_TARGETS = ("assignee", "group_lead", "manager")
# Ids and positions are 32-bit columns: larger numbers must not reach the database driver.
MAX_ID = 2**31 - 1
# A year of minutes: a target beyond it is a typo, not a service level.
MAX_MINUTES = 366 * 24 * 60
MATCH_FIELDS = ("process_key", "category", "priority", "department_code")
# The columns' lengths (sla_policy), so that a long text is named, not refused by the database.
MATCH_LENGTHS = {"process_key": 100, "category": 40, "priority": 4, "department_code": 50}
FIELDS = frozenset(
    {
        "name",
        *MATCH_FIELDS,
        "response_minutes",
        "resolution_minutes",
        "response_event",
        "calendar_id",
        "pause_on",
        "escalation_levels",
        "reminder_percent",
        "active",
    }
)
# Field labels for messages: field -> Chinese name.
LABELS = {
    "name": "名称",
    "process_key": "工单类型",
    "category": "类别",
    "priority": "优先级",
    "department_code": "部门",
    "response_minutes": "响应时限（工作分钟）",
    "resolution_minutes": "解决时限（工作分钟）",
    "response_event": "响应计时的停止事件",
    "calendar_id": "工作日历",
    "pause_on": "暂停条件",
    "escalation_levels": "升级级别",
    "reminder_percent": "超时提醒阈值",
    "active": "启用",
}


def validated(db_session: Session, values: dict, *, required: bool) -> dict:
    """The values in the form they are stored; every bad field is named at once."""
    errors: dict[str, tuple[str, str]] = {}
    unknown = sorted(set(values) - FIELDS)
    for name in unknown:
        errors[name] = ("未知字段", "unknown field")
    needed = ("name", "response_minutes", "resolution_minutes", "calendar_id")
    if required:
        for name in needed:
            if values.get(name) in (None, ""):
                errors[name] = ("必填", "required")
    cleaned: dict = {}
    for name, value in values.items():
        if name in unknown or name in errors:
            continue
        problem, stored = _check(db_session, name, value)
        if problem:
            errors[name] = problem
        else:
            cleaned[name] = stored
    if errors:
        names = ", ".join(errors)
        details_zh = "；".join(
            f"{LABELS.get(name, name)} {name}：{zh}" for name, (zh, _) in errors.items()
        )
        details_en = "; ".join(f"{name}: {en}" for name, (_, en) in errors.items())
        raise InvalidInput(
            f"SLA 策略的字段有误（{names}）：{details_zh}",
            f"SLA policy fields not valid ({names}): {details_en}",
            errors={name: [en] for name, (_, en) in errors.items()},
        )
    return cleaned


def _check(db_session: Session, name: str, value) -> tuple[tuple[str, str] | None, object]:
    """((problem in Chinese, in English) or None, stored value) for one field."""
    if name == "name":
        text = value.strip() if isinstance(value, str) else ""
        if 0 < len(text) <= 100:
            return None, text
        return ("应为 1 到 100 个字符", "1 to 100 characters"), None
    if name in MATCH_FIELDS:
        return _check_match(db_session, name, value)
    if name in {"response_minutes", "resolution_minutes"}:
        if not _is_int(value) or not 0 < value <= MAX_MINUTES:
            return (
                f"应为 1 到 {MAX_MINUTES} 的整数（工作分钟），收到 {value!r}",
                f"a whole number of working minutes from 1 to {MAX_MINUTES}, got {value!r}",
            ), None
        return None, value
    if name == "response_event":
        if value not in RESPONSE_EVENTS:
            known = ", ".join(RESPONSE_EVENTS)
            return (f"应为 {known} 之一", f"one of {known}"), None
        return None, value
    if name == "calendar_id":
        if not _is_int(value) or not 0 < value <= MAX_ID or not _calendar_exists(db_session, value):
            return (
                f"没有 id 为 {value!r} 的工作日历",
                f"no calendar with id {value!r}",
            ), None
        return None, value
    if name == "pause_on":
        if not isinstance(value, list) or not all(
            isinstance(item, str) and 0 < len(item.strip()) <= 100 for item in value
        ):
            return (
                "应为工单状态或任务 id/名称的列表（每项 1 到 100 个字符）",
                "a list of ticket statuses or task ids/names (texts of 1 to 100 characters)",
            ), None
        return None, list(dict.fromkeys(item.strip() for item in value))
    if name == "escalation_levels":
        return _check_levels(db_session, value)
    if name == "reminder_percent":
        if not _is_int(value) or not 1 <= value <= 100:
            return (
                f"应为 1 到 100 的整数百分比，收到 {value!r}",
                f"a whole percent from 1 to 100, got {value!r}",
            ), None
        return None, value
    if name == "active":
        if isinstance(value, bool):
            return None, value
        return ("应为 true 或 false", "true or false"), None
    return ("未知字段", "unknown field"), None


def _check_match(db_session: Session, name: str, value) -> tuple[tuple[str, str] | None, object]:
    """A match field: empty matches any; a priority must be known, a department must exist
    (a misspelt one would silently never match)."""
    if value in (None, ""):
        return None, None
    longest = MATCH_LENGTHS[name]
    if not isinstance(value, str) or not 0 < len(value.strip()) <= longest:
        return (
            f"应为最多 {longest} 个字符的文本，留空则匹配全部",
            f"a text of at most {longest} characters, or empty to match any",
        ), None
    value = value.strip()
    if name == "priority" and value not in PRIORITIES:
        known = ", ".join(PRIORITIES)
        return (
            f"应为 {known} 之一，留空则匹配全部",
            f"one of {known}, or empty to match any",
        ), None
    if name == "department_code" and (
        db_session.scalar(select(Department.id).where(Department.code == value)) is None
    ):
        return (f"没有代码为「{value}」的部门", f"no department with code {value!r}"), None
    return None, value


def _check_levels(db_session: Session, value) -> tuple[tuple[str, str] | None, object]:
    targets = ", ".join(NOTIFY_TARGETS)
    shape = (
        f'应为按百分比升序的列表 [{{"percent": 1..1000, "notify": [...]}}]，notify 可为 {targets}'
        " 或 user:用户名",
        f'a list of {{"percent": 1..1000, "notify": [...]}} in ascending percent; notify names '
        f"{targets} or user:<username>",
    )
    if not isinstance(value, list):
        return shape, None
    levels, last, people = [], 0, set()
    for level in value:
        if not isinstance(level, dict) or set(level) != {"percent", "notify"}:
            return shape, None
        percent, notify = level["percent"], level["notify"]
        if not _is_int(percent) or not last < percent <= 1000:
            return shape, None
        if not isinstance(notify, list) or not notify:
            return shape, None
        for target in notify:
            if not isinstance(target, str):
                return shape, None
            if target.startswith("user:") and target.removeprefix("user:"):
                people.add(target.removeprefix("user:"))
            elif target not in NOTIFY_TARGETS:
                return shape, None
        levels.append({"percent": percent, "notify": list(dict.fromkeys(notify))})
        last = percent
    known = set(
        db_session.scalars(
            select(User.username).where(
                User.username.in_(sorted(people)), User.is_active_account.is_(True)
            )
        )
    )
    unknown = sorted(people - known)
    if unknown:
        names = ", ".join(unknown)
        return (f"没有这些在职用户：{names}", f"no active users named {names}"), None
    return None, levels


def _calendar_exists(db_session: Session, calendar_id: int) -> bool:
    # The calendars' own table, by name: this module needs no more of that package.
    table = db.metadata.tables["business_calendar"]
    return db_session.scalar(select(table.c.id).where(table.c.id == calendar_id)) is not None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def checked_position(value) -> int:
    if not _is_int(value) or not 0 <= value <= MAX_ID:
        raise InvalidInput(
            f"顺序 position 必须是 0 到 {MAX_ID} 的整数，收到 {value!r}",
            f"position must be a whole number from 0 to {MAX_ID}, got {value!r}",
            errors={"position": [f"a whole number from 0 to {MAX_ID}"]},
        )
    return value
