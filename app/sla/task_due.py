"""Due dates of user tasks that follow the work order's SLA clock.

A user task whose diagram gives it a ``camunda:dueDate`` is due when the SLA says, on the
clock's business calendar, as soon as its work order has SLA clocks: the response deadline while
the response clock still runs (nobody has responded yet: the task must be taken up, or the site
reached, by then), else the resolution deadline. While the clock is paused the due date is
``clock.NEVER``, which the pages show as "已暂停 / Paused". Tasks of work orders without clocks
(no policy matched) and tasks whose deadline is unknown (a year without holiday data) keep the
due date of their own expression. Tasks without ``camunda:dueDate`` stay without one, and so
does the expression of a task whose Camunda property ``sla_due`` is ``own`` (a follow-up call
three days after the repair is due then, whatever the SLA says); ``clock``, the default, follows.

The engine computes the expression when the task opens; ``bpmn_timers.move_timers_of`` replaces
it before the step's transaction commits, and again whenever the clock changes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.engine.lint import SLA_DUE_OWN, SLA_DUE_PROPERTY, camunda_properties
from app.engine.models import HumanTask, ProcessDefinition
from app.engine.parser import CAMUNDA_NS, NS, load_xml
from app.sla.clock import NEVER, is_paused
from app.sla.sla_models import SlaClock

# Per definition content hash: versions are immutable, so this is never stale, only cold.
_DUE_TASKS: dict[str, frozenset[str]] = {}


def due_date_tasks(definition: ProcessDefinition) -> frozenset[str]:
    """Element ids of the user tasks of a definition version whose ``camunda:dueDate`` follows
    the clock (all that have one, but those whose ``sla_due`` property says ``own``)."""
    found = _DUE_TASKS.get(definition.content_hash)
    if found is None:
        root = load_xml(definition.bpmn_filename, definition.bpmn_xml.encode())
        found = frozenset(
            task.get("id")
            for task in root.iterfind(".//bpmn:userTask", NS)
            if (task.get(f"{{{CAMUNDA_NS}}}dueDate") or "").strip()
            and camunda_properties(task).get(SLA_DUE_PROPERTY) != SLA_DUE_OWN
        )
        _DUE_TASKS[definition.content_hash] = found
    return found


def clock_due(clocks: dict[str, SlaClock]) -> datetime | None:
    """The due date the clocks give a task: the response deadline while the response clock
    runs, else the resolution deadline; ``NEVER`` while that clock is paused; None when it is
    unknown or there is no clock (the task keeps its own)."""
    response, resolution = clocks.get("response"), clocks.get("resolution")
    clock = response if response is not None and response.stopped_at is None else resolution
    if clock is None:
        return None
    if is_paused(clock):
        return NEVER
    return clock.deadline


def follow_clock(
    db_session: Session, instance_id: int, elements: frozenset[str], clocks: dict[str, SlaClock]
) -> int:
    """Give the instance's open tasks among ``elements`` the clocks' due date; returns how many
    changed. Written by the commit's flush (the caller runs before it)."""
    due = clock_due(clocks) if elements else None
    if due is None:
        return 0
    tasks = db_session.scalars(
        select(HumanTask).where(
            HumanTask.instance_id == instance_id,
            HumanTask.status == "open",
            HumanTask.element_id.in_(sorted(elements)),
        )
    ).all()
    changed = [task for task in tasks if task.due_at != due]
    for task in changed:
        task.due_at = due
    return len(changed)
