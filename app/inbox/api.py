"""/api/v1/tasks: the caller's open tasks; reading, claiming, giving back, transferring and
completing one. A task the caller may not see answers 404 on every route."""

from __future__ import annotations

from flask_login import current_user
from marshmallow import Schema, fields, validate

from app import engine
from app.api import Blueprint, PageArgs, PageSchema, paginate, problems
from app.auth.access import login_required
from app.engine import task_form
from app.extensions import db
from app.inbox import service
from app.workflows.schemas import (
    TASK_EXAMPLE,
    TaskSchema,
    multi_line,
    one_line,
)

blp = Blueprint(
    "tasks",
    __name__,
    url_prefix="/api/v1/tasks",
    description="待办任务：认领、退回、转派、完成 / human tasks: claim, give back, transfer, complete",
)


class TaskListArgs(PageArgs):
    scope = fields.String(
        load_default="all",
        validate=validate.OneOf(service.SCOPES),
        metadata={
            "description": "mine: assigned to me; group: unclaimed, offered to me or my "
            "groups; all: everything I may see",
            "example": "group",
        },
    )
    process_instance_id = fields.Integer(
        validate=validate.Range(min=1, max=2**63 - 1), metadata={"example": 17}
    )
    ticket_id = fields.Integer(
        validate=validate.Range(min=1, max=2**31 - 1), metadata={"example": 42}
    )


class TaskPageSchema(PageSchema):
    items = fields.List(fields.Nested(TaskSchema))


class TaskDetailSchema(TaskSchema):
    form = fields.Dict(
        allow_none=True, metadata={"description": "the form-js schema the data must fit"}
    )


class CompleteArgs(Schema):
    data = fields.Dict(load_default=dict, metadata={"description": "the task form's fields"})


class CompletedSchema(Schema):
    task = fields.Nested(TaskSchema)
    instance_status = fields.String()
    next_tasks = fields.List(fields.Nested(TaskSchema))


class TransferArgs(Schema):
    to_user = fields.String(
        validate=[validate.Length(min=1, max=100), one_line],
        metadata={"description": "username; the person then holds the task"},
    )
    to_group = fields.String(
        validate=[validate.Length(min=1, max=50), one_line],
        metadata={"description": "group code; its members may claim the task"},
    )
    reason = fields.String(
        required=True, validate=[validate.Length(min=1, max=service.REASON_MAX), multi_line]
    )


CLAIMED_EXAMPLE = {**TASK_EXAMPLE, "assignee": "net1"}
TASK_ID = [{"in": "path", "name": "task_id", "example": TASK_EXAMPLE["id"]}]


@blp.route("", methods=["GET"])
@blp.arguments(TaskListArgs, location="query")
@blp.response(
    200,
    TaskPageSchema,
    example={"items": [TASK_EXAMPLE], "total": 1, "page": 1, "per_page": 20},
)
@problems(blp, 400, 401)
@login_required
def list_tasks(args):
    """Open tasks the caller may work on (admins: all), optionally for one instance or ticket."""
    query = service.visible_tasks_query(
        db.session,
        current_user,
        scope=args["scope"],
        instance_id=args.get("process_instance_id"),
        ticket_id=args.get("ticket_id"),
    )
    return paginate(db.session, query, args["page"], args["per_page"])


@blp.route("/<task_id>", methods=["GET"], parameters=TASK_ID)
@blp.response(200, TaskDetailSchema, example={**TASK_EXAMPLE, "form": {"id": "it_handle"}})
@problems(blp, 401, 404)
@login_required
def get_task(task_id: str):
    """A task the caller may see, with the form its data must fit."""
    task = service.get_visible_task(db_session=db.session, user=current_user, task_id=task_id)
    view = {name: getattr(task, name) for name in TaskSchema().fields}
    view["form"] = task_form(db_session=db.session, task=task)
    return view


@blp.route("/<task_id>/claim", methods=["POST"], parameters=TASK_ID)
@blp.response(200, TaskSchema, example=CLAIMED_EXAMPLE)
@problems(blp, 401, 403, 404, 409)
@login_required
def claim_task(task_id: str):
    """Take an unclaimed task offered to you or your group; 409 when someone holds it."""
    task = service.claim(db_session=db.session, user=current_user, task_id=task_id)
    db.session.commit()
    return task


@blp.route("/<task_id>/unclaim", methods=["POST"], parameters=TASK_ID)
@blp.response(200, TaskSchema, example=TASK_EXAMPLE)
@problems(blp, 401, 403, 404, 409)
@login_required
def unclaim_task(task_id: str):
    """Give a claimed task back to its candidates (its holder, a dispatcher or an admin).

    A task the process assigned (`camunda:assignee`) or a transfer gave is not a claim: 409.
    """
    task = service.unclaim(db_session=db.session, user=current_user, task_id=task_id)
    db.session.commit()
    return task


@blp.route("/<task_id>/transfer", methods=["POST"], parameters=TASK_ID)
@blp.arguments(
    TransferArgs,
    example={"to_user": "hw1", "reason": "故障在交换机硬件，转硬件组处理"},
)
@blp.response(200, TaskSchema, example={**TASK_EXAMPLE, "assignee": "hw1"})
@problems(blp, 400, 401, 403, 404, 409)
@login_required
def transfer_task(args, task_id: str):
    """转派: give the task to a user (`to_user`) or a group (`to_group`), with a reason.

    By its holder, a dispatcher or an admin. To a group: the group replaces the candidates and
    nobody holds the task until a member claims it.
    """
    task = service.transfer(db_session=db.session, user=current_user, task_id=task_id, **args)
    db.session.commit()
    return task


@blp.route("/<task_id>/complete", methods=["POST"], parameters=TASK_ID)
@blp.arguments(
    CompleteArgs,
    example={"data": {"solution": "重置 VPN 证书", "time_spent_minutes": 20}},
)
@blp.response(
    200,
    CompletedSchema,
    example={
        "task": {**CLAIMED_EXAMPLE, "status": "completed", "completed_by": "net1"},
        "instance_status": "running",
        "next_tasks": [
            {
                **TASK_EXAMPLE,
                "id": "0b4f8a57-6c1e-4d0a-9a53-2f1d9e1c7a10",
                "element_id": "task_review",
                "name": "复核",
                "form_key": "it_review",
                "candidate_groups": ["service_desk"],
                "due_at": None,
            }
        ],
    },
)
@problems(blp, 400, 401, 403, 404, 409, 422)
@login_required
def complete_task(args, task_id: str):
    """Complete a task with its form data under `data`; invalid fields are named (400); 409
    when it is no longer open; 422 when the process cannot continue with the data."""
    instance = service.complete(
        db_session=db.session, user=current_user, task_id=task_id, data=args["data"]
    )
    db.session.commit()
    return {
        "task": engine.get_task(db_session=db.session, task_id=task_id),
        "instance_status": instance.status,
        "next_tasks": engine.open_tasks(db_session=db.session, instance_id=instance.id),
    }
