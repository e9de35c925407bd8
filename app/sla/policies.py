"""SLA policies: creating, changing, ordering and deleting them, and finding the one that
applies to a ticket (the first active match by position)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from app.audit.service import record
from app.auth.models import Department
from app.errors import Conflict, InvalidInput, NotFound
from app.sla.policy_checks import FIELDS, checked_position, validated
from app.sla.sla_models import SlaClock, SlaPolicy
from app.tickets.models import PRIORITIES, Ticket
from app.timeutil import utcnow

DEFAULT_ESCALATION_LEVELS = [
    {"percent": 50, "notify": ["assignee"]},
    {"percent": 75, "notify": ["assignee", "group_lead"]},
    {"percent": 100, "notify": ["group_lead", "manager"]},
    {"percent": 150, "notify": ["manager"]},
]


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
    return first_match(db_session, facts or ticket_facts(db_session, ticket))


def first_match(db_session: Session, facts: TicketFacts) -> SlaPolicy | None:
    """The first active policy by position that matches these facts, or None."""
    policies = db_session.scalars(
        select(SlaPolicy)
        .where(SlaPolicy.active.is_(True))
        .order_by(SlaPolicy.position, SlaPolicy.id)
    )
    return next((policy for policy in policies if matches(policy, facts)), None)


def facts_for(
    db_session: Session,
    *,
    process_key: str = "",
    category: str = "",
    priority: str = "",
    department_code: str = "",
) -> TicketFacts:
    """Facts of an imagined work order (the admin's "which policy would apply?"); a department
    brings the departments above it, as a ticket's does."""
    department_id = None
    if department_code:
        department_id = db_session.scalar(
            select(Department.id).where(Department.code == department_code)
        )
    return TicketFacts(
        process_key=process_key,
        category=category,
        priority=priority,
        department_codes=_department_chain(db_session, department_id),
    )


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
    cleaned = validated(db_session, values, required=True)
    _check_unique_name(db_session, cleaned["name"], None)
    if position is None:
        position = (db_session.scalar(select(func.max(SlaPolicy.position))) or 0) + 1
    policy = SlaPolicy(**cleaned, position=checked_position(position))
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
    cleaned = validated(db_session, values, required=False)
    if "name" in cleaned:
        _check_unique_name(db_session, cleaned["name"], policy.id)
    before = policy_dict(policy)
    for name, value in cleaned.items():
        setattr(policy, name, value)
    if position is not None:
        policy.position = checked_position(position)
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
