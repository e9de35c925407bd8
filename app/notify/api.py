"""/api/v1/notifications: the caller's own notifications, and marking them read. Another
person's notification answers 404, whatever the caller's role."""

from __future__ import annotations

from flask_login import current_user

from app.api import Blueprint, problems
from app.auth.access import login_required
from app.extensions import db
from app.notify import service
from app.notify.schemas import (
    NOTIFICATION_EXAMPLE,
    NotificationListArgs,
    NotificationPageSchema,
    NotificationSchema,
    ReadAllSchema,
)

blp = Blueprint(
    "notifications",
    __name__,
    url_prefix="/api/v1/notifications",
    description="我的通知：列表、标为已读 / my notifications: list, mark read",
)

NOTIFICATION_ID = [{"in": "path", "name": "notification_id", "example": NOTIFICATION_EXAMPLE["id"]}]


@blp.route("", methods=["GET"])
@blp.arguments(NotificationListArgs, location="query")
@blp.response(
    200,
    NotificationPageSchema,
    example={"items": [NOTIFICATION_EXAMPLE], "total": 1, "page": 1, "per_page": 20, "unread": 1},
)
@problems(blp, 400, 401)
@login_required
def list_notifications(args):
    """My notifications, newest first (`unread=true`: only those not read yet)."""
    page = service.list_for(
        db.session,
        user=current_user,
        unread_only=args["unread"],
        page=args["page"],
        per_page=args["per_page"],
    )
    page["unread"] = service.unread_count(db.session, user=current_user)
    return page


@blp.route("/<int:notification_id>/read", methods=["POST"], parameters=NOTIFICATION_ID)
@blp.response(
    200,
    NotificationSchema,
    example={**NOTIFICATION_EXAMPLE, "read_at": "2026-11-27T02:41:00+00:00", "read": True},
)
@problems(blp, 401, 404)
@login_required
def read_notification(notification_id: int):
    """Mark one of my notifications read (reading it again keeps the first time)."""
    notification = service.mark_read(db.session, user=current_user, notification_id=notification_id)
    db.session.commit()
    return notification


@blp.route("/read-all", methods=["POST"])
@blp.response(200, ReadAllSchema, example={"marked": 3, "unread": 0})
@problems(blp, 401)
@login_required
def read_all_notifications():
    """Mark all my notifications read."""
    marked = service.mark_all_read(db.session, user=current_user)
    db.session.commit()
    return {"marked": marked, "unread": 0}
