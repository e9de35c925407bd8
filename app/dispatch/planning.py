"""Dispatch without a person: a task in mode auto is assigned in the transaction that opens it,
several waiting tasks of a group are assigned together by minimum total cost (batch), an
urgent (P1) arrival re-plans what was dispatched automatically but not yet begun, and pool
tasks nobody grabbed within their group's wait are assigned by the same batch.

Nothing in progress is taken away: a task is re-planned only while its holder got it from
the system and has not checked in since (work.started).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, selectinload

from app.auth.models import Group
from app.dispatch.batch import assign_batch
from app.dispatch.decisions import dispatch_to, rank_in
from app.dispatch.models import DispatchDecision, GroupDispatchConfig
from app.dispatch.people import PRIORITIES, load_candidates
from app.dispatch.scoring import Job
from app.dispatch.service import auto_assign
from app.dispatch.work import job_of, process_data, settings_for, started
from app.engine import last_assignment, lock_task
from app.engine.models import HumanTask, HumanTaskCandidate
from app.engine.signals import instance_stepped
from app.tickets.models import Ticket

log = logging.getLogger(__name__)


@instance_stepped.connect
def dispatch_new_tasks(instance, *, db_session: Session, **_) -> None:
    """Tasks this step opened whose mode is auto go to an engineer at once; an urgent one
    re-plans its group instead. Runs inside the step's transaction."""
    if instance.ticket_id is None:
        return
    opened = db_session.scalars(
        select(HumanTask)
        .where(
            HumanTask.instance_id == instance.id,
            HumanTask.status == "open",
            HumanTask.assignee.is_(None),
            HumanTask.created_at == instance.updated_at,
        )
        .options(selectinload(HumanTask.candidates))
    ).all()
    for task in opened:
        groups = task.candidate_groups
        if not groups or settings_for(db_session, task, groups).mode != "auto":
            continue
        ticket = db_session.get(Ticket, instance.ticket_id)
        job = job_of(db_session, ticket, task, process_data(db_session, instance.id))
        if job.priority == "P1":
            assign_waiting(db_session=db_session, group_code=groups[0], now=instance.updated_at)
        else:
            auto_assign(db_session=db_session, task=task)


def _offered_to(group: Group):
    return HumanTask.candidates.any(
        and_(
            HumanTaskCandidate.kind == "group",
            or_(HumanTaskCandidate.value == group.code, HumanTaskCandidate.value == group.name),
        )
    )


def _replannable(db_session: Session, task: HumanTask) -> bool:
    """Given by the system (auto, batch, pool fallback) and not begun: a dispatcher's own
    choice is not overturned by a plan."""
    if task.assignee is None or started(db_session, task):
        return False
    last = last_assignment(db_session=db_session, task=task)
    return last is not None and last.event_type == "task_dispatched" and last.actor is None


def devices_fixed(
    db_session: Session, usernames: list[str], device_nos: list[str]
) -> dict[str, frozenset[str]]:
    """Which of ``device_nos`` each engineer completed work on before (for batches, whose
    jobs concern several devices); read from the devices' tickets (indexed)."""
    if not usernames or not device_nos:
        return {}
    wanted = set(usernames)
    found: dict[str, set[str]] = {}
    for username, device in db_session.execute(
        select(HumanTask.completed_by, Ticket.device_no)
        .join(Ticket, Ticket.id == HumanTask.ticket_id)
        .where(Ticket.device_no.in_(device_nos), HumanTask.completed_by.is_not(None))
        .distinct()
    ):
        if username in wanted:
            found.setdefault(username, set()).add(device)
    return {username: frozenset(devices) for username, devices in found.items()}


def _waiting(db_session: Session, task: HumanTask) -> tuple[HumanTask, Ticket, Job]:
    ticket = db_session.get(Ticket, task.ticket_id)
    job = job_of(db_session, ticket, task, process_data(db_session, task.instance_id))
    return task, ticket, replace(job, key=task.id)


def assign_waiting(
    *, db_session: Session, group_code: str, now: datetime
) -> list[DispatchDecision]:
    """Assign the group's waiting tasks together (batch.assign_batch): those in mode auto that
    nobody holds, and pool tasks nobody grabbed within the pool wait. When one of them is
    urgent (P1), the tasks the system dispatched that nobody has begun are planned again with
    them. Tasks the plan leaves out keep their state (a re-planned one keeps its holder)."""
    group = db_session.scalar(
        select(Group).where(or_(Group.code == group_code, Group.name == group_code))
    )
    if group is None:
        return []
    open_of_group = (
        select(HumanTask)
        .where(HumanTask.status == "open", HumanTask.ticket_id.is_not(None), _offered_to(group))
        .order_by(HumanTask.created_at, HumanTask.id)
        .options(selectinload(HumanTask.candidates))
    )
    waiting: list[tuple[HumanTask, Ticket, Job]] = []
    weights = None
    settings_of = {}
    for task in db_session.scalars(open_of_group.where(HumanTask.assignee.is_(None))):
        settings = settings_of[task.id] = settings_for(db_session, task, task.candidate_groups)
        weights = weights or settings.weights
        pool_done = task.created_at <= now - timedelta(minutes=settings.pool_wait_minutes)
        if settings.mode == "auto" or (settings.mode == "pool" and pool_done):
            waiting.append(_waiting(db_session, task))
    if not waiting:
        return []
    replanned: dict[str, str] = {}
    if any(job.priority == "P1" for _t, _k, job in waiting):
        # Held tasks whose holder the system chose: their decision names the holder.
        held = db_session.scalars(
            open_of_group.join(DispatchDecision, DispatchDecision.task_id == HumanTask.id)
            .where(
                DispatchDecision.decided_by.is_(None),
                DispatchDecision.chosen == HumanTask.assignee,
            )
            .distinct()
        ).all()
        for task in held:
            if _replannable(db_session, task):
                settings_of[task.id] = settings_for(db_session, task, task.candidate_groups)
                waiting.append(_waiting(db_session, task))
                replanned[task.id] = task.assignee
    jobs = [job for _t, _k, job in waiting]
    table = load_candidates(
        db_session=db_session,
        now=now,
        group_codes=[group.code],
        skill_codes=sorted({code for job in jobs for code in job.required_skills}),
    )
    fixed = devices_fixed(
        db_session, table.usernames, sorted({j.device_no for j in jobs if j.device_no})
    )
    # Re-planned tasks are counted as open jobs of their holders: free those slots first.
    freed = table.open_jobs.copy()
    for task, ticket, _job in waiting:
        i = table.index(replanned.get(task.id, ""))
        if i is not None:
            # Counted by the work order's priority, as people.load_candidates counts them.
            k = PRIORITIES.index(ticket.priority if ticket.priority in PRIORITIES else "P3")
            freed[i, k] = max(0, freed[i, k] - 1)
    table.open_jobs = freed
    candidates = [
        replace(c, devices_fixed=fixed.get(c.username, frozenset())) for c in table.candidates()
    ]
    plan = assign_batch(jobs, candidates, now=now, weights=weights)
    decisions = []
    for task, ticket, job in waiting:
        chosen = plan.get(job.key)
        if chosen is None or chosen == task.assignee:
            continue
        previous = replanned.get(task.id)
        task = lock_task(db_session=db_session, task_id=task.id)
        # Another worker or a person may have acted since the plan was read.
        if task.status != "open" or task.assignee != previous:
            continue
        if previous is not None and not _replannable(db_session, task):
            continue
        # The ranking kept with the decision: this job among the engineers as planned.
        familiar = [job.device_no in fixed.get(u, ()) for u in table.usernames]
        own = replace(table, device_no=job.device_no, fixed_device=np.array(familiar, dtype=bool))
        rec = rank_in(own, ticket, task, job, settings_of[task.id], now=now, always=chosen)
        decision = dispatch_to(db_session, rec, task, chosen, mode="batch", decided_by=None)
        decision.ranking = {**decision.ranking, "batch": {"jobs": len(jobs), "replanned": previous}}
        decisions.append(decision)
    if decisions:
        log.info("dispatch: group %s, %s tasks assigned by batch", group.code, len(decisions))
    return decisions


def automatic_groups(*, db_session: Session) -> list[str]:
    """The groups whose dispatch is automatic (auto or pool): codes to pass to assign_waiting,
    which picks up pool tasks past their wait and auto tasks nobody could take before."""
    return list(
        db_session.scalars(
            select(Group.code)
            .join(GroupDispatchConfig, GroupDispatchConfig.group_id == Group.id)
            .where(GroupDispatchConfig.mode.in_(("auto", "pool")))
            .order_by(Group.code)
        )
    )
