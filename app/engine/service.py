"""The engine's verbs: deploy, start, complete a task, deliver a message.

Every verb is one engine step in the caller's transaction. Reassigning tasks lives in
assignment.py, firing timers (a job, which commits) in timers.py, reading in queries.py.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePath
from uuid import UUID

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.util.event import BpmnEvent
from SpiffWorkflow.camunda.specs.event_definitions import MessageEventDefinition
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.engine import parser as bpmn
from app.engine.lint import lint_problems
from app.engine.models import (
    MessageSubscription,
    ProcessDefinition,
    ProcessInstance,
    Timer,
)
from app.engine.queries import get_task, latest_definition
from app.engine.runtime import (
    announce_timers,
    compiled,
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


@dataclass
class Inspection:
    """What the deploy checks found in a set of files: the files read, every problem in the
    order deploy meets them, and the specs of the executable processes SpiffWorkflow parsed."""

    bundle: bpmn.Bundle
    problems: list[bpmn.Problem] = field(default_factory=list)
    specs: dict[str, tuple] = field(default_factory=dict)  # process key -> (spec, subprocesses)

    @property
    def ok(self) -> bool:
        return not any(problem.severity == "error" for problem in self.problems)


def inspect(files: list[tuple[str, bytes]]) -> Inspection:
    """Every check deploy makes on ``files``, collected instead of stopping at the first.

    Reading each file (XML safety, expressions), references to decisions and forms,
    SpiffWorkflow's parsing, then the engine's own rules (app.engine.lint).
    """
    inspection = _read_bundle(files)
    bundle, problems = inspection.bundle, inspection.problems
    problems += bpmn.reference_problems(bundle, set(bundle.forms))
    parser, parse_problems = bpmn.build_parser(bundle)
    problems += parse_problems
    executable = [
        (filename, process.get("id"))
        for filename, root in bundle.bpmn.items()
        for process in bpmn.executable_processes(root)
    ]
    if not parse_problems:
        for filename, key in executable:
            spec, subprocess_specs, spec_problems = bpmn.parse_spec(parser, key, filename)
            problems += spec_problems
            if spec is not None:
                inspection.specs[key] = (spec, subprocess_specs)
    for filename, root in bundle.bpmn.items():
        problems += lint_problems(filename, root)
    unread = any(problem.code.startswith("xml-") for problem in problems)
    if bundle.bpmn and not executable and not unread:
        problems.append(
            bpmn.Problem(
                "no-executable-process",
                '上传的文件中没有可执行的流程（isExecutable="true"）',
                'the upload contains no executable process (isExecutable="true")',
            )
        )
    return inspection


def deploy(
    *, db_session: Session, files: list[tuple[str, bytes]], actor: str | None = None
) -> list[ProcessDefinition]:
    """Store a new immutable version of every executable process in ``files``.

    A process whose sources are unchanged since its latest version keeps that version.
    Nothing is stored unless every file passes every check (the first error is raised).
    """
    inspection = inspect(files)
    bpmn.raise_first_error(inspection.problems)
    bundle = inspection.bundle
    shared = {
        "dmn": dict(sorted(bundle.dmn_text.items())),
        "forms": dict(sorted(bundle.forms.items())),
    }
    deployed = []
    for filename, root in bundle.bpmn.items():
        for process in bpmn.executable_processes(root):
            key = process.get("id")
            spec, subprocess_specs = inspection.specs[key]
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
    db_session.flush()
    return deployed


def _read_bundle(files: list[tuple[str, bytes]]) -> Inspection:
    """Each file read and its expressions checked; a file that cannot be read is left out."""
    inspection = Inspection(bpmn.Bundle())
    bundle, problems = inspection.bundle, inspection.problems
    given_bpmn = False
    for filename, data in files:
        name = PurePath(filename or "").name
        suffix = PurePath(name).suffix.lower()
        if suffix in {".bpmn", ".dmn"}:
            given_bpmn = given_bpmn or suffix == ".bpmn"
            root, problem = bpmn.read_xml(name, data)
            if problem is not None:
                problems.append(problem)
                continue
            if suffix == ".bpmn":
                problems += bpmn.bpmn_expression_problems(name, root)
                bundle.bpmn[name] = root
                bundle.bpmn_text[name] = data.decode("utf-8")
            else:
                problems += bpmn.dmn_expression_problems(name, root)
                bundle.dmn[name] = root
                bundle.dmn_text[name] = data.decode("utf-8")
        elif suffix == ".form":
            try:
                schema = read_form(name, data)
            except InvalidInput as error:
                problems.append(bpmn.Problem("form-invalid", error.zh, error.en, name))
                continue
            if schema["id"] in bundle.forms:
                problems.append(
                    bpmn.Problem(
                        "form-duplicate",
                        f"表单 id {schema['id']} 重复（{name}）",
                        f"form id {schema['id']} is repeated ({name})",
                        name,
                    )
                )
                continue
            bundle.forms[schema["id"]] = schema
        else:
            problems.append(
                bpmn.Problem(
                    "file-type",
                    f"不支持的文件类型：{name}（只接受 .bpmn、.dmn、.form）",
                    f"unsupported file type: {name} (only .bpmn, .dmn and .form are accepted)",
                    name,
                )
            )
    if not given_bpmn:
        problems.append(
            bpmn.Problem(
                "no-bpmn-file", "请上传至少一个 .bpmn 文件", "upload at least one .bpmn file"
            )
        )
    return inspection


def _elements(process) -> dict:
    elements = {}
    for node in process.iter():
        ident = node.get("id")
        if ident and node is not process:
            elements[ident] = {"type": bpmn.etree.QName(node).localname, "name": node.get("name")}
    return elements


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


# ---------------------------------------------------------------- timers


def move_timers(
    *,
    db_session: Session,
    instance_id: int,
    element_ids: list[str],
    due_at: datetime,
    actor: str | None = None,
) -> int:
    """Give the waiting timer events ``element_ids`` of an instance a new due time (an SLA
    deadline that moved: a pause, a new priority): SpiffWorkflow's own value and the timer
    row together. A due time already past fires them in this step. Returns how many moved."""
    if due_at.tzinfo is None:
        raise ValueError("due_at must be aware")
    step = open_step(db_session, instance_id, actor)
    moved = [
        task
        for task in step.workflow.get_tasks(state=TaskState.WAITING)
        if task.task_spec.bpmn_id in element_ids
        and isinstance(getattr(task.task_spec, "event_definition", None), TimerEventDefinition)
    ]
    if not moved:
        return 0
    value = due_at.astimezone(UTC).isoformat()
    for task in moved:
        task._set_internal_data(event_value=value)

    run_engine(step, step.workflow.refresh_timers)
    waiting = [str(task.id) for task in moved if task.state == TaskState.WAITING]
    save_step(db_session, step)
    if waiting:
        # By instance first: timer.task_id has no index, timer.instance_id has.
        db_session.execute(
            update(Timer)
            .where(Timer.instance_id == instance_id, Timer.task_id.in_(waiting))
            .values(due_at=due_at, attempts=0)
        )
        announce_timers(db_session, due_at)
    return len(moved)


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
