"""The BPMN engine: SpiffWorkflow behind a small facade. Imports no domain package."""

from app.engine.service import (
    FireReport,
    active_elements,
    complete_task,
    deliver_message,
    deploy,
    fire_due_timers,
    get_instance,
    get_task,
    history,
    instance_data,
    latest_definition,
    open_tasks,
    start,
)

__all__ = [
    "FireReport",
    "active_elements",
    "complete_task",
    "deliver_message",
    "deploy",
    "fire_due_timers",
    "get_instance",
    "get_task",
    "history",
    "instance_data",
    "latest_definition",
    "open_tasks",
    "start",
]
