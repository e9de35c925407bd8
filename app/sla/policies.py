"""SLA policies: creating, changing, ordering and deleting them, and finding the one that
applies to a ticket (the first active match by position)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from app.audit.service import record
from app.auth.models import Department
from app.errors import Conflict, InvalidInput, NotFound
from app.extensions import db
from app.sla.sla_models import RESPONSE_EVENTS, SlaClock, SlaPolicy
from app.tickets.models import PRIORITIES, Ticket
from app.timeutil import utcnow

NOTIFY_TARGETS = ("assignee", "group_lead", "manager")
DEFAULT_ESCALATION_LEVELS = [
    {"percent": 50, "notify": ["assignee"]},
    {"percent": 75, "notify": ["assignee", "group_lead"]},
    {"percent": 100, "notify": ["group_lead", "manager"]},
    {"percent": 150, "notify": ["manager"]},
]
# A year of minutes: a target beyond it is a typo, not a service level.
MAX_MINUTES = 366 * 24 * 60
MATCH_FIELDS = ("process_key", "category", "priority", "department_code")
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


@dataclass(frozen=True)
class TicketFacts:
    """What policies match on: the ticket's fields, or what the process has decided since."""

    process_key: str
    category: str
    priority: str
    department_codes: frozenset[str]


# ---------------------------------------------------------------- reading


def list_policies(*, db_session: Session) -> list[SlaPolicy]:
    return list(db_session.scalars(select(SlaPolicy).order_by(SlaPolicy.position, SlaPolicy.id)))


def get_policy(*, db_session: Session, policy_id: int) -> SlaPolicy:
    policy = db_session.get(SlaPolicy, policy_id)
    if policy is None:
        raise NotFound(f"SLA 策略 {policy_id} 不存在", f"SLA policy {policy_id} not found")
    return policy


def policy_dict(policy: SlaPolicy) -> dict:
    return {
        "id": policy.id,
        "name": policy.name,
        "position": policy.position,
        **{name: getattr(policy, name) for name in sorted(FIELDS - {"name"})},
    }


# ---------------------------------------------------------------- matching


def ticket_facts(db_session: Session, ticket: Ticket, data: dict | None = None) -> TicketFacts:
    """The ticket as policies see it; ``data`` (the process's variables) wins for priority and
    category, since triage decides them in the process."""
    data = data or {}
    priority = data.get("priority")
    category = data.get("category")
    return TicketFacts(
        process_key=ticket.process_key,
        category=category if isinstance(category, str) and category else ticket.category,
        priority=priority if priority in PRIORITIES else ticket.priority,
        department_codes=_department_chain(db_session, ticket.department_id),
    )


def _department_chain(db_session: Session, department_id: int | None) -> frozenset[str]:
    """The codes of the department and of every department above it."""
    codes: set[str] = set()
    seen: set[int] = set()
    while department_id is not None and department_id not in seen:
        seen.add(department_id)
        department = db_session.get(Department, department_id)
        if department is None:
            break
        codes.add(department.code)
        department_id = department.parent_id
    return frozenset(codes)


def matches(policy: SlaPolicy, facts: TicketFacts) -> bool:
    return (
        (not policy.process_key or policy.process_key == facts.process_key)
        and (not policy.category or policy.category == facts.category)
        and (not policy.priority or policy.priority == facts.priority)
        and (not policy.department_code or policy.department_code in facts.department_codes)
    )


def match_policy(
    db_session: Session, ticket: Ticket, facts: TicketFacts | None = None
) -> SlaPolicy | None:
    """The first active policy by position that matches the ticket, or None."""
    facts = facts or ticket_facts(db_session, ticket)
    policies = db_session.scalars(
        select(SlaPolicy)
        .where(SlaPolicy.active.is_(True))
        .order_by(SlaPolicy.position, SlaPolicy.id)
    )
    return next((policy for policy in policies if matches(policy, facts)), None)


# ---------------------------------------------------------------- changing


def create_policy(*, db_session: Session, values: dict, actor: str | None = None) -> SlaPolicy:
    """A new policy, last in the order unless ``values`` gives a position."""
    values = {
        "pause_on": [],
        "escalation_levels": DEFAULT_ESCALATION_LEVELS,
        "reminder_percent": 75,
        "response_event": "first_action",
        "active": True,
        **values,
    }
    position = values.pop("position", None)
    cleaned = _validated(db_session, values, required=True)
    _check_unique_name(db_session, cleaned["name"], None)
    if position is None:
        position = (db_session.scalar(select(func.max(SlaPolicy.position))) or 0) + 1
    policy = SlaPolicy(**cleaned, position=_position(position))
    db_session.add(policy)
    db_session.flush()
    _audit(db_session, "sla_policy.create", policy, actor, after=policy_dict(policy))
    return policy


def update_policy(
    *, db_session: Session, policy_id: int, values: dict, actor: str | None = None
) -> SlaPolicy:
    """Change the given fields; running clocks keep their targets until their ticket next
    moves (see app.sla.clock.recompute)."""
    policy = get_policy(db_session=db_session, policy_id=policy_id)
    values = dict(values)
    position = values.pop("position", None)
    cleaned = _validated(db_session, values, required=False)
    if "name" in cleaned:
        _check_unique_name(db_session, cleaned["name"], policy.id)
    before = policy_dict(policy)
    for name, value in cleaned.items():
        setattr(policy, name, value)
    if position is not None:
        policy.position = _position(position)
    policy.updated_at = utcnow()
    db_session.flush()
    _audit(db_session, "sla_policy.update", policy, actor, before=before, after=policy_dict(policy))
    return policy


def reorder_policies(
    *, db_session: Session, policy_ids: list[int], actor: str | None = None
) -> list[SlaPolicy]:
    """Put every policy in the order given (the first is tried first)."""
    policies = {policy.id: policy for policy in list_policies(db_session=db_session)}
    if not isinstance(policy_ids, list) or sorted(policy_ids) != sorted(policies):
        missing = sorted(set(policies) - set(policy_ids or []))
        unknown = sorted(set(policy_ids or []) - set(policies))
        raise InvalidInput(
            f"策略顺序 policy_ids 必须恰好列出每个策略一次（缺少 {missing}，未知 {unknown}）",
            f"policy_ids must list every policy exactly once (missing {missing}, unknown "
            f"{unknown})",
            errors={"policy_ids": ["must list every policy exactly once"]},
        )
    before = [policy.id for policy in policies.values()]
    for position, policy_id in enumerate(policy_ids, start=1):
        policies[policy_id].position = position
    db_session.flush()
    record(
        db_session=db_session,
        action="sla_policy.reorder",
        object_type="sla_policy",
        object_id=None,
        actor=actor,
        before={"order": before},
        after={"order": list(policy_ids)},
    )
    return [policies[policy_id] for policy_id in policy_ids]


def delete_policy(*, db_session: Session, policy_id: int, actor: str | None = None) -> None:
    """Delete a policy no clock uses; one in use is deactivated instead (clocks keep it)."""
    policy = get_policy(db_session=db_session, policy_id=policy_id)
    if db_session.scalar(select(exists().where(SlaClock.policy_id == policy.id))):
        raise Conflict(
            f"SLA 策略「{policy.name}」已被工单的 SLA 计时使用，不能删除；请改为停用（active=false）",
            f"SLA policy {policy.name!r} is used by work orders' SLA clocks and cannot be "
            "deleted; deactivate it instead (active=false)",
        )
    _audit(db_session, "sla_policy.delete", policy, actor, before=policy_dict(policy))
    db_session.delete(policy)
    db_session.flush()


# ---------------------------------------------------------------- validation


def _validated(db_session: Session, values: dict, *, required: bool) -> dict:
    """The values in the form they are stored; every bad field is named at once."""
    errors: dict[str, str] = {}
    unknown = sorted(set(values) - FIELDS)
    for name in unknown:
        errors[name] = "unknown field"
    needed = ("name", "response_minutes", "resolution_minutes", "calendar_id")
    if required:
        for name in needed:
            if values.get(name) in (None, ""):
                errors[name] = "required"
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
            f"{LABELS.get(name, name)} {name}：{why}" for name, why in errors.items()
        )
        details_en = "; ".join(f"{name}: {why}" for name, why in errors.items())
        raise InvalidInput(
            f"SLA 策略的字段有误（{names}）：{details_zh}",
            f"SLA policy fields not valid ({names}): {details_en}",
            errors={name: [why] for name, why in errors.items()},
        )
    return cleaned


def _check(db_session: Session, name: str, value) -> tuple[str | None, object]:
    """(problem in English or None, stored value) for one field."""
    if name == "name":
        text = value.strip() if isinstance(value, str) else ""
        return (None, text) if 0 < len(text) <= 100 else ("1 to 100 characters", None)
    if name in MATCH_FIELDS:
        if value in (None, ""):
            return None, None
        if not isinstance(value, str) or len(value) > 100:
            return "a text of at most 100 characters, or empty to match any", None
        if name == "priority" and value not in PRIORITIES:
            return f"one of {', '.join(PRIORITIES)}, or empty to match any", None
        return None, value.strip()
    if name in {"response_minutes", "resolution_minutes"}:
        if not _is_int(value) or not 0 < value <= MAX_MINUTES:
            return f"a whole number of working minutes from 1 to {MAX_MINUTES}", None
        return None, value
    if name == "response_event":
        if value not in RESPONSE_EVENTS:
            return f"one of {', '.join(RESPONSE_EVENTS)}", None
        return None, value
    if name == "calendar_id":
        if not _is_int(value) or not _calendar_exists(db_session, value):
            return f"no calendar with id {value!r}", None
        return None, value
    if name == "pause_on":
        if not isinstance(value, list) or not all(
            isinstance(item, str) and 0 < len(item.strip()) <= 100 for item in value
        ):
            return (
                "a list of ticket statuses or task ids/names (texts of 1 to 100 characters)",
                None,
            )
        return None, list(dict.fromkeys(item.strip() for item in value))
    if name == "escalation_levels":
        return _check_levels(value)
    if name == "reminder_percent":
        if not _is_int(value) or not 1 <= value <= 100:
            return "a whole percent from 1 to 100", None
        return None, value
    if name == "active":
        return (None, value) if isinstance(value, bool) else ("true or false", None)
    return "unknown field", None


def _check_levels(value) -> tuple[str | None, object]:
    shape = (
        'a list of {"percent": 1..1000, "notify": [...]} in ascending percent; notify names '
        + ", ".join(NOTIFY_TARGETS)
    )
    if not isinstance(value, list):
        return shape, None
    levels, last = [], 0
    for level in value:
        if not isinstance(level, dict) or set(level) != {"percent", "notify"}:
            return shape, None
        percent, notify = level["percent"], level["notify"]
        if not _is_int(percent) or not last < percent <= 1000:
            return shape, None
        if (
            not isinstance(notify, list)
            or not notify
            or not all(target in NOTIFY_TARGETS for target in notify)
        ):
            return shape, None
        levels.append({"percent": percent, "notify": list(dict.fromkeys(notify))})
        last = percent
    return None, levels


def _calendar_exists(db_session: Session, calendar_id: int) -> bool:
    # The calendars' own table, by name: this module needs no more of that package.
    table = db.metadata.tables["business_calendar"]
    return db_session.scalar(select(table.c.id).where(table.c.id == calendar_id)) is not None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _position(value) -> int:
    if not _is_int(value) or value < 0:
        raise InvalidInput(
            f"顺序 position 必须是非负整数，收到 {value!r}",
            f"position must be a whole number of 0 or more, got {value!r}",
            errors={"position": ["a whole number of 0 or more"]},
        )
    return value


def _check_unique_name(db_session: Session, name: str, own_id: int | None) -> None:
    other = db_session.scalar(select(SlaPolicy.id).where(SlaPolicy.name == name))
    if other is not None and other != own_id:
        raise InvalidInput(
            f"名称 name：已有名为「{name}」的 SLA 策略",
            f"name: an SLA policy named {name!r} already exists",
            errors={"name": ["already taken"]},
        )


def _audit(db_session, action, policy, actor, before=None, after=None) -> None:
    record(
        db_session=db_session,
        action=action,
        object_type="sla_policy",
        object_id=policy.id,
        actor=actor,
        before=before,
        after=after,
    )
