"""Smart dispatch (智能派单): recommend engineers for a work order, assign one (a dispatcher's
choice, an override with its reason, or automatically), the pool where engineers grab work,
and the positions phones report. Every assignment stores a DispatchDecision with the ranking
it was made from, so the work-order page can say why.

Nothing in progress is taken away: only tasks nobody has begun are dispatched (work.started).
Services never commit; the caller does.
"""

from __future__ import annotations

import math
import re
from datetime import datetime

from sqlalchemy import and_, select
from sqlalchemy.orm import Session, selectinload

from app.audit.service import record
from app.auth.access import my_task_condition
from app.auth.models import User
from app.auth.service import find_user
from app.dispatch.decisions import Recommendation, dispatch_to, rank_task
from app.dispatch.models import DispatchDecision, EngineerProfile
from app.dispatch.people import Position, load_candidates
from app.dispatch.people import position_of as _position_of
from app.dispatch.scoring import Candidate, Job, Ranking, exclusion
from app.dispatch.work import (
    dispatchable_task,
    groups_of,
    job_of,
    process_data,
    settings_for,
    started,
)
from app.engine import assignment, lock_task, lock_task_with_data
from app.engine.models import HumanTask, HumanTaskCandidate
from app.errors import Conflict, InvalidInput, NotAllowed, NotFound
from app.inbox.service import get_visible_task
from app.tickets.models import Ticket
from app.tickets.service import get_visible_ticket
from app.timeutil import utcnow

DISPATCHING_ROLES = ("admin", "dispatcher")
ENGINEER_ROLE = "handler"
REASON_MAX = 500
_REASON_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

__all__ = [
    "Recommendation",
    "assign",
    "auto_assign",
    "candidates_for",
    "dispatchable_task",
    "grab",
    "job_for",
    "latest_decision",
    "pool",
    "position_of",
    "recommend",
    "recommendation",
    "report_position",
]


# ---------------------------------------------------------------- reading


def position_of(*, db_session: Session, user: User, now: datetime) -> Position | None:
    return _position_of(db_session=db_session, user=user, now=now)


def job_for(*, db_session: Session, ticket: Ticket) -> Job:
    data = process_data(db_session, ticket.process_instance_id)
    task = dispatchable_task(db_session=db_session, ticket=ticket, data=data)
    return job_of(db_session, ticket, task, data)


def candidates_for(
    *, db_session: Session, ticket: Ticket, group_code: str | None, now: datetime
) -> list[Candidate]:
    """The engineers of ``group_code`` (None: the groups of the work order's waiting task, else
    its responsible group), with what the work order's job asks of them."""
    data = process_data(db_session, ticket.process_instance_id)
    task = dispatchable_task(db_session=db_session, ticket=ticket, data=data)
    job = job_of(db_session, ticket, task, data)
    groups = [group_code] if group_code else groups_of(task, data)
    return load_candidates(
        db_session=db_session,
        now=now,
        group_codes=groups,
        skill_codes=list(job.required_skills),
        device_no=job.device_no,
    ).candidates()


def latest_decision(*, db_session: Session, ticket_id: int) -> DispatchDecision | None:
    return db_session.scalar(
        select(DispatchDecision)
        .where(DispatchDecision.ticket_id == ticket_id)
        .order_by(DispatchDecision.id.desc())
        .limit(1)
    )


def recommendation(*, db_session: Session, user: User, ticket_id: int) -> Recommendation:
    """The ranked engineers for a work order the caller sees (dispatchers and admins)."""
    ticket = get_visible_ticket(db_session=db_session, user=user, ticket_id=ticket_id)
    _require_dispatcher(user, ticket)
    data = process_data(db_session, ticket.process_instance_id)
    task = dispatchable_task(db_session=db_session, ticket=ticket, data=data)
    return rank_task(db_session=db_session, ticket=ticket, task=task, now=utcnow(), data=data)


def recommend(*, db_session: Session, user: User, ticket_id: int) -> Ranking:
    return recommendation(db_session=db_session, user=user, ticket_id=ticket_id).ranking


# ---------------------------------------------------------------- assigning


def assign(
    *,
    db_session: Session,
    user: User,
    ticket_id: int,
    username: str,
    reason: str | None = None,
    mode: str = "dispatcher",
) -> DispatchDecision:
    """A dispatcher or admin gives the work order's waiting task to ``username``. Anyone but
    the top recommendation (an excluded engineer included) is an override and needs a reason;
    the override is audited with it."""
    ticket = get_visible_ticket(db_session=db_session, user=user, ticket_id=ticket_id)
    _require_dispatcher(user, ticket)
    reason = _clean_reason(reason)
    data = process_data(db_session, ticket.process_instance_id)
    waiting = dispatchable_task(db_session=db_session, ticket=ticket, data=data)
    if waiting is None:
        raise Conflict(
            f"工单 {ticket.number} 没有等待派单的任务（已有人在处理，或尚未到派单环节）；要换人请转派",
            f"work order {ticket.number} has no task waiting for an engineer (someone is "
            "working on it, or it has not reached that step); transfer the task instead",
        )
    task = lock_task(db_session=db_session, task_id=waiting.id)
    if task.status != "open" or started(db_session, task):
        raise Conflict(
            f"任务 {task.name} 刚被 {task.assignee or '他人'} 接手，不能再派单；要换人请转派",
            f"task {task.name} was just taken by {task.assignee or 'someone'}; transfer it instead",
        )
    target = find_user(db_session=db_session, username=username)
    if target is None or not target.is_active or target.role != ENGINEER_ROLE:
        raise InvalidInput(
            f"用户 {username} 不存在、已停用或不是工程师，请从推荐列表中选择工程师",
            f"user {username} does not exist, is deactivated or is not an engineer; choose an "
            "engineer from the recommendations",
            errors={"username": [f"no active engineer {username}"]},
        )
    if task.assignee == username:
        raise Conflict(
            f"任务 {task.name} 已经派给 {username}", f"task {task.name} is already {username}'s"
        )
    rec = rank_task(
        db_session=db_session, ticket=ticket, task=task, now=utcnow(), data=data, always=username
    )
    top = rec.ranking.ranked[0].username if rec.ranking.ranked else None
    override = username != top
    if override and reason is None:
        why = next((r for name, r in rec.ranking.excluded if name == username), None)
        zh = f"（{why.zh}）" if why else ""
        en = f" ({why.en})" if why else ""
        best_zh = f"推荐的是 {top}" if top else "没有可推荐的工程师"
        best_en = f"the recommendation is {top}" if top else "nobody is recommended"
        raise InvalidInput(
            f"改派给 {username}{zh} 不同于推荐（{best_zh}），请填写原因（reason）",
            f"assigning {username}{en} overrides the recommendation ({best_en}); give the "
            "reason (reason)",
            errors={"reason": ["required when overriding the recommendation"]},
        )
    before = {"assignee": task.assignee, "ticket_id": ticket.id, "task": task.name}
    decision = dispatch_to(
        db_session, rec, task, username, mode=mode, decided_by=user.username, reason=reason
    )
    db_session.flush()
    record(
        db_session=db_session,
        action="task.dispatch.override" if override else "task.dispatch",
        object_type="task",
        object_id=task.id,
        before=before,
        after={
            "assignee": username,
            "ticket_id": ticket.id,
            "task": task.name,
            "recommended": top,
            "reason": reason,
            "decision_id": decision.id,
        },
        actor=user.username,
    )
    return decision


def auto_assign(*, db_session: Session, task: HumanTask) -> DispatchDecision | None:
    """Give an open task nobody holds to the best-ranked engineer (mode auto). None when the
    task is taken, has no work order, or nobody is eligible: it stays with its groups."""
    if task.ticket_id is None:
        return None
    task, data, ticket = lock_task_with_data(
        db_session=db_session, task_id=task.id, work_order=Ticket
    )
    if ticket is None or task.status != "open" or task.assignee is not None:
        return None
    if task.instance_id != (ticket.process_instance_id or task.instance_id):
        data = None  # a task of another process than the work order's: rank_task reads that
    rec = rank_task(db_session=db_session, ticket=ticket, task=task, now=utcnow(), data=data)
    if not rec.ranking.ranked:
        return None
    return dispatch_to(
        db_session, rec, task, rec.ranking.ranked[0].username, mode="auto", decided_by=None
    )


# ---------------------------------------------------------------- the pool


def pool(*, db_session: Session, user: User) -> list[HumanTask]:
    """Open pool tasks offered to the engineer's groups that nobody holds and that the
    engineer may take now (every hard constraint of scoring.exclusion holds), oldest first."""
    _require_engineer(user)
    tasks = db_session.scalars(
        select(HumanTask)
        .where(
            HumanTask.status == "open",
            HumanTask.ticket_id.is_not(None),
            and_(HumanTask.assignee.is_(None), my_task_condition(user)),
        )
        .order_by(HumanTask.created_at, HumanTask.id)
        .options(selectinload(HumanTask.candidates))
    ).all()
    if not tasks:
        return []
    now = utcnow()
    me = load_candidates(
        db_session=db_session, now=now, group_codes=None, usernames=[user.username]
    ).candidates()
    found = []
    for task in tasks:
        if settings_for(db_session, task, task.candidate_groups).mode != "pool":
            continue
        ticket = db_session.get(Ticket, task.ticket_id)
        data = process_data(db_session, task.instance_id)
        job = job_of(db_session, ticket, task, data)
        if me and exclusion(me[0], job) is None:
            found.append(task)
    return found


def grab(*, db_session: Session, user: User, task_id: str) -> HumanTask:
    """抢单: the engineer takes a pool task. The task's instance row is locked and the task read
    again, so of two engineers grabbing at once exactly one wins; the other gets 409."""
    try:
        get_visible_task(db_session=db_session, user=user, task_id=task_id)
    except NotFound:
        # A task another engineer just grabbed left this one's inbox; it was offered to their
        # group, so they may learn who took it (409), as they would have a moment earlier.
        offered = HumanTask.candidates.any(
            and_(
                HumanTaskCandidate.kind == "group",
                HumanTaskCandidate.value.in_(sorted(user.group_names())),
            )
        )
        if db_session.scalar(select(HumanTask.id).where(HumanTask.id == task_id, offered)) is None:
            raise
    _require_engineer(user)
    task = lock_task(db_session=db_session, task_id=task_id)
    if task.status != "open" or task.assignee is not None:
        holder = task.assignee or task.completed_by
        raise Conflict(
            f"任务 {task.name} 已被 {holder or '他人'} 抢走",
            f"task {task.name} was already taken by {holder or 'someone else'}",
        )
    ticket = db_session.get(Ticket, task.ticket_id) if task.ticket_id is not None else None
    if ticket is None or settings_for(db_session, task, task.candidate_groups).mode != "pool":
        raise Conflict(
            f"任务 {task.name} 不在工单池中，请在待办中认领",
            f"task {task.name} is not in the pool; claim it from the inbox instead",
        )
    rec = rank_task(
        db_session=db_session, ticket=ticket, task=task, now=utcnow(), always=user.username
    )
    why = next((r for name, r in rec.ranking.excluded if name == user.username), None)
    if why is not None:
        raise NotAllowed(
            f"你现在不能接这个任务：{why.zh}", f"you cannot take this task now: {why.en}"
        )
    if user.username not in {b.username for b in rec.ranking.ranked}:
        raise NotAllowed(
            f"任务 {task.name} 不是派给你所在组的",
            f"task {task.name} is not offered to your groups",
        )
    before = assignment(task)
    decision = dispatch_to(
        db_session,
        rec,
        task,
        user.username,
        mode="pool",
        decided_by=user.username,
        event_type="task_claimed",
    )
    after = assignment(task)
    record(
        db_session=db_session,
        action="task.grab",
        object_type="task",
        object_id=task.id,
        before={"ticket_id": task.ticket_id, "task": task.name, **before},
        after={"ticket_id": task.ticket_id, "task": task.name, **after, "decision_id": decision.id},
        actor=user.username,
    )
    return task


# ---------------------------------------------------------------- positions


def report_position(
    *, db_session: Session, user: User, lat: float, lng: float, accuracy_m: float | None
) -> None:
    """The engineer's phone reports where it is; dispatch trusts it for
    POSITION_STALE_MINUTES, then falls back to today's check-in or the home base."""
    _require_engineer(user)
    for name, value, low, high in (("lat", lat, -90, 90), ("lng", lng, -180, 180)):
        if not isinstance(value, int | float) or math.isnan(value) or not low <= value <= high:
            raise InvalidInput(
                f"位置 {name} 必须在 {low} 与 {high} 之间（收到 {value}）",
                f"position {name} must be between {low} and {high} ({value} was sent)",
                errors={name: [f"{low}..{high}"]},
            )
    if accuracy_m is not None and not (0 <= accuracy_m < 1e7):
        raise InvalidInput(
            f"定位精度 accuracy_m 必须是非负的米数（收到 {accuracy_m}）",
            f"accuracy_m must be a non-negative number of metres ({accuracy_m} was sent)",
            errors={"accuracy_m": [">= 0"]},
        )
    profile = db_session.get(EngineerProfile, user.id)
    if profile is None:
        profile = EngineerProfile(user_id=user.id)
        db_session.add(profile)
    profile.pos_lat, profile.pos_lng, profile.pos_accuracy_m = lat, lng, accuracy_m
    profile.pos_at = utcnow()


# ---------------------------------------------------------------- rules


def _require_dispatcher(user: User, ticket: Ticket) -> None:
    if user.role not in DISPATCHING_ROLES:
        raise NotAllowed(
            f"只有调度员或管理员可以为工单 {ticket.number} 派单",
            f"only a dispatcher or an admin can dispatch work order {ticket.number}",
        )


def _require_engineer(user: User) -> None:
    if user.role != ENGINEER_ROLE:
        raise NotAllowed(
            "只有工程师可以使用工单池和上报位置", "only engineers use the pool and report positions"
        )


def _clean_reason(reason: str | None) -> str | None:
    reason = (reason or "").strip() or None
    if reason is not None and (len(reason) > REASON_MAX or _REASON_CONTROL.search(reason)):
        raise InvalidInput(
            f"原因（reason）最多 {REASON_MAX} 个字，且不能包含控制字符（收到 {len(reason)} 个字）",
            f"the reason may have at most {REASON_MAX} characters and no control characters "
            f"({len(reason)} were sent)",
            errors={"reason": [f"≤ {REASON_MAX}"]},
        )
    return reason
