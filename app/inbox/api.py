"""/api/v1/tasks: the caller's open tasks, and completing one."""

from __future__ import annotations

from flask_login import current_user
from marshmallow import Schema, fields, validate

from app import engine
from app.api import Blueprint, PageArgs, paginate
from app.auth.access import login_required
from app.extensions import db
from app.inbox.service import SCOPES, complete, visible_tasks_query
from app.workflows.schemas import TaskSchema

blp = Blueprint(
    "tasks",
    __name__,
    url_prefix="/api/v1/tasks",
    description="待办任务 / open human tasks",
)


class TaskListArgs(PageArgs):
    scope = fields.String(load_default="all", validate=validate.OneOf(SCOPES))
    process_instance_id = fields.Integer()
    ticket_id = fields.Integer()


class TaskPageSchema(Schema):
    items = fields.List(fields.Nested(TaskSchema))
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()


class CompleteArgs(Schema):
    data = fields.Dict(load_default=dict)


class CompletedSchema(Schema):
    task = fields.Nested(TaskSchema)
    instance_status = fields.String()
    next_tasks = fields.List(fields.Nested(TaskSchema))


@blp.route("", methods=["GET"])
@blp.arguments(TaskListArgs, location="query")
@blp.response(200, TaskPageSchema)
@login_required
def list_tasks(args):
    """Open tasks the caller may work on (admins: all), optionally for one instance or ticket."""
    query = visible_tasks_query(
        db.session,
        current_user,
        scope=args["scope"],
        instance_id=args.get("process_instance_id"),
        ticket_id=args.get("ticket_id"),
    )
    return paginate(db.session, query, args["page"], args["per_page"])


@blp.route("/<task_id>/complete", methods=["POST"])
@blp.arguments(CompleteArgs)
@blp.response(200, CompletedSchema)
@login_required
def complete_task(args, task_id: str):
    """Complete a task with its form data under `data`; 409 when it is no longer open."""
    instance = complete(
        db_session=db.session, user=current_user, task_id=task_id, data=args["data"]
    )
    db.session.commit()
    return {
        "task": engine.get_task(db_session=db.session, task_id=task_id),
        "instance_status": instance.status,
        "next_tasks": engine.open_tasks(db_session=db.session, instance_id=instance.id),
    }
