"""Imports every model so that metadata (and Alembic) sees all tables."""

from app.attachments.models import Attachment
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
from app.designer.models import ProcessDraft
from app.dispatch.models import (
    DispatchDecision,
    EngineerProfile,
    GroupDispatchConfig,
    Leave,
    WorkShift,
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
from app.notify.models import Notification, OutboxMessage
from app.site.models import CheckIn
from app.sla.models import BusinessCalendar, CalendarDay
from app.sla.sla_models import SlaClock, SlaInterval, SlaPolicy
from app.tickets.models import Device, Satisfaction, Ticket, TicketNote

__all__ = [
    "ApiToken",
    "Attachment",
    "AuditEntry",
    "BusinessCalendar",
    "CalendarDay",
    "CheckIn",
    "Department",
    "Device",
    "DispatchDecision",
    "EngineerProfile",
    "Group",
    "GroupDispatchConfig",
    "HumanTask",
    "HumanTaskCandidate",
    "IdempotencyRecord",
    "Leave",
    "LoginAttempt",
    "MessageSubscription",
    "Notification",
    "OutboxMessage",
    "ProcessDefinition",
    "ProcessDraft",
    "ProcessEvent",
    "ProcessInstance",
    "Satisfaction",
    "Skill",
    "SlaClock",
    "SlaInterval",
    "SlaPolicy",
    "Ticket",
    "TicketNote",
    "Timer",
    "User",
    "UserSkill",
    "WorkShift",
    "group_member",
]
