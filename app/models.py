"""Imports every model so that metadata (and Alembic) sees all tables."""

from app.auth.models import Group, User, group_member
from app.engine.models import (
    HumanTask,
    HumanTaskCandidate,
    MessageSubscription,
    ProcessDefinition,
    ProcessEvent,
    ProcessInstance,
    Timer,
)
from app.tickets.models import Device, Ticket

__all__ = [
    "Device",
    "Group",
    "HumanTask",
    "HumanTaskCandidate",
    "MessageSubscription",
    "ProcessDefinition",
    "ProcessEvent",
    "ProcessInstance",
    "Ticket",
    "Timer",
    "User",
    "group_member",
]
