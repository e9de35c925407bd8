"""The engine's verbs: deploy, start, complete a task, reassign a task, fire timers, deliver a
message, and queries.

Every verb is one engine step in the caller's transaction; only fire_due_timers, which is a
job, commits (each timer in its own transaction).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import PurePath
from uuid import UUID

from SpiffWorkflow.bpmn.util.event import BpmnEvent
from SpiffWorkflow.camunda.specs.event_definitions import MessageEventDefinition
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, selectinload

from app.engine import parser as bpmn
from app.engine.models import (
    HumanTask,
    HumanTaskCandidate,
    MessageSubscription,
    ProcessDefinition,
    ProcessEvent,
    ProcessInstance,
    Timer,
)
from app.engine.runtime import (
    Step,
    compiled,
    load_workflow,
    new_step,
    open_step,
    run_engine,
    save_step,
)
from app.engine.serializer import STATE_FORMAT, dump_specs
from app.errors import Conflict, InvalidInput, NotFound
from app.forms.validation import read_form, validate
from app.timeutil import utcnow

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- deploy


def deploy(
    *, db_session: Session, files: list[tuple[str, bytes]], actor: str | None = None
) -> list[ProcessDefinition]:
    """Store a new immutable version of every executable process in ``files``.

    A process whose sources are unchanged since its latest version keeps that version.
    Nothing is stored unless every file passes every check.
    """
    bundle = _read_bundle(files)
    known_forms = set(bundle.forms)
    bpmn.check_references(bundle, known_forms)
    parser = bpmn.build_parser(bundle)
    shared = {
        "dmn": dict(sorted(bundle.dmn_text.items())),
        "forms": dict(sorted(bundle.forms.items())),
    }
    deployed = []
    for filename, root in bundle.bpmn.items():
        for process in bpmn.executable_processes(root):
            key = process.get("id")
            spec, subprocess_specs = bpmn.parse_spec(parser, key)
            content_hash = hashlib.sha256(
                json.dumps({"bpmn": bundle.bpmn_text[filename], **shared}, sort_keys=True).encode()
            ).hexdigest()
            latest = latest_definition(db_session=db_session, key=key, required=False)
            if latest is not None and latest.content_hash == content_hash:
                deployed.append(latest)
                continue
            definition = ProcessDefinition(
                key=key,
                version=(latest.version + 1) if latest else 1,
                name=process.get("name") or key,
                content_hash=content_hash,
                bpmn_filename=filename,
                bpmn_xml=bundle.bpmn_text[filename],
                dmn_sources=shared["dmn"],
                forms=shared["forms"],
                spec_json=dump_specs(spec, subprocess_specs),
                elements=_elements(process),
                deployed_by=actor,
            )
            db_session.add(definition)
            deployed.append(definition)
    if not deployed:
        raise InvalidInput(
            '上传的文件中没有可执行的流程（isExecutable="true"）',
            'the upload contains no executable process (isExecutable="true")',
        )
    db_session.flush()
    return deployed


def _read_bundle(files: list[tuple[str, bytes]]) -> bpmn.Bundle:
    if not files:
        raise InvalidInput("请上传至少一个 .bpmn 文件", "upload at least one .bpmn file")
    bundle = bpmn.Bundle()
    for filename, data in files:
        name = PurePath(filename or "").name
        suffix = PurePath(name).suffix.lower()
        if suffix == ".bpmn":
            root = bpmn.load_xml(name, data)
            bpmn.check_bpmn_expressions(name, root)
            bundle.bpmn[name] = root
            bundle.bpmn_text[name] = data.decode("utf-8")
        elif suffix == ".dmn":
            root = bpmn.load_xml(name, data)
            bpmn.check_dmn_expressions(name, root)
            bundle.dmn[name] = root
            bundle.dmn_text[name] = data.decode("utf-8")
        elif suffix == ".form":
            schema = read_form(name, data)
            if schema["id"] in bundle.forms:
                raise InvalidInput(
                    f"表单 id {schema['id']} 重复（{name}）",
                    f"form id {schema['id']} is repeated ({name})",
                )
            bundle.forms[schema["id"]] = schema
        else:
            raise InvalidInput(
                f"不支持的文件类型：{name}（只接受 .bpmn、.dmn、.form）",
                f"unsupported file type: {name} (only .bpmn, .dmn and .form are accepted)",
            )
    if not bundle.bpmn:
        raise InvalidInput("请上传至少一个 .bpmn 文件", "upload at least one .bpmn file")
    return bundle


def _elements(process) -> dict:
    elements = {}
    for node in process.iter():
        ident = node.get("id")
        if ident and node is not process:
            elements[ident] = {"type": bpmn.etree.QName(node).localname, "name": node.get("name")}
    return elements


def latest_definition(
    *, db_session: Session, key: str, required: bool = True
) -> ProcessDefinition | None:
    definition = db_session.execute(
        select(ProcessDefinition)
        .where(ProcessDefinition.key == key)
        .order_by(ProcessDefinition.version.desc())
        .limit(1)
    ).scalar_one_or_none()
    if definition is None and required:
        raise NotFound(f"流程 {key} 尚未部署", f"process {key} is not deployed")
    return definition


def definition_versions(*, key: str):
    """A query of every version of process ``key``, newest first (for paging)."""
    return (
        select(ProcessDefinition)
        .where(ProcessDefinition.key == key)
        .order_by(ProcessDefinition.version.desc())
    )


def get_definition(*, db_session: Session, key: str, version: int) -> ProcessDefinition:
    definition = db_session.scalar(
        select(ProcessDefinition).where(
            ProcessDefinition.key == key, ProcessDefinition.version == version
        )
    )
    if definition is None:
        raise NotFound(f"流程 {key} 没有第 {version} 版", f"process {key} has no version {version}")
    return definition


# ---------------------------------------------------------------- start and complete


def start(
    *,
    db_session: Session,
    process_key: str,
    data: dict | None = None,
    business_key: str | None = None,
    ticket_id: int | None = None,
    actor: str | None = None,
) -> ProcessInstance:
    """Start the latest version of ``process_key`` and run it until it waits."""
    definition = latest_definition(db_session=db_session, key=process_key)
    data = dict(data or {})
    validate(None, data)
    now = utcnow()
    instance = ProcessInstance(
        definition=definition,
        definition_id=definition.id,
        process_key=definition.key,
        business_key=business_key,
        ticket_id=ticket_id,
        status="running",
        started_at=now,
        started_by=actor,
        state="",
        state_format=STATE_FORMAT,
    )
    db_session.add(instance)
    step = new_step(instance, actor)
    step.start_data = data

    def begin():
        start_task = step.workflow.get_tasks(state=TaskState.READY)[0]
        start_task.data.update(data)

    run_engine(step, begin)
    save_step(db_session, step, now=now)
    return instance


def complete_task(
    *, db_session: Session, task_id: str, data: dict | None = None, actor: str | None = None
) -> ProcessInstance:
    """Complete an open user task with form data; a second completion gets a 409."""
    row = get_task(db_session=db_session, task_id=task_id)
    if row.status != "open":
        raise Conflict(
            f"任务 {row.name}（{task_id}）已经{_STATUS_ZH[row.status]}，不能再提交",
            f"task {row.name} ({task_id}) is already {row.status}",
        )
    step = open_step(db_session, row.instance_id, actor)
    task = step.workflow.get_task_from_id(UUID(task_id))
    if task is None or task.state != TaskState.READY:
        raise Conflict(
            f"任务 {row.name}（{task_id}）已被他人处理",
            f"task {row.name} ({task_id}) was already handled",
        )
    schema = compiled(step.instance.definition).forms.get(row.form_key) if row.form_key else None
    cleaned = validate(schema, data or {})
    step.submitted[task.id] = cleaned

    def act():
        task.set_data(**cleaned)
        task.run()

    run_engine(step, act)
    save_step(db_session, step)
    return step.instance


_STATUS_ZH = {"completed": "完成", "cancelled": "取消", "open": "打开"}


# ---------------------------------------------------------------- assignment

# Events of a person changing who holds or is offered a task; the process itself is not stepped.
ASSIGNMENT_EVENTS = ("task_claimed", "task_unclaimed", "task_transferred")


def lock_task(*, db_session: Session, task_id: str) -> HumanTask:
    """The task read again after locking its instance's row.

    Claims, transfers and completions of one task therefore happen one after another, and each
    sees what the one before it left (PostgreSQL; SQLite takes its write lock at BEGIN).
    """
    instance_id = db_session.scalar(select(HumanTask.instance_id).where(HumanTask.id == task_id))
    if instance_id is None:
        raise NotFound(f"任务 {task_id} 不存在", f"task {task_id} not found")
    db_session.execute(
        select(ProcessInstance.id).where(ProcessInstance.id == instance_id).with_for_update()
    )
    return db_session.execute(
        select(HumanTask)
        .where(HumanTask.id == task_id)
        .options(selectinload(HumanTask.candidates))
        .execution_options(populate_existing=True)
    ).scalar_one()


def assignment(task: HumanTask) -> dict:
    """Who holds the task and to whom it is offered, as history and the audit trail show it."""
    return {
        "assignee": task.assignee,
        "candidate_groups": task.candidate_groups,
        "candidate_users": task.candidate_users,
    }


def reassign_task(
    *,
    db_session: Session,
    task: HumanTask,
    event_type: str,
    assignee: str | None,
    candidate_groups: list[str] | None = None,
    reason: str | None = None,
    actor: str | None = None,
) -> tuple[dict, dict]:
    """Give an open task (locked with lock_task) to ``assignee``; with ``candidate_groups``,
    offer it to those groups instead of its candidates. The change goes into the instance's
    history as ``event_type`` with {task_id, from, to, reason}; returns (before, after).

    Who may do this is the caller's rule. The workflow state does not change: who works on a
    task is kept in the human_task projection only.
    """
    if event_type not in ASSIGNMENT_EVENTS:
        raise ValueError(f"not an assignment event: {event_type}")
    before = assignment(task)
    task.assignee = assignee
    if candidate_groups is not None:
        # Rows that stay are kept: deleting and re-adding one key in a flush would collide.
        kept = [c for c in task.candidates if c.kind == "group" and c.value in candidate_groups]
        added = sorted(set(candidate_groups) - {c.value for c in kept})
        task.candidates = kept + [
            HumanTaskCandidate(task_id=task.id, kind="group", value=group) for group in added
        ]
    after = assignment(task)
    definition = _definition_of(db_session, task.instance_id)
    db_session.add(
        ProcessEvent(
            instance_id=task.instance_id,
            ticket_id=task.ticket_id,
            element_id=task.element_id,
            element_type=_element_type(definition, task.element_id),
            element_name=task.name,
            event_type=event_type,
            actor=actor,
            at=utcnow(),
            data={"task_id": task.id, "from": before, "to": after, "reason": reason},
        )
    )
    db_session.flush()
    return before, after


def last_assignment(*, db_session: Session, task: HumanTask) -> ProcessEvent | None:
    """The latest claim, unclaim or transfer of ``task``; None while the process's own
    assignment (``camunda:assignee``, candidates) stands."""
    events = db_session.scalars(
        select(ProcessEvent)
        .where(
            ProcessEvent.instance_id == task.instance_id,
            ProcessEvent.element_id == task.element_id,
            ProcessEvent.event_type.in_(ASSIGNMENT_EVENTS),
        )
        .order_by(ProcessEvent.id.desc())
    )
    # One element can open several tasks over time (loops); the task id is in the data.
    return next((event for event in events if (event.data or {}).get("task_id") == task.id), None)


def _definition_of(db_session: Session, instance_id: int) -> ProcessDefinition:
    """The definition version an instance runs, without loading the instance's state."""
    return db_session.execute(
        select(ProcessDefinition)
        .join(ProcessInstance, ProcessInstance.definition_id == ProcessDefinition.id)
        .where(ProcessInstance.id == instance_id)
    ).scalar_one()


def _element_type(definition: ProcessDefinition, element_id: str) -> str | None:
    """The spec class name, as the events written by engine steps carry it."""
    found = compiled(definition)
    for spec in (found.spec, *found.subprocess_specs.values()):
        task_spec = spec.task_specs.get(element_id)
        if task_spec is not None:
            return task_spec.__class__.__name__
    return None


# ---------------------------------------------------------------- timers


@dataclass
class FireReport:
    fired: int = 0
    failed: int = 0


def fire_due_timers(
    *, db_session: Session, now: datetime | None = None, limit: int = 100, retry_seconds: int = 300
) -> FireReport:
    """Fire every due timer, one instance per transaction (this job function commits).

    The instance row is claimed with FOR UPDATE SKIP LOCKED on PostgreSQL, so several workers
    share the work and never fire one timer twice. A timer whose step fails is retried later
    and its error kept on the timer row.
    """
    now = now or utcnow()
    report = FireReport()
    tried: set[int] = set()
    while report.fired + report.failed < limit:
        instance_id = _claim_due_instance(db_session, now, tried)
        if instance_id is None:
            break
        tried.add(instance_id)
        try:
            step = open_step(db_session, instance_id, actor=None)

            def fire(step: Step = step):
                step.workflow.refresh_timers()

            run_engine(step, fire)
            save_step(db_session, step, now=now)
            db_session.commit()
            report.fired += 1
        except Exception as exc:
            db_session.rollback()
            log.exception("timer of process instance %s failed", instance_id)
            _postpone(db_session, instance_id, now, retry_seconds, exc)
            report.failed += 1
    db_session.commit()
    return report


def _claim_due_instance(db_session: Session, now: datetime, tried: set[int]) -> int | None:
    query = (
        select(ProcessInstance.id)
        .join(Timer, Timer.instance_id == ProcessInstance.id)
        .where(Timer.due_at <= now, ProcessInstance.status == "running")
        .order_by(Timer.due_at)
        .limit(1)
        .with_for_update(of=ProcessInstance, skip_locked=True)
    )
    if tried:
        query = query.where(ProcessInstance.id.not_in(tried))
    return db_session.execute(query).scalar_one_or_none()


def _postpone(db_session: Session, instance_id: int, now, retry_seconds: int, exc) -> None:
    try:
        for timer in db_session.scalars(
            select(Timer).where(Timer.instance_id == instance_id, Timer.due_at <= now)
        ):
            timer.attempts += 1
            timer.last_error = str(exc)[:2000]
            timer.due_at = now + timedelta(seconds=retry_seconds * timer.attempts)
        db_session.commit()
    except SQLAlchemyError:
        db_session.rollback()
        log.exception("could not postpone the timers of process instance %s", instance_id)


# ---------------------------------------------------------------- messages


def deliver_message(
    *,
    db_session: Session,
    name: str,
    correlation_key: str,
    payload: dict | None = None,
    actor: str | None = None,
) -> ProcessInstance:
    """Deliver a named message to the one instance waiting for it under ``correlation_key``.

    The application routes by business key; SpiffWorkflow's own correlation does not route.
    """
    matches = db_session.scalars(
        select(ProcessInstance.id)
        .join(MessageSubscription, MessageSubscription.instance_id == ProcessInstance.id)
        .where(
            MessageSubscription.message_name == name,
            ProcessInstance.business_key == correlation_key,
            ProcessInstance.status == "running",
        )
    ).all()
    if not matches:
        raise NotFound(
            f"没有流程实例在等待业务键为 {correlation_key} 的消息 {name}",
            f"no process instance waits for message {name} with key {correlation_key}",
        )
    if len(matches) > 1:
        raise Conflict(
            f"有 {len(matches)} 个流程实例在等待业务键为 {correlation_key} 的消息 {name}，无法确定接收者",
            f"{len(matches)} process instances wait for message {name} with key "
            f"{correlation_key}; the key is ambiguous",
        )
    payload = validate(None, payload or {})
    step = open_step(db_session, matches[0], actor)

    def catch():
        for task in step.workflow.get_tasks(state=TaskState.WAITING):
            definition = getattr(task.task_spec, "event_definition", None)
            if isinstance(definition, MessageEventDefinition) and definition.name == name:
                step.workflow.catch(
                    BpmnEvent(definition, payload={"payload": payload, "result_var": "message"})
                )
                task.set_data(**payload)
                step.submitted[task.id] = payload
                return
        raise Conflict(
            f"流程实例 {matches[0]} 已不再等待消息 {name}",
            f"process instance {matches[0]} no longer waits for message {name}",
        )

    run_engine(step, catch)
    save_step(db_session, step)
    return step.instance


# ---------------------------------------------------------------- queries


def get_task(*, db_session: Session, task_id: str) -> HumanTask:
    row = db_session.get(HumanTask, task_id)
    if row is None:
        raise NotFound(f"任务 {task_id} 不存在", f"task {task_id} not found")
    return row


def get_instance(*, db_session: Session, instance_id: int) -> ProcessInstance:
    instance = db_session.get(ProcessInstance, instance_id)
    if instance is None:
        raise NotFound(
            f"流程实例 {instance_id} 不存在", f"process instance {instance_id} not found"
        )
    return instance


def open_tasks(*, db_session: Session, instance_id: int | None = None) -> list[HumanTask]:
    query = (
        select(HumanTask)
        .where(HumanTask.status == "open")
        .order_by(HumanTask.created_at)
        .options(selectinload(HumanTask.candidates))
    )
    if instance_id is not None:
        query = query.where(HumanTask.instance_id == instance_id)
    return list(db_session.scalars(query))


def task_form(*, db_session: Session, task: HumanTask) -> dict | None:
    """The form-js schema of the task's form, as deployed with its definition version."""
    if not task.form_key:
        return None
    return compiled(_definition_of(db_session, task.instance_id)).forms.get(task.form_key)


def history(*, db_session: Session, instance_id: int) -> list[ProcessEvent]:
    return list(
        db_session.scalars(
            select(ProcessEvent)
            .where(ProcessEvent.instance_id == instance_id)
            .order_by(ProcessEvent.id)
        )
    )


def active_elements(*, db_session: Session, instance: ProcessInstance) -> list[dict]:
    """What the instance waits on now: open user tasks, timers and messages."""
    elements = [
        {"element_id": t.element_id, "name": t.name, "type": "userTask", "task_id": t.id}
        for t in open_tasks(db_session=db_session, instance_id=instance.id)
    ]
    names = instance.definition.elements
    for timer in db_session.scalars(select(Timer).where(Timer.instance_id == instance.id)):
        elements.append(
            {
                "element_id": timer.element_id,
                "name": (names.get(timer.element_id) or {}).get("name"),
                "type": "timer",
                "due_at": timer.due_at,
            }
        )
    for sub in db_session.scalars(
        select(MessageSubscription).where(MessageSubscription.instance_id == instance.id)
    ):
        elements.append(
            {
                "element_id": sub.element_id,
                "name": (names.get(sub.element_id) or {}).get("name"),
                "type": "message",
                "message_name": sub.message_name,
            }
        )
    return elements


def instance_data(*, db_session: Session, instance: ProcessInstance) -> dict:
    """The data of the instance as its latest task sees it (for display and tests)."""
    workflow = load_workflow(instance)
    if workflow.last_task is not None:
        return dict(workflow.last_task.data)
    return dict(workflow.data)
