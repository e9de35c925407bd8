"""The BPMN engine: SpiffWorkflow behind a small facade. Imports no domain package."""

from app.engine.assignment import (
    ASSIGNMENT_EVENTS,
    assignment,
    last_assignment,
    lock_task,
    lock_task_with_data,
    reassign_task,
    reassign_task_with,
)
from app.engine.queries import (
    active_elements,
    definition_versions,
    get_definition,
    get_instance,
    get_task,
    history,
    instance_data,
    latest_definition,
    open_tasks,
    task_form,
)
from app.engine.service import complete_task, deliver_message, deploy, move_timers, start
from app.engine.timers import FireReport, fire_due_timers

__all__ = [
    "ASSIGNMENT_EVENTS",
    "FireReport",
    "active_elements",
    "assignment",
    "complete_task",
    "definition_versions",
    "deliver_message",
    "deploy",
    "fire_due_timers",
    "get_definition",
    "get_instance",
    "get_task",
    "history",
    "instance_data",
    "last_assignment",
    "latest_definition",
    "lock_task",
    "lock_task_with_data",
    "move_timers",
    "open_tasks",
    "reassign_task",
    "reassign_task_with",
    "start",
    "task_form",
]
