"""Which open tasks a person may see and act on (least privilege is in the query), and the
acts on a task: claim, unclaim (give back), transfer (转派) and complete, each audited."""

from __future__ import annotations

import re
from uuid import UUID

from sqlalchemy import and_, select
from sqlalchemy.orm import Session, selectinload

from app.audit.service import record
from app.auth.access import may_work_on, my_task_condition, task_condition
from app.auth.models import Group, User
from app.auth.service import find_user
from app.dispatch.stepchoice import check_choice, store_choice
from app.dispatch.work import settings_for
from app.engine import (
    complete_task,
    last_assignment,
    lock_task,
    reassign_task,
)
from app.engine.models import HumanTask, ProcessInstance
from app.errors import Conflict, InvalidInput, NotAllowed, NotFound

SCOPES = ("mine", "group", "all")
# Roles that hand out work: they may transfer and give back any task they can see.
DISPATCHING_ROLES = ("admin", "dispatcher")
TARGETS = ("to_user", "to_group")
REASON_MAX = 500
# A reason may span lines; other control characters (NUL breaks PostgreSQL) are refused.
_REASON_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def visible_tasks_query(
    db_session: Session,
    user: User,
    *,
    scope: str = "all",
    instance_id: int | None = None,
    ticket_id: int | None = None,
):
    """Open tasks ``user`` may see. scope: mine (assigned to them), group (unclaimed and
    offered to them or their groups), all (everything they may see)."""
    query = (
        select(HumanTask)
        .where(HumanTask.status == "open", task_condition(db_session, user))
        .order_by(HumanTask.created_at)
        .options(selectinload(HumanTask.candidates))
    )
    if scope == "mine":
        query = query.where(HumanTask.assignee == user.username)
    elif scope == "group":
        query = query.where(and_(HumanTask.assignee.is_(None), my_task_condition(user)))
    if instance_id is not None:
        query = query.where(HumanTask.instance_id == instance_id)
    if ticket_id is not None:
        query = query.where(HumanTask.ticket_id == ticket_id)
    return query


def get_visible_task(*, db_session: Session, user: User, task_id: str) -> HumanTask:
    """The task, if ``user`` may see it; otherwise 404 (ids cannot be probed)."""
    try:
        UUID(task_id)  # task ids are SpiffWorkflow's; anything else names no task
    except ValueError:
        raise NotFound(f"任务 {task_id} 不存在", f"task {task_id} not found") from None
    task = db_session.scalar(
        select(HumanTask)
        .where(HumanTask.id == task_id, task_condition(db_session, user))
        .options(selectinload(HumanTask.candidates))
    )
    if task is None:
        raise NotFound(f"任务 {task_id} 不存在", f"task {task_id} not found")
    return task


def _locked_visible_task(db_session: Session, user: User, task_id: str) -> HumanTask:
    """The task as it is once its instance is locked, if the caller could see it before.

    The rules are then applied to what the lock shows, so of two people acting at once the
    second is told what the first did (409 "held by …"), not that the task vanished.
    """
    get_visible_task(db_session=db_session, user=user, task_id=task_id)
    return lock_task(db_session=db_session, task_id=task_id)


_VERBS = {
    "claim": ("认领", "claimed"),
    "unclaim": ("退回", "given back"),
    "transfer": ("转派", "transferred"),
}
_STATUS_ZH = {"completed": "完成", "cancelled": "取消"}


def _require_open(task: HumanTask, verb: str) -> None:
    if task.status != "open":
        zh, en = _VERBS[verb]
        raise Conflict(
            f"任务 {task.name}（{task.id}）已经{_STATUS_ZH.get(task.status, task.status)}，不能再{zh}",
            f"task {task.name} ({task.id}) is already {task.status} and cannot be {en}",
        )


def is_candidate(user: User, task: HumanTask) -> bool:
    """Offered to the user by name or through one of their groups (by code or name)."""
    return user.username in task.candidate_users or bool(
        user.group_names() & set(task.candidate_groups)
    )


def in_pool(db_session: Session, task: HumanTask) -> bool:
    """Whether the task waits in the dispatch pool (工单池) of its groups."""
    groups = task.candidate_groups
    return (
        bool(groups)
        and task.ticket_id is not None
        and (settings_for(db_session, task, groups).mode == "pool")
    )


def claim(*, db_session: Session, user: User, task_id: str) -> HumanTask:
    """A candidate takes an unclaimed task; it leaves the inboxes of the other candidates."""
    task = _locked_visible_task(db_session, user, task_id)
    _require_open(task, "claim")
    if task.assignee == user.username:
        raise Conflict(
            f"任务 {task.name}（{task.id}）已经由你处理，无需认领",
            f"task {task.name} ({task.id}) is already yours; there is nothing to claim",
        )
    if task.assignee:
        raise Conflict(
            f"任务 {task.name}（{task.id}）已由 {task.assignee} 处理，不能认领；请让调度员转派",
            f"task {task.name} ({task.id}) is held by {task.assignee} and cannot be claimed; "
            "ask a dispatcher to transfer it",
        )
    if not is_candidate(user, task):
        raise NotAllowed(
            f"你不是任务 {task.name}（{task.id}）的候选人，不能认领；请转派给处理人",
            f"you are not a candidate of task {task.name} ({task.id}) and cannot claim it; "
            "transfer it to someone who is",
        )
    if in_pool(db_session, task):
        # 工单池: claiming is grabbing, with the engineer's hard constraints checked and the
        # decision stored. Imported here: dispatch builds on the inbox's services.
        from app.dispatch.service import grab

        return grab(db_session=db_session, user=user, task_id=task.id)
    before, after = reassign_task(
        db_session=db_session,
        task=task,
        event_type="task_claimed",
        assignee=user.username,
        actor=user.username,
    )
    _audit(db_session, user, "task.claim", task, before, after)
    return task


def unclaim(*, db_session: Session, user: User, task_id: str) -> HumanTask:
    """Give a claimed task back to its candidates: its holder, a dispatcher or an admin.

    Only a claim can be given back. An assignment made by the process (``camunda:assignee``)
    or by a transfer is changed by a transfer, which needs a reason: giving such a task back
    could leave it with no candidates at all.
    """
    task = _locked_visible_task(db_session, user, task_id)
    _require_open(task, "unclaim")
    if not task.assignee:
        raise Conflict(
            f"任务 {task.name}（{task.id}）没有人认领，无需退回",
            f"task {task.name} ({task.id}) is not claimed by anyone; there is nothing to give back",
        )
    if task.assignee != user.username and user.role not in DISPATCHING_ROLES:
        raise NotAllowed(
            f"任务 {task.name}（{task.id}）由 {task.assignee} 处理，只有他本人、调度员或管理员可以退回",
            f"task {task.name} ({task.id}) is held by {task.assignee}; only they, a dispatcher "
            "or an admin can give it back",
        )
    last = last_assignment(db_session=db_session, task=task)
    if last is None:
        raise Conflict(
            f"任务 {task.name}（{task.id}）是流程指派给 {task.assignee} 的（camunda:assignee），"
            "不是认领的，不能退回；请改为转派",
            f"task {task.name} ({task.id}) was assigned to {task.assignee} by the process "
            "(camunda:assignee), not claimed, so it cannot be given back; transfer it instead",
        )
    if last.event_type != "task_claimed":
        raise Conflict(
            f"任务 {task.name}（{task.id}）是 {last.actor} 转派给 {task.assignee} 的，不是认领的，"
            "不能退回；请改为转派",
            f"task {task.name} ({task.id}) was transferred to {task.assignee} by {last.actor}, "
            "not claimed, so it cannot be given back; transfer it instead",
        )
    before, after = reassign_task(
        db_session=db_session,
        task=task,
        event_type="task_unclaimed",
        assignee=None,
        actor=user.username,
    )
    _audit(db_session, user, "task.unclaim", task, before, after)
    return task


def transfer(
    *,
    db_session: Session,
    user: User,
    task_id: str,
    reason: str,
    to_user: str | None = None,
    to_group: str | None = None,
) -> HumanTask:
    """转派: give a task to a person (who then holds it) or to a group (whose members may
    claim it; candidates are replaced and nobody holds it). By its holder, a dispatcher (the
    tasks they can see: their departments' and groups') or an admin; a reason is required."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(
            "请填写转派原因（reason）",
            "give the reason for the transfer (reason)",
            errors={"reason": ["required"]},
        )
    if len(reason) > REASON_MAX or _REASON_CONTROL.search(reason):
        raise InvalidInput(
            f"转派原因（reason）最多 {REASON_MAX} 个字，且不能包含控制字符（收到 {len(reason)} 个字）",
            f"the reason for the transfer may have at most {REASON_MAX} characters and no "
            f"control characters ({len(reason)} were sent)",
            errors={"reason": [f"≤ {REASON_MAX}"]},
        )
    if bool(to_user) == bool(to_group):
        raise InvalidInput(
            "请在 to_user 与 to_group 中给出且只给出一个转派目标",
            "give exactly one target: to_user or to_group",
            errors={name: ["give exactly one of to_user, to_group"] for name in TARGETS},
        )
    task = _locked_visible_task(db_session, user, task_id)
    _require_open(task, "transfer")
    if user.role == "requester":
        # A requester's task (acceptance) is theirs alone: handing it on would let another
        # person accept work on a work order they did not report.
        raise NotAllowed(
            f"任务 {task.name}（{task.id}）需要你本人办理，不能转派；如需他人代办请联系服务台",
            f"task {task.name} ({task.id}) is yours to do and cannot be transferred; ask the "
            "service desk if someone else should do it",
        )
    if task.assignee != user.username and user.role not in DISPATCHING_ROLES:
        raise NotAllowed(
            f"只有任务 {task.name}（{task.id}）的处理人、调度员或管理员可以转派；请先认领",
            f"only the holder of task {task.name} ({task.id}), a dispatcher or an admin can "
            "transfer it; claim it first",
        )
    if to_user:
        assignee, groups = _transfer_to_user(db_session, user, task, to_user), None
    else:
        assignee, groups = None, [_transfer_to_group(db_session, task, to_group)]
    before, after = reassign_task(
        db_session=db_session,
        task=task,
        event_type="task_transferred",
        assignee=assignee,
        candidate_groups=groups,
        reason=reason,
        actor=user.username,
    )
    _audit(db_session, user, "task.transfer", task, before, {**after, "reason": reason})
    return task


def _transfer_to_user(db_session: Session, user: User, task: HumanTask, username: str) -> str:
    target = find_user(db_session=db_session, username=username)
    if target is None or not target.is_active:
        raise InvalidInput(
            f"转派目标用户 {username} 不存在或已停用，请选择在职的用户",
            f"user {username} does not exist or is deactivated; choose an active user",
            errors={"to_user": [f"no active user {username}"]},
        )
    if target.kind != "person" or target.role == "finance":
        raise InvalidInput(
            f"用户 {username} 不处理任务（系统账号或财务），请选择其他用户",
            f"user {username} does not work on tasks (a system account or finance); choose "
            "another user",
            errors={"to_user": [f"{username} does not work on tasks"]},
        )
    if target.username == user.username:
        raise InvalidInput(
            f"不能把任务 {task.name} 转派给自己（{username}）；要处理它请认领",
            f"you ({username}) cannot transfer task {task.name} to yourself; claim it instead",
            errors={"to_user": ["the caller"]},
        )
    if target.username == task.assignee:
        raise InvalidInput(
            f"任务 {task.name} 已经由 {username} 处理，请选择其他用户",
            f"task {task.name} is already held by {username}; choose another user",
            errors={"to_user": [f"already held by {username}"]},
        )
    return target.username


def _transfer_to_group(db_session: Session, task: HumanTask, code: str) -> str:
    group = db_session.scalar(select(Group).where(Group.code == code))
    if group is None or not any(m.is_active and m.kind == "person" for m in group.members):
        raise InvalidInput(
            f"转派目标组 {code} 不存在或没有在职成员，请选择其他组",
            f"group {code} does not exist or has no active members; choose another group",
            errors={"to_group": [f"no group {code} with active members"]},
        )
    # A lane may name a group by its name rather than its code.
    names = {group.code, group.name}
    offered_only_to_it = (
        task.candidate_groups
        and set(task.candidate_groups) <= names
        and not task.candidate_users
        and task.assignee is None
    )
    if offered_only_to_it:
        raise InvalidInput(
            f"任务 {task.name} 已经在组 {code} 的待办中，请选择其他组或用户",
            f"task {task.name} is already offered to group {code}; choose another group or a user",
            errors={"to_group": [f"already offered to {code}"]},
        )
    return group.code


def complete(*, db_session: Session, user: User, task_id: str, data: dict) -> ProcessInstance:
    """Complete a task with its form data: the holder, a candidate of an unclaimed task, or an
    admin. The data is validated against the task's form by the engine."""
    task = _locked_visible_task(db_session, user, task_id)
    if task.status == "open" and not may_work_on(user, task):
        raise NotAllowed(
            f"任务 {task.name} 不是分配给你的，请先认领或转派",
            f"task {task.name} is not yours; claim it or have it transferred first",
        )
    # A dispatch step (a form asking for the engineer) is checked before anything changes.
    choice = check_choice(db_session=db_session, user=user, task=task, data=data or {})
    before = {"status": task.status, "assignee": task.assignee}
    instance = complete_task(db_session=db_session, task_id=task_id, data=data, actor=user.username)
    if choice is not None:
        store_choice(db_session=db_session, user=user, task=task, choice=choice)
    _audit(
        db_session,
        user,
        "task.complete",
        task,
        before,
        {"status": task.status, "completed_by": task.completed_by, "data": data},
    )
    return instance


def _audit(db_session: Session, user: User, action: str, task, before, after) -> None:
    # The work order and the step, so that a reader of the trail need not look the task up.
    where = {"ticket_id": task.ticket_id, "task": task.name}
    record(
        db_session=db_session,
        action=action,
        object_type="task",
        object_id=task.id,
        before={**where, **before},
        after={**where, **after},
        actor=user.username,
    )
