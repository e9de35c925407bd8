"""Dispatch inside a process step: a user task whose form has an `engineer` field (equipment
repair's 派单) is a dispatcher's choice from the ranked list. The task page shows the ranking
of the work order's responsible group and offers its engineers in the field; completing the
task checks the choice (an engineer; anyone but the top recommendation needs the form's
`dispatch_reason`), and stores a DispatchDecision so the work-order page explains it.

The step's own task is offered to the service desk, not to the engineers, so the candidates
are those of the group the decision table made responsible (`assigned_group`), ranked for the
work order's job (work.job_of with no task). Services never commit; the caller does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import engine
from app.audit.service import record
from app.auth.models import User
from app.auth.service import find_user
from app.dispatch.decisions import Recommendation, rank_job, save_decision
from app.dispatch.work import groups_of, job_of, process_data
from app.engine.models import HumanTask
from app.errors import InvalidInput
from app.forms.validation import fields, validate
from app.sla.clock import NEVER, clocks_by_kind
from app.sla.task_due import clock_due
from app.tickets.models import Ticket
from app.timeutil import utcnow

# The form fields that make a task a dispatch step, and carry the override's reason.
ENGINEER_FIELD = "engineer"
REASON_FIELD = "dispatch_reason"
ENGINEER_ROLE = "handler"
REASON_MAX = 500
_REASON_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def form_keys(schema: dict | None) -> set[str]:
    return {component["key"] for component in fields(schema)} if schema else set()


def is_dispatch_step(db_session: Session, task: HumanTask) -> bool:
    """A task of a work order whose form asks for the engineer."""
    if task.ticket_id is None:
        return False
    return ENGINEER_FIELD in form_keys(engine.task_form(db_session=db_session, task=task))


def rank_step(
    db_session: Session,
    ticket: Ticket,
    *,
    now: datetime,
    data: dict | None = None,
    always: str | None = None,
) -> Recommendation | None:
    """The engineers of the work order's responsible group, ranked for its job; None before
    the process has made a group responsible.

    Like decisions.rank_task with no task, except the deadline: the step comes before the
    engineer's task and its SLA timer exist, so without a timer the deadline is the one that
    task will get (next_task_due), and the SLA risk means what it will mean then.
    """
    if data is None:
        data = process_data(db_session, ticket.process_instance_id)
    groups = groups_of(None, data)
    if not groups:
        return None
    job = job_of(db_session, ticket, None, data)
    if job.deadline is None:
        job = replace(job, deadline=next_task_due(db_session, ticket, data, now))
    return rank_job(db_session, ticket, None, job, None, groups, now=now, always=always)


def next_task_due(db_session: Session, ticket: Ticket, data: dict, now: datetime):
    """The due time the engineer's task will get: the SLA clock's (sla.task_due: the arrival
    deadline while nobody has responded, else the resolution deadline; none while the clock is
    paused), or without clocks (or with a deadline still unknown) `sla_hours` from now."""
    due = clock_due(clocks_by_kind(db_session, ticket.id))
    if due is not None:
        return None if due == NEVER else due
    hours = data.get("sla_hours")
    if isinstance(hours, int | float) and not isinstance(hours, bool):
        return now + timedelta(hours=float(hours))
    return None


@dataclass
class StepChoice:
    """A checked choice of a dispatch step, stored once the task is completed."""

    rec: Recommendation
    engineer: str
    top: str | None
    reason: str | None

    @property
    def override(self) -> bool:
        return self.top is not None and self.engineer != self.top


def check_choice(
    *, db_session: Session, user: User, task: HumanTask, data: dict
) -> StepChoice | None:
    """Before a dispatch step is completed: the form's own rules, then an active engineer,
    then a reason when the choice is not the top recommendation. None for other tasks.

    With nobody eligible there is no recommendation to override, so no reason is asked
    (the decision still records every engineer's exclusion)."""
    if task.status != "open" or task.ticket_id is None:
        return None
    schema = engine.task_form(db_session=db_session, task=task)
    keys = form_keys(schema)
    if ENGINEER_FIELD not in keys:
        return None
    cleaned = validate(schema, data)
    username = cleaned.get(ENGINEER_FIELD)
    target = find_user(db_session=db_session, username=username) if username else None
    if target is None or not target.is_active or target.role != ENGINEER_ROLE:
        raise InvalidInput(
            f"用户 {username} 不存在、已停用或不是工程师，请从推荐列表中选择工程师（engineer）",
            f"user {username} does not exist, is deactivated or is not an engineer; choose an "
            "engineer from the recommendations (engineer)",
            errors={ENGINEER_FIELD: [f"no active engineer {username}"]},
        )
    ticket = db_session.get(Ticket, task.ticket_id)
    rec = rank_step(db_session, ticket, now=utcnow(), always=username)
    if rec is None:
        return None
    top = rec.ranking.ranked[0].username if rec.ranking.ranked else None
    reason = _clean_reason(cleaned.get(REASON_FIELD))
    choice = StepChoice(rec, username, top, reason if username != top else None)
    # A form without the reason field (an older deployed version) cannot ask for one.
    if choice.override and reason is None and REASON_FIELD in keys:
        why = next((r for name, r in rec.ranking.excluded if name == username), None)
        zh = f"（{why.zh}）" if why else ""
        en = f" ({why.en})" if why else ""
        raise InvalidInput(
            f"派给 {username}{zh} 不同于推荐的 {top}，请填写改派原因（{REASON_FIELD}）",
            f"giving it to {username}{en} overrides the recommendation {top}; give the reason "
            f"({REASON_FIELD})",
            errors={REASON_FIELD: [f"required when choosing someone other than {top}"]},
        )
    return choice


def store_choice(*, db_session: Session, user: User, task: HumanTask, choice: StepChoice) -> None:
    """After the step is completed: the decision (linked to the task the engineer got, when
    the process gave them one) and the audit row, task.dispatch.override for an override."""
    given = db_session.scalar(
        select(HumanTask.id)
        .where(
            HumanTask.instance_id == task.instance_id,
            HumanTask.status == "open",
            HumanTask.assignee == choice.engineer,
        )
        .order_by(HumanTask.created_at.desc(), HumanTask.id)
        .limit(1)
    )
    decision = save_decision(
        db_session,
        choice.rec,
        task if given is None else db_session.get(HumanTask, given),
        mode="dispatcher",
        chosen=choice.engineer,
        decided_by=user.username,
        reason=choice.reason,
    )
    db_session.flush()
    where = {"ticket_id": task.ticket_id, "task": task.name}
    record(
        db_session=db_session,
        action="task.dispatch.override" if choice.override else "task.dispatch",
        object_type="task",
        object_id=task.id,
        before=where,
        after={
            **where,
            "assignee": choice.engineer,
            "given_task": given,
            "recommended": choice.top,
            "reason": choice.reason,
            "decision_id": decision.id,
        },
        actor=user.username,
    )


def _clean_reason(reason) -> str | None:
    reason = (reason if isinstance(reason, str) else "").strip() or None
    if reason is not None and (len(reason) > REASON_MAX or _REASON_CONTROL.search(reason)):
        raise InvalidInput(
            f"改派原因（{REASON_FIELD}）最多 {REASON_MAX} 个字，且不能包含控制字符"
            f"（收到 {len(reason)} 个字）",
            f"the reason ({REASON_FIELD}) may have at most {REASON_MAX} characters and no "
            f"control characters ({len(reason)} were sent)",
            errors={REASON_FIELD: [f"≤ {REASON_MAX}"]},
        )
    return reason
