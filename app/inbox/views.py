"""Inbox pages for handlers, reviewers and dispatchers: my tasks, my groups' tasks, task forms."""

from __future__ import annotations

import json

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from app.auth.access import login_required, roles_required
from app.engine.models import ProcessInstance
from app.errors import InvalidInput, NotFound, PaidanError
from app.extensions import db
from app.i18n import current_language, error_text, pick
from app.inbox import service
from app.inbox.listing import (
    INBOX_ROLES,
    describe,
    display_names,
    group_labels,
    inbox_listing,
    parse_filters,
    process_names,
    tab_counts,
    tabs_for,
    visible_ticket_ids,
)
from app.inbox.taskpage import (
    acts_on,
    dispatch_step_view,
    handovers,
    offer_engineers,
    task_form_view,
    transfer_choices,
)
from app.tickets.models import PRIORITIES, Device, Ticket
from app.timeutil import utcnow
from app.views import my_open_task_count

bp = Blueprint("inbox_pages", __name__)


def _tab_labels() -> dict[str, str]:
    return {"mine": _("My tasks"), "group": _("Group queue"), "all": _("All")}


def _listing_context() -> dict:
    filters = parse_filters(request.args, current_user)
    return {
        "filters": filters,
        "tabs": tabs_for(current_user),
        "tab_labels": _tab_labels(),
        "counts": tab_counts(db.session, current_user),
        "listing": inbox_listing(
            db.session, current_user, filters, current_app.config["INBOX_PAGE_SIZE"]
        ),
        "processes": process_names(db.session),
        "priorities": PRIORITIES,
        "refresh_seconds": current_app.config["INBOX_REFRESH_SECONDS"],
    }


@bp.get("/inbox")
@roles_required(*INBOX_ROLES)
def inbox():
    """Tabs mine / group (/ all), filters and one page of tasks; the list refreshes itself."""
    # An engineer's phone reports its position while the inbox is open (dispatch ranks by it).
    islands = ["position"] if current_user.role == "handler" else []
    return render_template("inbox/inbox.html", islands=islands, **_listing_context())


@bp.get("/inbox/list")
@roles_required(*INBOX_ROLES)
def inbox_list():
    """The list alone (htmx polling), with the tab counts and the menu badge swapped out of band."""
    return render_template(
        "inbox/list_fragment.html", badge=my_open_task_count(current_user), **_listing_context()
    )


@bp.post("/inbox/tasks/<task_id>/claim")
@roles_required(*INBOX_ROLES)
def claim_in_list(task_id: str):
    """Claim from the list (htmx): the item as it now is, and the new counts."""
    try:
        task = service.claim(db_session=db.session, user=current_user, task_id=task_id)
    except NotFound:
        # Seen in this person's list a moment ago: another candidate claimed it, or it is done.
        raise NotFound(
            "这项任务已不在你的待办中（可能刚被他人认领或已办结），列表会自动刷新",
            "this task is no longer in your inbox (someone may have just claimed it, or it "
            "is done); the list refreshes by itself",
        ) from None
    db.session.commit()
    ticket = db.session.get(Ticket, task.ticket_id) if task.ticket_id else None
    (item,) = describe(db.session, current_user, [(task, ticket, _process_key(task))])
    return render_template(
        "inbox/claimed_fragment.html",
        item=item,
        tabs=tabs_for(current_user),
        counts=tab_counts(db.session, current_user),
        badge=my_open_task_count(current_user),
    )


def _process_key(task) -> str:
    return db.session.scalar(
        select(ProcessInstance.process_key).where(ProcessInstance.id == task.instance_id)
    )


# ---------------------------------------------------------------- one task


@bp.get("/tasks/<task_id>")
@login_required
def task_page(task_id: str):
    """A task anyone who may see it can open: the work order, the form, claim, give back,
    transfer. Read-only for those who may see but not work on it."""
    task = service.get_visible_task(db_session=db.session, user=current_user, task_id=task_id)
    return _render_task(task)


def _render_task(task, *, error: str | None = None, values=None, status: int = 200):
    ticket = db.session.get(Ticket, task.ticket_id) if task.ticket_id else None
    acts = acts_on(db.session, current_user, task)
    schema = data = step = None
    if task.status == "open":
        schema, data = task_form_view(
            db.session, task, ticket, current_language(), readonly=not acts.complete
        )
        step, options = dispatch_step_view(
            db.session,
            current_user,
            task,
            ticket,
            may_complete=acts.complete,
            language=current_language(),
            wanted=request.args.get("engineer"),
        )
        offer_engineers(schema, data, step, options, wanted=request.args.get("engineer"))
    people, groups = transfer_choices(db.session, current_user, task) if acts.transfer else ([], [])
    history = handovers(db.session, current_user, task)
    names = {task.assignee, task.completed_by, *task.candidate_users}
    device = None
    if ticket is not None and ticket.device_no:
        device = db.session.scalar(select(Device).where(Device.device_no == ticket.device_no))
    process_key = _process_key(task)
    return (
        render_template(
            "inbox/task.html",
            task=task,
            has_inbox=current_user.role in INBOX_ROLES,
            ticket=ticket,
            ticket_visible=ticket is not None
            and ticket.id in visible_ticket_ids(db.session, current_user, {ticket.id}),
            device=device,
            process_name=process_names(db.session).get(process_key, process_key),
            acts=acts,
            step=step,
            schema=schema,
            data=data,
            people=people,
            groups=groups,
            history=history,
            overdue=task.status == "open" and task.due_at is not None and task.due_at < utcnow(),
            names=display_names(db.session, {n for n in names if n}),
            group_names=group_labels(db.session, set(task.candidate_groups)),
            error=error,
            values=values or {},
            islands=["form"] if schema is not None else [],
        ),
        status,
    )


@bp.post("/tasks/<task_id>/complete")
@login_required
def complete_task(task_id: str):
    """The form island's submit: field `data` (JSON). Answers {"redirect": url}; invalid data
    is a 400 problem naming the fields, and nothing changes."""
    data = _submitted_data(request.form.get("data"))
    task = service.get_visible_task(db_session=db.session, user=current_user, task_id=task_id)
    name, ticket_id = task.name, task.ticket_id
    service.complete(db_session=db.session, user=current_user, task_id=task_id, data=data)
    db.session.commit()
    flash(_("Completed: %(name)s", name=pick(name)))
    if current_user.role in INBOX_ROLES:
        return jsonify(redirect=url_for("inbox_pages.inbox"))
    return jsonify(redirect=f"/tickets/{ticket_id}" if ticket_id else "/portal")


def _submitted_data(raw: str | None) -> dict:
    try:
        data = json.loads(raw or "{}")
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise InvalidInput(
            "表单数据（data）必须是 JSON 对象，请刷新页面后重新提交",
            "the form data (data) must be a JSON object; reload the page and submit again",
            errors={"data": ["a JSON object"]},
        )
    return data


@bp.post("/tasks/<task_id>/claim")
@login_required
def claim_task(task_id: str):
    return _act(task_id, "claim")


@bp.post("/tasks/<task_id>/unclaim")
@login_required
def unclaim_task(task_id: str):
    return _act(task_id, "unclaim")


@bp.post("/tasks/<task_id>/transfer")
@login_required
def transfer_task(task_id: str):
    """转派 to a person or a group (one select, `target` = user:<name> or group:<code>), with
    the reason the service requires."""
    return _act(task_id, "transfer")


def _act(task_id: str, verb: str):
    """Claim, give back or transfer from a plain form: redirect with a message, or the task
    page again with the refusal in the reader's language (and what they typed)."""
    user = current_user
    try:
        if verb == "claim":
            task = service.claim(db_session=db.session, user=user, task_id=task_id)
            message = _("Claimed: %(name)s", name=pick(task.name))
        elif verb == "unclaim":
            task = service.unclaim(db_session=db.session, user=user, task_id=task_id)
            message = _("Given back: %(name)s", name=pick(task.name))
        else:
            kind, _sep, target = request.form.get("target", "").partition(":")
            task = service.transfer(
                db_session=db.session,
                user=user,
                task_id=task_id,
                reason=request.form.get("reason", ""),
                to_user=target if kind == "user" else None,
                to_group=target if kind == "group" else None,
            )
            message = _("Transferred: %(name)s", name=pick(task.name))
        db.session.commit()
    except PaidanError as exc:
        if exc.status == 404:
            raise
        db.session.rollback()
        task = service.get_visible_task(db_session=db.session, user=user, task_id=task_id)
        return _render_task(task, error=error_text(exc), values=request.form, status=exc.status)
    flash(message)
    if verb == "claim" or user.role not in INBOX_ROLES:
        return redirect(url_for("inbox_pages.task_page", task_id=task_id))
    return redirect(url_for("inbox_pages.inbox"))
