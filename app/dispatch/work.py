"""The work side of dispatch: which task of a work order waits for an engineer, the job it
describes (place, priority, required skill, deadline), and the settings it is dispatched with
(mode and weights, from the task's `camunda:properties` or its group)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session, selectinload

from app.auth.models import Group, User
from app.dispatch import roster
from app.dispatch.models import DEFAULT_POOL_WAIT_MINUTES, MODES, GroupDispatchConfig
from app.dispatch.scoring import PRIORITY_RANK, Job, Weights
from app.engine import instance_data, last_assignment
from app.engine.models import HumanTask, ProcessInstance, Timer
from app.engine.queries import compiled_of
from app.site.models import CheckIn
from app.tickets.models import Device, Ticket

# The user-task property (camunda:properties) that sets the mode of one task.
MODE_PROPERTY = "dispatch_mode"
WEIGHT_NAMES = tuple(f.name for f in fields(Weights))


@dataclass(frozen=True)
class Settings:
    mode: str  # auto | pool | dispatcher
    weights: Weights
    pool_wait_minutes: int


def weights_from(raw: dict | None) -> Weights:
    """Weights from a stored JSON object: known names only, the rest keep their defaults."""
    raw = raw or {}
    return Weights(**{name: float(raw[name]) for name in WEIGHT_NAMES if name in raw})


def task_properties(db_session: Session, task: HumanTask) -> dict:
    """The `camunda:properties` of the task's element in its definition version."""
    found = compiled_of(db_session, task.instance_id)
    for spec in (found.spec, *found.subprocess_specs.values()):
        task_spec = spec.task_specs.get(task.element_id)
        if task_spec is not None:
            return dict(getattr(task_spec, "extensions", None) or {})
    return {}


def group_configs(db_session: Session, names: list[str]) -> list[tuple[str, GroupDispatchConfig]]:
    """(group code, config) of the named groups (by code or name) that have one, by code."""
    return list(
        db_session.execute(
            select(Group.code, GroupDispatchConfig)
            .join(GroupDispatchConfig, GroupDispatchConfig.group_id == Group.id)
            .where(or_(Group.code.in_(names), Group.name.in_(names)))
            .order_by(Group.code)
        ).all()
    )


def settings_for(db_session: Session, task: HumanTask | None, groups: list[str]) -> Settings:
    """The task's own `dispatch_mode` property wins; then the first of its groups (by code)
    with a config; without either, a dispatcher chooses, with the default weights. The configs
    come from the roster snapshot when this transaction looked at it (roster.group_configs)."""
    configs = roster.group_configs(db_session, groups)
    if configs is None:
        configs = group_configs(db_session, groups)
    config = configs[0][1] if configs else None
    mode = config.mode if config is not None else "dispatcher"
    if task is not None:
        own = task_properties(db_session, task).get(MODE_PROPERTY)
        if own in MODES:
            mode = own
    return Settings(
        mode=mode,
        weights=weights_from(config.weights if config is not None else None),
        pool_wait_minutes=config.pool_wait_minutes
        if config is not None
        else DEFAULT_POOL_WAIT_MINUTES,
    )


def process_data(db_session: Session, instance_id: int | None) -> dict:
    """The data of the work order's process as its latest task sees it (DMN results among it)."""
    if instance_id is None:
        return {}
    return data_of(db_session, db_session.get(ProcessInstance, instance_id))


def data_of(db_session: Session, instance: ProcessInstance | None) -> dict:
    """process_data of an instance already read."""
    if instance is None or instance.status != "running":
        return {}
    return instance_data(db_session=db_session, instance=instance)


def started(db_session: Session, task: HumanTask) -> bool:
    """Whether the task's holder has begun: anyone holding it other than through dispatch
    (the process, a claim, a transfer) has; one it was dispatched to has once they checked in
    at the work order since. A task nobody holds has not begun."""
    if task.assignee is None:
        return False
    last = last_assignment(db_session=db_session, task=task)
    if last is None or last.event_type != "task_dispatched":
        return True
    holder = select(User.id).where(User.username == task.assignee).scalar_subquery()
    return bool(
        db_session.scalar(
            select(
                exists().where(
                    CheckIn.ticket_id == task.ticket_id,
                    CheckIn.user_id == holder,
                    CheckIn.at >= last.at,
                )
            )
        )
    )


def dispatchable_task(
    *, db_session: Session, ticket: Ticket, data: dict | None = None
) -> HumanTask | None:
    """The open task of the work order that waits for an engineer, if any: offered to a group,
    not begun by anyone (see started), and marked for dispatch by a `dispatch_mode` property,
    a dispatch config of one of its groups, or because it goes to the group the process's
    decision made responsible (`assigned_group`). The oldest such task when several are."""
    tasks = db_session.scalars(
        select(HumanTask)
        .where(HumanTask.ticket_id == ticket.id, HumanTask.status == "open")
        .order_by(HumanTask.created_at, HumanTask.id)
        .options(selectinload(HumanTask.candidates))
    ).all()
    for task in tasks:
        groups = task.candidate_groups
        if not groups or started(db_session, task):
            continue
        if task_properties(db_session, task).get(MODE_PROPERTY) in MODES:
            return task
        if group_configs(db_session, groups):
            return task
        if data is None:
            data = process_data(db_session, ticket.process_instance_id or task.instance_id)
        if data.get("assigned_group") in groups:
            return task
    return None


def groups_of(task: HumanTask | None, data: dict) -> list[str]:
    """The groups whose engineers are candidates: the task's, else the responsible group."""
    if task is not None and task.candidate_groups:
        return list(task.candidate_groups)
    group = data.get("assigned_group")
    return [group] if isinstance(group, str) and group else []


def _required_skills(data: dict) -> dict[str, int]:
    code = data.get("required_skill")
    try:
        level = int(data.get("required_level") or 0)
    except (TypeError, ValueError):
        level = 0
    return {code: level} if isinstance(code, str) and code and level > 0 else {}


def _deadline(db_session: Session, task: HumanTask | None, instance_id: int | None):
    if task is not None and task.due_at is not None:
        return task.due_at
    if instance_id is None:
        return None
    # No due date on the task: the earliest timer the process waits on is its SLA.
    return db_session.scalar(
        select(Timer.due_at).where(Timer.instance_id == instance_id).order_by(Timer.due_at).limit(1)
    )


def job_of(db_session: Session, ticket: Ticket, task: HumanTask | None, data: dict) -> Job:
    """The job: where (the work order's location, else its device's), how urgent (the process's
    priority after triage, else the reported one), the skill the decision table requires, and
    the deadline (the task's due time, else the process's earliest timer)."""
    lat, lng = ticket.location_lat, ticket.location_lng
    if (lat is None or lng is None) and ticket.device_no:
        found = db_session.execute(
            select(Device.lat, Device.lng).where(Device.device_no == ticket.device_no)
        ).first()
        if found is not None:
            lat, lng = found
    if lat is None or lng is None:
        lat = lng = None
    priority = data.get("priority")
    if priority not in PRIORITY_RANK:
        priority = ticket.priority if ticket.priority in PRIORITY_RANK else "P3"
    instance_id = ticket.process_instance_id or (task.instance_id if task is not None else None)
    return Job(
        key=str(ticket.id),
        lat=lat,
        lng=lng,
        priority=priority,
        required_skills=_required_skills(data),
        deadline=_deadline(db_session, task, instance_id),
        device_no=ticket.device_no,
    )


def job_summary(job: Job) -> dict:
    """The job as stored with a decision (JSON-safe)."""
    deadline: datetime | None = job.deadline
    return {
        "key": job.key,
        "priority": job.priority,
        "required_skills": dict(job.required_skills),
        "deadline": deadline.isoformat() if deadline is not None else None,
        "lat": job.lat,
        "lng": job.lng,
        "device_no": job.device_no,
    }
