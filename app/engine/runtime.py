"""One engine step: lock and load an instance, act, save state and refresh the projections.

The projections (human_task, timer, message_subscription) and the process_event log are
derived from the difference between the task states before and after the step, so a step
costs no extra reads of them.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from app.engine.models import (
    HumanTask,
    HumanTaskCandidate,
    MessageSubscription,
    ProcessDefinition,
    ProcessEvent,
    ProcessInstance,
    Timer,
)
from app.engine.scripting import SCRIPT_ENGINE
from app.engine.serializer import STATE_FORMAT, dump_state, load_state, restore_specs
from app.engine.signals import instance_stepped
from app.errors import NotFound, ProcessError
from app.rules.expressions import evaluate
from app.timeutil import utcnow

_PLACEHOLDER = re.compile(r"^\s*\$\{(.*)\}\s*$", re.S)
_LIVE = TaskState.READY | TaskState.WAITING | TaskState.STARTED

# Timer workers LISTEN on this channel (PostgreSQL) and look at the timer table at least once
# per horizon; a transaction that writes a timer due sooner than that announces it.
TIMER_CHANNEL = "paidan_timers"
TIMER_NOTIFY_HORIZON = timedelta(minutes=1)


@dataclass
class Step:
    """An instance loaded for one step, with the task states it had when loaded."""

    instance: ProcessInstance
    workflow: BpmnWorkflow
    actor: str | None
    before: dict[UUID, int] = field(default_factory=dict)
    # Extra data for the event of a task completed by a person (task id -> data).
    submitted: dict[UUID, dict] = field(default_factory=dict)
    start_data: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Compiled:
    """What a step needs of a definition version: its spec objects and its forms."""

    spec: object
    subprocess_specs: dict
    forms: dict


_COMPILED: dict[str, Compiled] = {}


def compiled(definition: ProcessDefinition) -> Compiled:
    """The compiled form of a definition version, restored once per process.

    Versions are immutable and named by their content hash, so this cache can never be stale,
    only cold; the large deferred columns are read only when it is.
    """
    cached = _COMPILED.get(definition.content_hash)
    if cached is None:
        spec, subprocess_specs = restore_specs(definition.spec_json)
        cached = Compiled(spec, subprocess_specs, dict(definition.forms))
        _COMPILED[definition.content_hash] = cached
    return cached


def cached_compiled(content_hash: str) -> Compiled | None:
    """The compiled definition version of that content hash, if this process restored it."""
    return _COMPILED.get(content_hash)


def specs_of(definition: ProcessDefinition):
    found = compiled(definition)
    return found.spec, found.subprocess_specs


def check_format(instance: ProcessInstance) -> None:
    if instance.state_format != STATE_FORMAT:
        # Another SpiffWorkflow release or our own format change: loading could misread it.
        raise ProcessError(
            f"流程实例 {instance.id} 的保存格式为 {instance.state_format}，当前版本只能读取 "
            f"{STATE_FORMAT}，请先迁移实例数据",
            f"process instance {instance.id} was saved as {instance.state_format}; this "
            f"release reads {STATE_FORMAT}; migrate the stored instances first",
        )


def load_workflow(instance: ProcessInstance) -> BpmnWorkflow:
    check_format(instance)
    return _restore(instance)


def _restore(instance: ProcessInstance) -> BpmnWorkflow:
    spec, subprocess_specs = specs_of(instance.definition)
    return load_state(instance.state, spec, subprocess_specs, SCRIPT_ENGINE)


class WorkflowCache:
    """Workflows this process saved last, each kept with the exact text it was saved as.

    A step takes its workflow out of the cache only when the stored state text (read under
    the row lock) is identical to the cached text, so the object is what deserializing would
    give; anything else (another process wrote, a transaction rolled back) falls back to
    deserializing. Correctness never depends on it; it saves one deserialization per step.
    """

    def __init__(self, size: int = 1000):
        self.size = size
        self._entries: OrderedDict[int, tuple[str, BpmnWorkflow]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, instance: ProcessInstance) -> BpmnWorkflow | None:
        with self._lock:
            entry = self._entries.pop(instance.id, None)
        if entry is not None and entry[0] == instance.state:
            return entry[1]
        return None

    def keep(self, instance_id: int, state: str, workflow: BpmnWorkflow) -> None:
        with self._lock:
            self._entries[instance_id] = (state, workflow)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


WORKFLOWS = WorkflowCache()


def new_step(instance: ProcessInstance, actor: str | None) -> Step:
    spec, subprocess_specs = specs_of(instance.definition)
    workflow = BpmnWorkflow(spec, subprocess_specs, script_engine=SCRIPT_ENGINE)
    return Step(instance=instance, workflow=workflow, actor=actor)


def open_step(db_session: Session, instance_id: int, actor: str | None) -> Step:
    """Lock the instance row (PostgreSQL; SQLite relies on the version counter) and load it."""
    instance = db_session.execute(
        select(ProcessInstance)
        .where(ProcessInstance.id == instance_id)
        .with_for_update(of=ProcessInstance)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if instance is None:
        raise NotFound(
            f"流程实例 {instance_id} 不存在", f"process instance {instance_id} not found"
        )
    check_format(instance)  # also for a cached workflow: the row may have another format
    workflow = WORKFLOWS.take(instance) or _restore(instance)
    before = {task.id: task.state for task in workflow.tasks.values()}
    return Step(instance=instance, workflow=workflow, actor=actor, before=before)


def run_engine(step: Step, action: Callable[[], object]) -> None:
    """Run ``action`` and then the engine until it waits; engine errors become 422s."""
    try:
        action()
        step.workflow.do_engine_steps()
    except SpiffWorkflowException as exc:
        raise process_error(step, exc) from None


def process_error(step: Step, exc: SpiffWorkflowException) -> ProcessError:
    task = getattr(exc, "task", None)
    element = task.task_spec.bpmn_id if task is not None else None
    label = task.task_spec.bpmn_name if task is not None else None
    where = f"元素 {element}（{label}）" if label else f"元素 {element}" if element else "流程"
    cause = getattr(exc, "error", None) or exc
    detail = str(cause).splitlines()[0]
    definition = step.instance.definition
    return ProcessError(
        f"流程 {definition.key} 第 {definition.version} 版：{where} 无法继续：{detail}",
        f"process {definition.key} version {definition.version}: element {element or '?'} "
        f"cannot continue: {detail}",
    )


def save_step(db_session: Session, step: Step, *, now: datetime | None = None) -> None:
    """Write state, projections and events of the step; the caller commits."""
    now = now or utcnow()
    instance, workflow = step.instance, step.workflow
    instance.state = dump_state(workflow)
    instance.state_format = STATE_FORMAT
    instance.updated_at = now
    if workflow.is_completed() and instance.status == "running":
        instance.status = "completed"
        instance.ended_at = now
    db_session.flush()  # assigns the id of a new instance; checks the version of an old one
    WORKFLOWS.keep(instance.id, instance.state, workflow)

    events: list[dict] = []
    if not step.before:  # a new instance
        data = json.loads(json.dumps(step.start_data, default=str))
        events.append(_process_event(instance, "process_started", step.actor, now, data))
    opened: list = []
    closed_tasks: dict[str, str] = {}
    new_timers, gone_waits, new_messages = [], [], []
    changed = [
        task
        for task in workflow.tasks.values()
        if step.before.get(task.id) != task.state and task.task_spec.bpmn_id is not None
    ]
    changed.sort(key=lambda task: task.last_state_change)
    for task in changed:
        was = step.before.get(task.id, TaskState.FUTURE)
        spec = task.task_spec
        definition = getattr(spec, "event_definition", None)
        if task.state == TaskState.READY and spec.manual:
            opened.append(task)
        elif was == TaskState.READY and spec.manual and task.state != TaskState.READY:
            closed_tasks[str(task.id)] = (
                "completed" if task.state == TaskState.COMPLETED else "cancelled"
            )
        if task.state == TaskState.WAITING and not was & _LIVE:
            if isinstance(definition, TimerEventDefinition):
                new_timers.append(task)
            elif isinstance(definition, MessageEventDefinition):
                new_messages.append(task)
        elif was == TaskState.WAITING and isinstance(
            definition, TimerEventDefinition | MessageEventDefinition
        ):
            gone_waits.append(task)
        event_type = _event_type(task, was, definition)
        if event_type:
            events.append(_event_row(step, task, event_type, now))

    _close_tasks(db_session, closed_tasks, step.actor, now)
    _open_tasks(db_session, step, opened, now)
    _refresh_waits(db_session, instance, new_timers, new_messages, gone_waits)
    if instance.status == "completed" and instance.ended_at == now:
        events.append(_process_event(instance, "process_completed", step.actor, now))
    if events:
        db_session.execute(_bulk(ProcessEvent), events)
    completed = sum(1 for status in closed_tasks.values() if status == "completed")
    waiting_on = [
        task.task_spec.bpmn_name or task.task_spec.bpmn_id
        for task in workflow.get_tasks(state=TaskState.READY, manual=True)
    ]
    instance_stepped.send(
        instance, db_session=db_session, waiting_on=waiting_on, completed=completed
    )


def _bulk(model):
    # Core inserts on the hot path: the ORM's bulk path costs more than the statement itself.
    return model.__table__.insert()


def _event_type(task, was: int, definition) -> str | None:
    state = task.state
    if state == TaskState.COMPLETED:
        if isinstance(definition, TimerEventDefinition):
            return "timer_fired"
        if isinstance(definition, MessageEventDefinition) and was & _LIVE:
            return "message_received"
        return "task_completed" if task.task_spec.manual else "element_completed"
    if state == TaskState.READY and task.task_spec.manual:
        return "task_created"
    if state == TaskState.CANCELLED and was & _LIVE:
        return "element_cancelled"
    return None


def _event_row(step: Step, task, event_type: str, now: datetime) -> dict:
    spec = task.task_spec
    data = None
    if event_type in {"task_completed", "element_completed", "message_received"}:
        data = step.submitted.get(task.id) or _data_delta(task)
    return {
        "instance_id": step.instance.id,
        "ticket_id": step.instance.ticket_id,
        "element_id": spec.bpmn_id,
        "element_type": spec.__class__.__name__,
        "element_name": spec.bpmn_name,
        "event_type": event_type,
        "actor": step.actor if spec.manual or event_type == "message_received" else None,
        "at": now,
        "data": data or None,
    }


def _process_event(instance: ProcessInstance, event_type: str, actor, now, data=None) -> dict:
    return {
        "instance_id": instance.id,
        "ticket_id": instance.ticket_id,
        "element_id": instance.process_key,
        "element_type": "Process",
        "element_name": instance.definition.name or instance.process_key,
        "event_type": event_type,
        "actor": actor,
        "at": now,
        "data": data,
    }


def _data_delta(task) -> dict:
    """What this task added or changed in the data, JSON-safe."""
    parent = task.parent.data if task.parent is not None else {}
    delta = {k: v for k, v in task.data.items() if k not in parent or parent[k] != v}
    return json.loads(json.dumps(delta, default=str)) if delta else {}


def expire_loaded(db_session: Session, model, ids) -> None:
    """Expire objects of ``model`` already in the session that a Core UPDATE just changed."""
    for ident in ids:
        loaded = db_session.identity_map.get(identity_key(model, ident))
        if loaded is not None:
            db_session.expire(loaded)


def _close_tasks(db_session: Session, closed: dict[str, str], actor, now) -> None:
    for status in ("completed", "cancelled"):
        ids = [task_id for task_id, s in closed.items() if s == status]
        if ids:
            values = {"status": status, "ended_at": now}
            if status == "completed":
                values["completed_by"] = actor
            table = HumanTask.__table__
            db_session.execute(table.update().where(table.c.id.in_(ids)).values(**values))
            expire_loaded(db_session, HumanTask, ids)


def _open_tasks(db_session: Session, step: Step, opened: list, now: datetime) -> None:
    """Insert the human_task rows (and their candidates) of the user tasks that became ready."""
    rows, candidates = [], []
    for task in opened:
        spec = task.task_spec
        extensions = getattr(spec, "extensions", None) or {}
        groups = _names(_resolve(step, task, extensions.get("camunda:candidateGroups")))
        users = _names(_resolve(step, task, extensions.get("camunda:candidateUsers")))
        assignee = _resolve(step, task, extensions.get("camunda:assignee"))
        if not (groups or users or assignee) and extensions.get("lane"):
            groups = [extensions["lane"]]  # a lane names the group when the task names none
        task_id = str(task.id)
        rows.append(
            {
                "id": task_id,
                "instance_id": step.instance.id,
                "ticket_id": step.instance.ticket_id,
                "element_id": spec.bpmn_id,
                "name": spec.bpmn_name or spec.bpmn_id,
                "form_key": extensions.get("camunda:formKey") or _form_key(spec),
                "assignee": str(assignee) if assignee not in (None, "") else None,
                "due_at": _due_at(step, task, extensions.get("camunda:dueDate"), now),
                "status": "open",
                "created_at": now,
            }
        )
        candidates += [{"task_id": task_id, "kind": "group", "value": g} for g in groups]
        candidates += [{"task_id": task_id, "kind": "user", "value": u} for u in users]
    if rows:
        db_session.execute(_bulk(HumanTask), rows)
    if candidates:
        db_session.execute(_bulk(HumanTaskCandidate), candidates)


def _form_key(spec) -> str | None:
    form = getattr(spec, "form", None)
    return getattr(form, "key", None) if form is not None else None


def _resolve(step: Step, task, value: str | None):
    """`${expr}` is evaluated against the task data; anything else is a literal."""
    if not value:
        return None
    match = _PLACEHOLDER.match(value)
    if not match:
        return value
    try:
        return evaluate(match.group(1), task.data)
    except Exception as exc:  # any failure, ExpressionError included, names the element
        definition = step.instance.definition
        raise ProcessError(
            f"流程 {definition.key} 第 {definition.version} 版：用户任务 {task.task_spec.bpmn_id} "
            f"的表达式 `{value}` 无法计算：{exc}",
            f"process {definition.key} version {definition.version}: expression `{value}` of "
            f"user task {task.task_spec.bpmn_id} cannot be evaluated: {exc}",
        ) from None


def _names(value) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list | tuple | set) else str(value).split(",")
    return sorted({str(item).strip() for item in items if str(item).strip()})


def _due_at(step: Step, task, expression: str | None, now: datetime) -> datetime | None:
    value = _resolve(step, task, expression)
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value
    text = str(value).strip()
    if text.upper().startswith("P"):
        parsed = TimerEventDefinition.parse_iso_duration(text)
        return now + TimerEventDefinition.get_timedelta_from_start(parsed, now)
    return datetime.fromisoformat(text)


def _refresh_waits(db_session, instance, new_timers, new_messages, gone_waits) -> None:
    if gone_waits:
        gone = [str(task.id) for task in gone_waits]
        timers = Timer.__table__
        # By instance first: timer.task_id has no index, timer.instance_id has.
        db_session.execute(
            timers.delete().where(timers.c.instance_id == instance.id, timers.c.task_id.in_(gone))
        )
        names = [
            task.task_spec.event_definition.name
            for task in gone_waits
            if isinstance(task.task_spec.event_definition, MessageEventDefinition)
        ]
        if names:
            db_session.execute(
                delete(MessageSubscription).where(
                    MessageSubscription.instance_id == instance.id,
                    MessageSubscription.message_name.in_(names),
                )
            )
    if new_timers:
        rows = [
            {
                "instance_id": instance.id,
                "task_id": str(task.id),
                "element_id": task.task_spec.bpmn_id,
                "due_at": timer_due(task),
                "attempts": 0,
            }
            for task in new_timers
        ]
        db_session.execute(_bulk(Timer), rows)
        announce_timers(db_session, min(row["due_at"] for row in rows))
    for task in new_messages:
        db_session.merge(
            MessageSubscription(
                instance_id=instance.id,
                message_name=task.task_spec.event_definition.name,
                element_id=task.task_spec.bpmn_id,
            )
        )


def announce_timers(db_session: Session, due_at: datetime) -> None:
    """Wake the sleeping timer workers when this transaction commits, if ``due_at`` is sooner
    than they would look again (PostgreSQL; on SQLite workers poll)."""
    if db_session.get_bind().dialect.name != "postgresql":
        return
    if due_at - utcnow() < TIMER_NOTIFY_HORIZON:
        # Notifications with the same payload in one transaction are delivered once.
        db_session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": TIMER_CHANNEL})


def timer_due(task) -> datetime:
    """The due time SpiffWorkflow computed when the timer started waiting."""
    value = task.internal_data.get("event_value")
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    raise ProcessError(
        f"定时器 {task.task_spec.bpmn_id} 没有到期时间",
        f"timer {task.task_spec.bpmn_id} has no due time",
    )
