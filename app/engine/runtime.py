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
from functools import cache
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import bindparam, select, text
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError
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
from app.engine.serializer import STATE_FORMAT, dump_state, load_data, load_state, restore_specs
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
    _check_format(instance.id, instance.state_format)


def _check_format(instance_id: int, state_format: str) -> None:
    if state_format != STATE_FORMAT:
        # Another SpiffWorkflow release or our own format change: loading could misread it.
        raise ProcessError(
            f"流程实例 {instance_id} 的保存格式为 {state_format}，当前版本只能读取 "
            f"{STATE_FORMAT}，请先迁移实例数据",
            f"process instance {instance_id} was saved as {state_format}; this "
            f"release reads {STATE_FORMAT}; migrate the stored instances first",
        )


def restore_data(instance_id: int, state: str, state_format: str) -> dict:
    """The data of a state read without its instance object, as its latest task sees it."""
    _check_format(instance_id, state_format)
    return load_data(state)


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
    return load_step(instance, actor)


def load_step(instance: ProcessInstance, actor: str | None) -> Step:
    """A step of an instance whose row this transaction has locked and read."""
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
    finishing = workflow.is_completed() and instance.status == "running"
    instance.state = dump_state(workflow)
    instance.state_format = STATE_FORMAT
    instance.updated_at = now
    if finishing:
        instance.status = "completed"
        instance.ended_at = now
    db_session.flush()  # assigns the id of a new instance; checks the version of an old one
    WORKFLOWS.keep(instance.id, instance.state, workflow)
    writes = StepWrites()
    stepped = plan_step(step, now, writes, finishing=finishing)
    writes.execute(db_session)
    stepped.send(db_session)


def save_steps(
    db_session: Session, steps: list[Step], *, now: datetime
) -> list[tuple[Step, Exception]]:
    """Save a batch of steps of loaded (and locked) instances: one round trip per statement
    for the whole batch, then the signal of each step in order; the caller commits.

    A step whose projections cannot be worked out (an expression of a task that opened) is
    left unsaved and returned with its error. An error while writing, or in a receiver,
    propagates with part of the batch written: the caller rolls the transaction back.
    """
    writes, failed = StepWrites(), []
    saved: list[tuple[Step, dict, Stepped]] = []
    for step in steps:
        instance, workflow = step.instance, step.workflow
        try:
            finishing = workflow.is_completed() and instance.status == "running"
            values = {
                "b_id": instance.id,
                "b_version": instance.version,
                "state": dump_state(workflow),
                "state_format": STATE_FORMAT,
                "updated_at": now,
                "status": "completed" if finishing else instance.status,
                "ended_at": now if finishing else instance.ended_at,
                "version": instance.version + 1,
            }
            own = StepWrites()
            stepped = plan_step(step, now, own, finishing=finishing)
        except Exception as exc:
            failed.append((step, exc))
            continue
        writes.extend(own)
        saved.append((step, values, stepped))
    if saved:
        result = db_session.execute(_UPDATE_INSTANCE, [values for _, values, _ in saved])
        if result.rowcount != len(saved):
            # Never on PostgreSQL, where the rows are locked; kept as the version check.
            raise StaleDataError(
                f"{len(saved) - result.rowcount} of {len(saved)} process instances were "
                "changed by another transaction"
            )
        for step, values, _ in saved:
            for key in ("state", "state_format", "updated_at", "status", "ended_at", "version"):
                set_committed_value(step.instance, key, values[key])
            WORKFLOWS.keep(step.instance.id, values["state"], step.workflow)
    writes.execute(db_session)
    for _, _, stepped in saved:
        stepped.send(db_session)
    return failed


_INSTANCES = ProcessInstance.__table__
_UPDATE_INSTANCE = (
    _INSTANCES.update()
    .where(_INSTANCES.c.id == bindparam("b_id"), _INSTANCES.c.version == bindparam("b_version"))
    .values(
        {
            name: bindparam(name)
            for name in ("state", "state_format", "updated_at", "status", "ended_at", "version")
        }
    )
)


@dataclass
class Stepped:
    """What the instance_stepped signal of one saved step says."""

    instance: ProcessInstance
    waiting_on: list[str]
    completed: int

    def send(self, db_session: Session) -> None:
        instance_stepped.send(
            self.instance,
            db_session=db_session,
            waiting_on=self.waiting_on,
            completed=self.completed,
        )


@dataclass
class StepWrites:
    """The rows that saving steps writes besides the instance row, statement by statement, so
    that a batch of steps costs one round trip per statement. Executed in this order."""

    completed_tasks: list[dict] = field(default_factory=list)
    cancelled_tasks: list[dict] = field(default_factory=list)
    tasks: list[dict] = field(default_factory=list)
    candidates: list[dict] = field(default_factory=list)
    gone_timers: list[dict] = field(default_factory=list)
    gone_subscriptions: list[dict] = field(default_factory=list)
    timers: list[dict] = field(default_factory=list)
    subscriptions: list[MessageSubscription] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)

    def extend(self, other: StepWrites) -> None:
        for name in self.__dataclass_fields__:
            getattr(self, name).extend(getattr(other, name))

    def execute(self, db_session: Session) -> None:
        closed = [row["b_id"] for row in self.completed_tasks + self.cancelled_tasks]
        for statement, rows in (
            (_COMPLETE_TASK, self.completed_tasks),
            (_CANCEL_TASK, self.cancelled_tasks),
            (_bulk(HumanTask), self.tasks),
            (_bulk(HumanTaskCandidate), self.candidates),
            (_DELETE_TIMER, self.gone_timers),
            (_DELETE_SUBSCRIPTION, self.gone_subscriptions),
            (_bulk(Timer), self.timers),
        ):
            if rows:
                db_session.execute(statement, rows)
        expire_loaded(db_session, HumanTask, closed)
        if self.timers:
            announce_timers(db_session, min(row["due_at"] for row in self.timers))
        for subscription in self.subscriptions:
            db_session.merge(subscription)
        if self.events:
            db_session.execute(_bulk(ProcessEvent), self.events)


_TASKS, _TIMERS = HumanTask.__table__, Timer.__table__
_SUBSCRIPTIONS = MessageSubscription.__table__
_COMPLETE_TASK = (
    _TASKS.update()
    .where(_TASKS.c.id == bindparam("b_id"))
    .values(status="completed", ended_at=bindparam("b_at"), completed_by=bindparam("b_actor"))
)
_CANCEL_TASK = (
    _TASKS.update()
    .where(_TASKS.c.id == bindparam("b_id"))
    .values(status="cancelled", ended_at=bindparam("b_at"))
)
# By instance first: timer.task_id has no index, timer.instance_id has.
_DELETE_TIMER = _TIMERS.delete().where(
    _TIMERS.c.instance_id == bindparam("b_instance"), _TIMERS.c.task_id == bindparam("b_task")
)
_DELETE_SUBSCRIPTION = _SUBSCRIPTIONS.delete().where(
    _SUBSCRIPTIONS.c.instance_id == bindparam("b_instance"),
    _SUBSCRIPTIONS.c.message_name == bindparam("b_name"),
)


def plan_step(step: Step, now: datetime, writes: StepWrites, *, finishing: bool) -> Stepped:
    """Add the projection rows and events of a step to ``writes`` (no database access);
    ``finishing``: the step completes the instance."""
    instance, workflow = step.instance, step.workflow
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

    _close_tasks(writes, closed_tasks, step.actor, now)
    _open_tasks(writes, step, opened, now)
    _refresh_waits(writes, instance, new_timers, new_messages, gone_waits)
    if finishing:
        events.append(_process_event(instance, "process_completed", step.actor, now))
    writes.events += events
    completed = sum(1 for status in closed_tasks.values() if status == "completed")
    waiting_on = [
        task.task_spec.bpmn_name or task.task_spec.bpmn_id
        for task in workflow.get_tasks(state=TaskState.READY, manual=True)
    ]
    return Stepped(instance, waiting_on, completed)


@cache
def _bulk(model):
    # Core inserts on the hot path: the ORM's bulk path costs more than the statement itself,
    # and building the statement every time costs about as much as running it.
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


def _close_tasks(writes: StepWrites, closed: dict[str, str], actor, now) -> None:
    for task_id, status in closed.items():
        if status == "completed":
            writes.completed_tasks.append({"b_id": task_id, "b_at": now, "b_actor": actor})
        else:
            writes.cancelled_tasks.append({"b_id": task_id, "b_at": now})


def _open_tasks(writes: StepWrites, step: Step, opened: list, now: datetime) -> None:
    """The human_task rows (and their candidates) of the user tasks that became ready."""
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
    writes.tasks += rows
    writes.candidates += candidates


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


def _refresh_waits(writes: StepWrites, instance, new_timers, new_messages, gone_waits) -> None:
    writes.gone_timers += [
        {"b_instance": instance.id, "b_task": str(task.id)} for task in gone_waits
    ]
    names = {
        task.task_spec.event_definition.name
        for task in gone_waits
        if isinstance(task.task_spec.event_definition, MessageEventDefinition)
    }
    writes.gone_subscriptions += [
        {"b_instance": instance.id, "b_name": name} for name in sorted(names)
    ]
    writes.timers += [
        {
            "instance_id": instance.id,
            "task_id": str(task.id),
            "element_id": task.task_spec.bpmn_id,
            "due_at": timer_due(task),
            "attempts": 0,
        }
        for task in new_timers
    ]
    writes.subscriptions += [
        MessageSubscription(
            instance_id=instance.id,
            message_name=task.task_spec.event_definition.name,
            element_id=task.task_spec.bpmn_id,
        )
        for task in new_messages
    ]


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
