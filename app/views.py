"""The start page: what the platform holds now, and where to go from here."""

from flask import Blueprint, render_template
from sqlalchemy import func, select

from app.engine.models import HumanTask, ProcessDefinition
from app.extensions import db
from app.tickets.models import STATUSES, Ticket

bp = Blueprint("pages", __name__)


@bp.get("/")
def home():
    counts = dict(
        db.session.execute(select(Ticket.status, func.count()).group_by(Ticket.status)).all()
    )
    recent = db.session.scalars(select(Ticket).order_by(Ticket.id.desc()).limit(20)).all()
    open_tasks = db.session.scalar(select(func.count()).where(HumanTask.status == "open"))
    processes = db.session.scalars(
        select(ProcessDefinition.key).distinct().order_by(ProcessDefinition.key)
    ).all()
    return render_template(
        "home.html",
        counts=counts,
        statuses=STATUSES,
        recent=recent,
        open_tasks=open_tasks,
        processes=processes,
    )
