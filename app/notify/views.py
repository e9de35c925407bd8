"""The notifications page (mine, newest first), marking read, and the count in the top bar."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.auth.access import login_required
from app.errors import InvalidInput
from app.extensions import db
from app.i18n import current_language
from app.notify import service
from app.notify.models import Notification

bp = Blueprint("notify_pages", __name__)


@dataclass
class NavLink:
    href: str
    label: str
    unread: int
    active: bool


@bp.app_template_global("notification_nav")
def notification_nav() -> NavLink | None:
    """The top bar's link to /notifications with the unread count (base.html)."""
    if not current_user.is_authenticated:
        return None
    href = url_for("notify_pages.notifications")
    return NavLink(
        href=href,
        label=_("Notifications"),
        unread=service.unread_count(db.session, user=current_user),
        active=request.path == href or request.path.startswith(href + "/"),
    )


def kind_label(kind: str) -> str:
    labels = {"sla_reminder": _("Overdue reminder"), "sla_escalation": _("Escalation")}
    return labels.get(kind, "")


@dataclass
class Item:
    notification: Notification
    title: str
    body: str
    kind: str

    @property
    def unread(self) -> bool:
        return self.notification.read_at is None

    @property
    def href(self) -> str | None:
        """The page it is about, when that is a page of this site."""
        link = self.notification.link
        if link and not urlsplit(link).netloc and link.startswith("/") and "\\" not in link:
            return link
        return None


def _item(notification: Notification) -> Item:
    zh = current_language() == "zh"
    return Item(
        notification=notification,
        title=notification.title_zh if zh else notification.title_en,
        body=notification.body_zh if zh else notification.body_en,
        kind=kind_label(notification.kind),
    )


def _page_number() -> int:
    try:
        return min(max(int(request.args.get("page", 1)), 1), 1_000_000)
    except ValueError:
        return 1


@bp.get("/notifications")
@login_required
def notifications():
    """Mine, newest first; ?unread=1 for the unread ones only."""
    unread_only = request.args.get("unread") in {"1", "true"}
    per_page = current_app.config["INBOX_PAGE_SIZE"]
    listing = service.list_for(
        db.session,
        user=current_user,
        unread_only=unread_only,
        page=_page_number(),
        per_page=per_page,
    )
    listing["pages"] = max(1, -(-listing["total"] // per_page))
    return render_template(
        "notify/notifications.html",
        items=[_item(n) for n in listing["items"]],
        listing=listing,
        unread_only=unread_only,
        unread=service.unread_count(db.session, user=current_user),
    )


@bp.post("/notifications/read")
@login_required
def read():
    """Mark one read (form field `notification_id`); htmx gets the item back and the new
    count, a plain form a redirect to the list."""
    notification = service.mark_read(
        db.session, user=current_user, notification_id=_notification_id()
    )
    db.session.commit()
    if request.headers.get("HX-Request"):
        return render_template(
            "notify/read_fragment.html",
            item=_item(notification),
            unread=service.unread_count(db.session, user=current_user),
        )
    return redirect(url_for("notify_pages.notifications"))


def _notification_id() -> int:
    raw = request.form.get("notification_id", "")
    if not raw.isdigit():
        raise InvalidInput(
            "缺少要标为已读的通知编号（notification_id），请刷新页面后重试",
            "the notification to mark read (notification_id) is missing; reload the page",
            errors={"notification_id": ["a notification number"]},
        )
    return int(raw)


@bp.post("/notifications/read-all")
@login_required
def read_all():
    """Mark all mine read and show the list again."""
    marked = service.mark_all_read(db.session, user=current_user)
    db.session.commit()
    flash(_("Marked as read: %(num)d", num=marked))
    return redirect(url_for("notify_pages.notifications"))
