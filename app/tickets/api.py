"""/api/v1/tickets: create a work order (which starts its process), read it, list them."""

from __future__ import annotations

from flask_login import current_user
from marshmallow import fields
from sqlalchemy import select

from app import engine
from app.api import Blueprint, PageArgs, paginate
from app.auth.access import login_required, ticket_condition
from app.extensions import db
from app.tickets.models import Ticket
from app.tickets.schemas import TicketCreateSchema, TicketPageSchema, TicketSchema
from app.tickets.service import create_ticket, get_visible_ticket

blp = Blueprint("tickets", __name__, url_prefix="/api/v1/tickets", description="工单 / work orders")


class TicketListArgs(PageArgs):
    status = fields.String()


def ticket_view(ticket: Ticket) -> dict:
    view = {name: getattr(ticket, name) for name in TicketSchema().fields if hasattr(ticket, name)}
    instance_id = ticket.process_instance_id
    view["open_tasks"] = engine.open_tasks(db_session=db.session, instance_id=instance_id)
    view["history"] = engine.history(db_session=db.session, instance_id=instance_id)
    return view


@blp.route("", methods=["POST"])
@blp.arguments(TicketCreateSchema)
@blp.response(201, TicketSchema)
@login_required
def create(args):
    """Create a work order; its process starts at once."""
    ticket = create_ticket(db_session=db.session, requester=current_user, **args)
    db.session.commit()
    return ticket_view(ticket)


@blp.route("", methods=["GET"])
@blp.arguments(TicketListArgs, location="query")
@blp.response(200, TicketPageSchema)
@login_required
def list_tickets(args):
    """Work orders, newest first (requesters: their own)."""
    query = (
        select(Ticket).where(ticket_condition(db.session, current_user)).order_by(Ticket.id.desc())
    )
    if args.get("status"):
        query = query.where(Ticket.status == args["status"])
    return paginate(db.session, query, args["page"], args["per_page"])


@blp.route("/<int:ticket_id>", methods=["GET"])
@blp.response(200, TicketSchema)
@login_required
def get(ticket_id: int):
    """A work order with its open tasks and its history."""
    ticket = get_visible_ticket(db_session=db.session, user=current_user, ticket_id=ticket_id)
    return ticket_view(ticket)
