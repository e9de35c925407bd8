"""Reading the engine's tables: definitions, instances, open tasks, history, what an instance waits on."""

from __future__ import annotations

import logging
import weakref

from sqlalchemy import select
from sqlalchemy.orm import Session, scoped_session, selectinload
from sqlalchemy.orm.util import identity_key

from app.engine.models import (
    HumanTask,
    MessageSubscription,
    ProcessDefinition,
    ProcessEvent,
    ProcessInstance,
    Timer,
)
from app.engine.runtime import (
    Compiled,
    cached_compiled,
    compiled,
    restore_data,
)
from app.errors import NotFound

log = logging.getLogger(__name__)


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
    return compiled_of(db_session, task.instance_id).forms.get(task.form_key)


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
    return restore_data(instance.id, instance.state, instance.state_format)


def definition_of(db_session: Session, instance_id: int) -> ProcessDefinition:
    """The definition version an instance runs, without loading the instance's state (and
    without a query when the session holds the instance and its definition already)."""
    loaded = db_session.identity_map.get(identity_key(ProcessInstance, instance_id))
    if loaded is not None and "definition_id" in loaded.__dict__:
        return db_session.get(ProcessDefinition, loaded.definition_id)
    return db_session.execute(
        select(ProcessDefinition)
        .join(ProcessInstance, ProcessInstance.definition_id == ProcessDefinition.id)
        .where(ProcessInstance.id == instance_id)
    ).scalar_one()


# (database, instance id) -> content hash of the definition version the instance runs. An
# instance never changes version and versions are immutable; PostgreSQL never hands out an id
# twice, so there an entry is never stale and lives as long as the process (bounded: the oldest
# half goes when it is full). SQLite gives a rolled-back id again, so there the cache lives for
# one transaction (or savepoint) only; a dispatch decision still asks once instead of twice.
_VERSION_OF: dict[tuple[str, int], str] = {}
_VERSION_OF_MAX = 20_000
_TRANSACTION_CACHE = "paidan.compiled_of"


def compiled_of(db_session: Session, instance_id: int) -> Compiled:
    """The compiled definition version an instance runs (see runtime.compiled)."""
    cache, key = _version_cache(db_session, instance_id)
    content_hash = cache.get(key)
    found = cached_compiled(content_hash) if content_hash is not None else None
    if found is not None:
        return found
    definition = definition_of(db_session, instance_id)
    cache, key = _version_cache(db_session, instance_id)  # the transaction has begun now
    if len(cache) >= _VERSION_OF_MAX:
        for old in list(cache)[: _VERSION_OF_MAX // 2]:
            del cache[old]
    cache[key] = definition.content_hash
    return compiled(definition)


def _version_cache(db_session: Session, instance_id: int) -> tuple[dict, tuple]:
    bind = db_session.get_bind()
    if bind.dialect.name == "postgresql":
        return _VERSION_OF, (bind.engine.url.render_as_string(), instance_id)
    session = db_session() if isinstance(db_session, scoped_session) else db_session
    # The innermost: a savepoint rolled back gives its ids again too.
    transaction = session.get_nested_transaction() or session.get_transaction()
    held = session.info.get(_TRANSACTION_CACHE)
    if held is None or held[0]() is not transaction:
        held = (weakref.ref(transaction) if transaction is not None else lambda: None, {})
        session.info[_TRANSACTION_CACHE] = held
    return held[1], ("", instance_id)
