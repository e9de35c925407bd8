"""Who may do what: sign-in for the API and the access checks, in one place."""

from __future__ import annotations

import base64
from functools import wraps

from flask_login import current_user

from app.auth.models import User
from app.auth.service import authenticate
from app.errors import NotAllowed, PaidanError
from app.extensions import db, login_manager


class NotSignedIn(PaidanError):
    status = 401
    title = "Unauthorized"


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id))


@login_manager.request_loader
def load_user_from_request(req) -> User | None:
    """HTTP Basic for systems and scripts until API tokens arrive with the access-control issue."""
    header = req.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return None
    try:
        username, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return authenticate(db_session=db.session, username=username, password=password)


def login_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_authenticated:
            raise NotSignedIn("请先登录", "sign in first")
        return view(*args, **kwargs)

    return wrapper


def roles_required(*roles: str):
    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if not current_user.is_authenticated:
                raise NotSignedIn("请先登录", "sign in first")
            if current_user.role not in roles:
                raise NotAllowed(
                    f"需要以下角色之一：{', '.join(roles)}",
                    f"this needs one of the roles: {', '.join(roles)}",
                )
            return view(*args, **kwargs)

        return wrapper

    return decorate


def may_work_on(user: User, task) -> bool:
    """A task is the user's when it names them, or names none and a group of theirs is a candidate."""
    if user.is_admin:
        return True
    if task.assignee:
        return task.assignee == user.username
    if user.username in task.candidate_users:
        return True
    return bool(user.group_names() & set(task.candidate_groups))
