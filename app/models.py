"""Imports every model so that metadata (and Alembic) sees all tables."""

from app.audit.models import AuditEntry
from app.auth.models import (
    ApiToken,
    Department,
    Group,
    LoginAttempt,
    Skill,
    User,
    UserSkill,
    group_member,
)
from app.engine.models import (
    HumanTask,
    HumanTaskCandidate,
    MessageSubscription,
    ProcessDefinition,
    ProcessEvent,
    ProcessInstance,
    Timer,
)
from app.integrations.models import IdempotencyRecord
from app.tickets.models import Device, Ticket

__all__ = [
    "ApiToken",
    "AuditEntry",
    "Department",
    "Device",
    "Group",
    "HumanTask",
    "HumanTaskCandidate",
    "IdempotencyRecord",
    "LoginAttempt",
    "MessageSubscription",
    "ProcessDefinition",
    "ProcessEvent",
    "ProcessInstance",
    "Skill",
    "Ticket",
    "Timer",
    "User",
    "UserSkill",
    "group_member",
]
