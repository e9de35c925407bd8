"""Who may do what, in one place: sign-in for the API, role checks, and the visibility rules
that every query of tickets and tasks applies (least privilege lives in SQL, not in templates).

| role       | work orders it sees                                   | tasks it sees                 |
|------------|-------------------------------------------------------|-------------------------------|
| admin      | all                                                   | all                           |
| dispatcher | its departments' (subtree), those with an open task of its groups, those it worked on | its own, its groups', its departments' |
| handler    | those with a task for it (assigned, done, or unclaimed in its groups) | its own and its groups' unclaimed |
| reviewer   | as handler (review tasks come to its groups)           | as handler                    |
| requester  | its own                                               | those addressed to it         |
| finance    | all, through the cost view only                       | none                          |

Dispatchers, handlers and reviewers also see the work orders they reported themselves (the
portal is open to them).

A resource outside what the caller sees answers 404, never 403, so ids cannot be probed.
"""

from __future__ import annotations

from functools import wraps

from flask import g
from flask_login import current_user
from sqlalchemy import and_, exists, false, or_, select, true
from sqlalchemy.orm import Session

from app.auth.models import Department, User
from app.errors import NotAllowed, PaidanError
from app.extensions import db, login_manager


class NotSignedIn(PaidanError):
    status = 401
    title = "Unauthorized"


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    user = db.session.get(User, int(user_id))
    if user is not None:
        g.auth_source = "page"
    return user


@login_manager.request_loader
def load_user_from_request(req) -> User | None:
    """`Authorization: Bearer <token>` for the API (personal or system tokens)."""
    from app.auth.tokens import user_for_token

    header = req.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    found = user_for_token(db_session=db.session, token=header[7:].strip())
    if found is None:
        return None
    user, token = found
    g.auth_source = "api_token" if token.kind == "system" else "api"
    return user


def login_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_authenticated:
            raise NotSignedIn("请先登录或提供有效的令牌", "sign in or send a valid bearer token")
        return view(*args, **kwargs)

    return wrapper


def roles_required(*roles: str):
    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if not current_user.is_authenticated:
                raise NotSignedIn(
                    "请先登录或提供有效的令牌", "sign in or send a valid bearer token"
                )
            if current_user.role not in roles:
                raise NotAllowed(
                    f"需要以下角色之一：{', '.join(roles)}",
                    f"this needs one of the roles: {', '.join(roles)}",
                )
            return view(*args, **kwargs)

        return wrapper

    return decorate


# ---------------------------------------------------------------- visibility


def department_subtree(db_session: Session, department_id: int | None) -> list[int]:
    """A department and every department below it."""
    if department_id is None:
        return []
    found, frontier = [department_id], [department_id]
    while frontier:
        frontier = list(
            db_session.scalars(select(Department.id).where(Department.parent_id.in_(frontier)))
        )
        found.extend(frontier)
    return found


def my_task_condition(user: User):
    """Tasks that are the user's to work on: assigned to them, or unclaimed and offered to them."""
    from app.engine.models import HumanTask, HumanTaskCandidate

    offered = exists().where(
        HumanTaskCandidate.task_id == HumanTask.id,
        or_(
            and_(HumanTaskCandidate.kind == "user", HumanTaskCandidate.value == user.username),
            and_(
                HumanTaskCandidate.kind == "group",
                HumanTaskCandidate.value.in_(sorted(user.group_names())),
            ),
        ),
    )
    return or_(HumanTask.assignee == user.username, and_(HumanTask.assignee.is_(None), offered))


def task_condition(db_session: Session, user: User):
    """SQL condition on HumanTask: the tasks ``user`` may see."""
    from app.engine.models import HumanTask, HumanTaskCandidate
    from app.tickets.models import Ticket

    if user.role == "admin":
        return true()
    if user.role == "finance":
        return false()
    mine = my_task_condition(user)
    if user.role == "dispatcher":
        departments = department_subtree(db_session, user.department_id)
        in_departments = HumanTask.ticket_id.in_(
            select(Ticket.id).where(Ticket.department_id.in_(departments))
        )
        # A dispatcher also sees its groups' tasks that a member already holds, to move them.
        of_my_groups = exists().where(
            HumanTaskCandidate.task_id == HumanTask.id,
            HumanTaskCandidate.kind == "group",
            HumanTaskCandidate.value.in_(sorted(user.group_names())),
        )
        return or_(mine, in_departments, of_my_groups)
    return mine


def ticket_condition(db_session: Session, user: User):
    """SQL condition on Ticket: the work orders ``user`` may see."""
    from app.engine.models import HumanTask, HumanTaskCandidate
    from app.tickets.models import Ticket

    if user.role in {"admin", "finance"}:
        return true()
    reported = Ticket.requester_id == user.id
    if user.role == "requester":
        return reported
    worked_on = exists().where(
        HumanTask.ticket_id == Ticket.id,
        or_(
            HumanTask.completed_by == user.username,
            and_(HumanTask.status == "open", my_task_condition(user)),
        ),
    )
    # Staff report faults through the portal too, and follow what they reported.
    if user.role == "dispatcher":
        departments = department_subtree(db_session, user.department_id)
        # The open tasks of its groups a dispatcher may move (task_condition): it sees the
        # work orders they belong to, or it would move work it cannot read.
        of_my_groups = exists().where(
            HumanTask.ticket_id == Ticket.id,
            HumanTask.status == "open",
            HumanTaskCandidate.task_id == HumanTask.id,
            HumanTaskCandidate.kind == "group",
            HumanTaskCandidate.value.in_(sorted(user.group_names())),
        )
        return or_(reported, worked_on, of_my_groups, Ticket.department_id.in_(departments))
    return or_(reported, worked_on)


# What a requester's history shows: submission, the steps reached, the end, and the tasks
# the requester completed (acceptance). Other people's task data and internal steps stay out.
REQUESTER_EVENTS = ("process_started", "task_created", "process_completed")


def event_condition(user: User):
    """SQL condition on ProcessEvent: the history entries of a visible work order ``user`` sees."""
    from app.engine.models import ProcessEvent

    if user.role != "requester":
        return true()
    return or_(
        ProcessEvent.event_type.in_(REQUESTER_EVENTS),
        and_(ProcessEvent.event_type == "task_completed", ProcessEvent.actor == user.username),
    )


def may_work_on(user: User, task) -> bool:
    """A task is the user's when it names them, or names none and a group of theirs is a candidate."""
    if user.is_admin:
        return True
    if task.assignee:
        return task.assignee == user.username
    if user.username in task.candidate_users:
        return True
    return bool(user.group_names() & set(task.candidate_groups))


def schema_for(user: User, schema_class, views: dict[str, dict], **kwargs):
    """Field visibility per role, the one mechanism: ``views`` maps a role (or "*") to the
    marshmallow ``only=`` / ``exclude=`` options of the schema that role is answered with."""
    options = views.get(user.role, views.get("*", {}))
    return schema_class(**options, **kwargs)
