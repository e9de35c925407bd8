"""/api/v1/tickets: create a work order (which starts its process), list, read and change them.

Every answer passes through schema_for with TICKET_VIEWS: the role decides the fields, here
and in lists alike. The views build their JSON themselves for that reason; @blp.response
documents the full schema and passes a finished response through. Filters follow the same
table: a caller may not filter by what it may not see (finance cannot search titles).
"""

from __future__ import annotations

from flask import Response, jsonify
from flask_login import current_user

from app.api import Blueprint, paginate, problems
from app.auth.access import login_required, schema_for
from app.errors import InvalidInput
from app.extensions import db
from app.integrations.idempotency import idempotent
from app.sla.clock import ledger
from app.sla.schemas import LEDGER_EXAMPLE, LedgerSchema
from app.tickets.models import Ticket
from app.tickets.schemas import (
    TICKET_VIEWS,
    TicketCreateSchema,
    TicketListArgs,
    TicketPageSchema,
    TicketSchema,
    TicketSummarySchema,
    TicketUpdateSchema,
    ticket_record,
)
from app.tickets.service import (
    create_ticket,
    get_visible_ticket,
    update_ticket,
    visible_history,
    visible_open_tasks,
    visible_tickets_query,
)

blp = Blueprint("tickets", __name__, url_prefix="/api/v1/tickets", description="工单 / work orders")

# The ticket fields each filter reveals; a role that is not shown them may not filter by them.
FILTER_FIELDS = {
    "status": ("status",),
    "priority": ("priority",),
    "category": ("category",),
    "assignee": ("open_tasks",),
    "group": ("open_tasks",),
    "created_from": ("created_at",),
    "created_to": ("created_at",),
    "q": ("number", "title", "description"),
}

CREATE_EXAMPLE = {
    "title": "3 号楼空调外机异响",
    "description": "运行时有金属摩擦声，夜间明显。",
    "ticket_type": "repair",
    "priority": "P2",
    "category": "facilities",
    "region": "shanghai",
    "device_no": "DEV-T-2",
    "location": {"lat": 31.2304, "lng": 121.4737, "address": "上海市黄浦区 3 号楼楼顶"},
    "contact": {"name": "王工", "phone": "+86 138-0000-0000"},
    "custom_fields": {"crm_case": "CRM-20261126-7"},
}
TICKET_EXAMPLE = {
    "id": 42,
    "number": "RP-20261126-00042",
    "process_key": "equipment_repair",
    "title": "3 号楼空调外机异响",
    "description": "运行时有金属摩擦声，夜间明显。",
    "status": "open",
    "status_label": "待处理 / open",
    "priority": "P2",
    "category": "facilities",
    "region": "shanghai",
    "device_no": "DEV-T-2",
    "location": {"lat": 31.2304, "lng": 121.4737, "address": "上海市黄浦区 3 号楼楼顶"},
    "contact": {"name": "王工", "phone": "+86 138-0000-0000"},
    "current_step": "派单",
    "custom_fields": {"crm_case": "CRM-20261126-7"},
    "internal_note": None,
    "parts_cost": "0.00",
    "labour_cost": "0.00",
    "total_cost": "0.00",
    "currency": "CNY",
    "requester": "alice",
    "process_instance_id": 42,
    "created_at": "2026-11-26T02:00:00+00:00",
    "updated_at": "2026-11-26T02:00:00+00:00",
    "closed_at": None,
    "open_tasks": [
        {
            "id": "5b0e9f3c-3a51-4c1e-9d0a-2f8c7e6b1a90",
            "instance_id": 42,
            "ticket_id": 42,
            "element_id": "task_dispatch",
            "name": "派单",
            "form_key": "repair_dispatch",
            "candidate_groups": ["service_desk"],
            "candidate_users": [],
            "assignee": None,
            "due_at": None,
            "status": "open",
            "created_at": "2026-11-26T02:00:00+00:00",
            "ended_at": None,
            "completed_by": None,
        }
    ],
    "history": [
        {
            "id": 1,
            "element_id": "equipment_repair",
            "element_type": "Process",
            "element_name": "设备报修",
            "event_type": "process_started",
            "actor": "alice",
            "at": "2026-11-26T02:00:00+00:00",
            "data": {"title": "3 号楼空调外机异响", "priority": "P2"},
        }
    ],
}
SUMMARY_EXAMPLE = {
    key: value for key, value in TICKET_EXAMPLE.items() if key not in {"open_tasks", "history"}
}
PAGE_EXAMPLE = {"items": [SUMMARY_EXAMPLE], "total": 1, "page": 1, "per_page": 20}
UPDATE_EXAMPLE = {
    "priority": "P1",
    "internal_note": "客户为重点客户，优先处理",
    "parts_cost": "120.00",
    "labour_cost": 200,
}


TICKET_ID = {"in": "path", "name": "ticket_id", "example": 42}


@blp.route("", methods=["POST"])
@idempotent(blp)
@blp.arguments(TicketCreateSchema, example=CREATE_EXAMPLE)
@blp.response(201, TicketSchema, example=TICKET_EXAMPLE)
@problems(blp, 400, 401, 404, 409, 422)
@login_required
def create(args):
    """Create a work order in the caller's department; its process starts at once.

    Give `process_key` or `ticket_type` (it, repair); without either: it_service. Send an
    `Idempotency-Key` when a retry must not create a second work order.
    """
    ticket = create_ticket(db_session=db.session, requester=current_user, **args)
    # @idempotent commits the work together with the answer it keeps for the key.
    return ticket_answer(ticket, status=201)


@blp.route("", methods=["GET"])
@blp.arguments(TicketListArgs, location="query")
@blp.response(200, TicketPageSchema, example=PAGE_EXAMPLE)
@problems(blp, 400, 401)
@login_required
def list_tickets(args):
    """Work orders the caller may see, newest first, filtered and paginated.

    Requesters: their own; handlers: those with a task of theirs; dispatchers: their
    departments'; finance: all, cost fields only (and no filters on fields it is not shown).
    """
    page, per_page = args.pop("page"), args.pop("per_page")
    schema = schema_for(current_user, TicketSummarySchema, TICKET_VIEWS, many=True)
    refuse_hidden_filters(args)
    query = visible_tickets_query(db_session=db.session, user=current_user, **args)
    result = paginate(db.session, query, page, per_page)
    return jsonify({**result, "items": schema.dump(result["items"])})


@blp.route("/<int:ticket_id>", methods=["GET"], parameters=[TICKET_ID])
@blp.response(200, TicketSchema, example=TICKET_EXAMPLE)
@problems(blp, 401, 404)
@login_required
def get(ticket_id: int):
    """A work order with its open tasks and history, as far as the caller may see them."""
    ticket = get_visible_ticket(db_session=db.session, user=current_user, ticket_id=ticket_id)
    return ticket_answer(ticket)


@blp.route("/<int:ticket_id>/sla", methods=["GET"], parameters=[TICKET_ID])
@blp.response(200, LedgerSchema, example=LEDGER_EXAMPLE)
@problems(blp, 401, 404)
@login_required
def sla(ticket_id: int):
    """The SLA ledger of a work order: each clock (response, resolution) with its policy,
    running and paused intervals, deadline, working minutes used and left."""
    ticket = get_visible_ticket(db_session=db.session, user=current_user, ticket_id=ticket_id)
    return {"clocks": ledger(db.session, ticket.id)}


@blp.route("/<int:ticket_id>", methods=["PATCH"], parameters=[TICKET_ID])
@blp.arguments(TicketUpdateSchema, example=UPDATE_EXAMPLE)
@blp.response(200, TicketSchema, example=TICKET_EXAMPLE)
@problems(blp, 400, 401, 403, 404, 409)
@login_required
def update(values, ticket_id: int):
    """Change fields of a work order; which ones depends on the role.

    Dispatchers and admins: title, description, priority, category, internal_note, location,
    contact, parts_cost, labour_cost. Handlers: the same, while a task of the ticket is theirs
    (reviewers: without the costs). Requesters: title, description and contact of their own
    ticket while it is open. Finance: nothing. `location` and `contact` are replaced whole.
    """
    ticket = update_ticket(
        db_session=db.session, user=current_user, ticket_id=ticket_id, values=values
    )
    response = ticket_answer(ticket)
    db.session.commit()
    return response


def ticket_answer(ticket: Ticket, status: int = 200) -> Response:
    """The ticket as the caller's role is shown it; tasks and history only if that view has them."""
    schema = schema_for(current_user, TicketSchema, TICKET_VIEWS)
    view = ticket_record(ticket)
    if "open_tasks" in schema.fields:
        view["open_tasks"] = visible_open_tasks(
            db_session=db.session, user=current_user, ticket=ticket
        )
    if "history" in schema.fields:
        view["history"] = visible_history(db_session=db.session, user=current_user, ticket=ticket)
    response = jsonify(schema.dump(view))
    response.status_code = status
    return response


def refuse_hidden_filters(args: dict) -> None:
    shown = set(schema_for(current_user, TicketSchema, TICKET_VIEWS).fields)
    hidden = sorted(name for name in args if not set(FILTER_FIELDS[name]) <= shown)
    if hidden:
        names = ", ".join(hidden)
        raise InvalidInput(
            f"角色 {current_user.role} 看不到这些条件对应的字段，不能按 {names} 筛选",
            f"the role {current_user.role} is not shown the fields behind {names} and may "
            "not filter by them",
            errors={"query": {name: ["not available to this role"] for name in hidden}},
        )
