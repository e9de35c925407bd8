"""/api/v1 dispatch routes: recommendations and assignment for a work order, the pool and its
grab, engineers' positions and profiles, and each group's dispatch settings.

Work orders and tasks the caller may not see answer 404; what they see but may not do, 403.
"""

from __future__ import annotations

from flask_login import current_user

from app.api import Blueprint, PageArgs, problems
from app.auth.access import login_required, roles_required
from app.dispatch import (
    planning,  # noqa: F401 - subscribes to the engine's steps
    service,
    settings,
)
from app.dispatch.schemas import (
    CONFIG_EXAMPLE,
    DECISION_EXAMPLE,
    POSITION_EXAMPLE,
    PROFILE_EXAMPLE,
    RECOMMENDATION_EXAMPLE,
    WEIGHTS_EXAMPLE,
    AssignArgs,
    ConfigArgs,
    ConfigSchema,
    DecisionSchema,
    PoolPageSchema,
    PositionArgs,
    PositionSchema,
    ProfileArgs,
    ProfileSchema,
    RecommendationSchema,
)
from app.dispatch.scoring import haversine_km
from app.errors import NotFound
from app.extensions import db
from app.tickets.models import Ticket
from app.timeutil import utcnow
from app.workflows.schemas import TASK_EXAMPLE, TaskSchema

blp = Blueprint(
    "dispatch",
    __name__,
    url_prefix="/api/v1",
    description="智能派单：推荐、派单、抢单、位置 / smart dispatch: recommend, assign, pool, positions",
)

TICKET_ID = [{"in": "path", "name": "ticket_id", "example": 42}]
TASK_ID = [{"in": "path", "name": "task_id", "example": TASK_EXAMPLE["id"]}]
GROUP_CODE = [{"in": "path", "name": "code", "example": "network"}]
USERNAME = [{"in": "path", "name": "username", "example": "sunhao"}]
READERS = ("admin", "dispatcher")


@blp.route(
    "/tickets/<int:ticket_id>/dispatch-recommendations", methods=["GET"], parameters=TICKET_ID
)
@blp.response(200, RecommendationSchema, example=RECOMMENDATION_EXAMPLE)
@problems(blp, 401, 403, 404, 409)
@login_required
def recommendations(ticket_id: int):
    """Engineers for the work order's waiting task, best first, each with the breakdown of its
    cost (minutes-equivalent: travel, load, SLA risk, fairness, familiarity), and those excluded
    with the reason. Dispatchers and admins; 409 while the work order has no responsible group."""
    rec = service.recommendation(db_session=db.session, user=current_user, ticket_id=ticket_id)
    stored = rec.stored()
    return {
        "ticket_id": rec.ticket.id,
        "task": rec.task,
        "mode": rec.settings.mode,
        "job": stored["job"],
        "candidates": rec.candidates,
        "eligible": stored["eligible"],
        "ranked": stored["ranked"],
        "excluded": stored["excluded"],
        "excluded_counts": stored["excluded_counts"],
    }


@blp.route("/tickets/<int:ticket_id>/assign", methods=["POST"], parameters=TICKET_ID)
@blp.arguments(AssignArgs, example={"username": "sunhao", "reason": "客户指定熟悉该设备的工程师"})
@blp.response(200, DecisionSchema, example=DECISION_EXAMPLE)
@problems(blp, 400, 401, 403, 404, 409)
@login_required
def assign(args, ticket_id: int):
    """派单: give the work order's waiting task to an engineer (dispatchers and admins).

    Choosing anyone but the top recommendation is an override: `reason` is then required
    (400 without) and audited. A task someone has begun is not dispatched again (409): transfer
    it instead.
    """
    decision = service.assign(
        db_session=db.session,
        user=current_user,
        ticket_id=ticket_id,
        username=args["username"],
        reason=args.get("reason"),
    )
    db.session.commit()
    return decision


@blp.route("/engineers/me/position", methods=["PUT"])
@blp.arguments(PositionArgs, example={"lat": 39.9841, "lng": 116.3172, "accuracy_m": 15})
@blp.response(200, PositionSchema, example=POSITION_EXAMPLE)
@problems(blp, 400, 401, 403)
@login_required
def report_position(args):
    """The engineer's phone reports where it is (trusted for POSITION_STALE_MINUTES)."""
    service.report_position(db_session=db.session, user=current_user, **args)
    db.session.commit()
    return {**args, "source": "live", "at": utcnow()}


@blp.route("/dispatch/pool", methods=["GET"])
@blp.arguments(PageArgs, location="query")
@blp.response(
    200,
    PoolPageSchema,
    example={
        "items": [
            {
                **TASK_EXAMPLE,
                "ticket_number": "IT-20261126-00042",
                "title": "打印机无法联网",
                "priority": "P2",
                "distance_km": 3.2,
            }
        ],
        "total": 1,
        "page": 1,
        "per_page": 20,
    },
)
@problems(blp, 400, 401, 403)
@login_required
def pool(args):
    """工单池: pool tasks of my groups that nobody holds and that I may take now (skill, shift,
    leave, capacity, urgent work), oldest first, with the distance from where I am."""
    tasks = service.pool(db_session=db.session, user=current_user)
    page, per_page = args["page"], args["per_page"]
    shown = tasks[(page - 1) * per_page : page * per_page]
    here = service.position_of(db_session=db.session, user=current_user, now=utcnow())
    items = []
    for task in shown:
        ticket = db.session.get(Ticket, task.ticket_id)
        job = service.job_for(db_session=db.session, ticket=ticket)
        distance = None
        if here is not None and job.lat is not None and job.lng is not None:
            distance = round(haversine_km(here.lat, here.lng, job.lat, job.lng), 1)
        items.append(
            {
                **{name: getattr(task, name) for name in TaskSchema().fields},
                "ticket_number": ticket.number,
                "title": ticket.title,
                "priority": job.priority,
                "distance_km": distance,
            }
        )
    return {"items": items, "total": len(tasks), "page": page, "per_page": per_page}


@blp.route("/dispatch/pool/<task_id>/grab", methods=["POST"], parameters=TASK_ID)
@blp.response(200, TaskSchema, example={**TASK_EXAMPLE, "assignee": "sunhao"})
@problems(blp, 401, 403, 404, 409)
@login_required
def grab(task_id: str):
    """抢单: take a pool task. Of engineers grabbing at once exactly one wins; the others get
    409 naming who did. 403 when a hard constraint rules me out (the reason is given)."""
    task = service.grab(db_session=db.session, user=current_user, task_id=task_id)
    db.session.commit()
    return task


@blp.route("/groups/<code>/dispatch-config", methods=["GET"], parameters=GROUP_CODE)
@blp.response(200, ConfigSchema, example=CONFIG_EXAMPLE)
@problems(blp, 401, 404)
@login_required
def get_config(code: str):
    """How the group's work is dispatched: mode (auto, pool, dispatcher), weights, pool wait.
    Admins and dispatchers; to others the group does not exist."""
    if current_user.role not in READERS:
        raise NotFound(f"组 {code} 不存在", f"group {code} not found")
    return settings.group_config(db_session=db.session, code=code)


@blp.route("/groups/<code>/dispatch-config", methods=["PUT"], parameters=GROUP_CODE)
@roles_required("admin")
@blp.arguments(
    ConfigArgs,
    example={"mode": "pool", "weights": WEIGHTS_EXAMPLE, "pool_wait_minutes": 30},
)
@blp.response(200, ConfigSchema, example={**CONFIG_EXAMPLE, "mode": "pool"})
@problems(blp, 400, 401, 403, 404)
def put_config(args, code: str):
    """Set the group's dispatch mode, weights (names left out keep their defaults) and the
    minutes the pool waits for a grab before assigning automatically. Admins only."""
    found = settings.set_group_config(
        db_session=db.session, code=code, actor=current_user.username, **args
    )
    db.session.commit()
    return found


@blp.route("/engineers/<username>/profile", methods=["GET"], parameters=USERNAME)
@blp.response(200, ProfileSchema, example=PROFILE_EXAMPLE)
@problems(blp, 401, 404)
@login_required
def get_profile(username: str):
    """An engineer as dispatch sees them: skills, home base, capacity, shifts, leave and the
    position rankings start from. Admins, dispatchers, and the engineer themself."""
    if current_user.role not in READERS and current_user.username != username:
        raise NotFound(f"工程师 {username} 不存在", f"engineer {username} not found")
    return settings.profile(db_session=db.session, username=username)


@blp.route("/engineers/<username>/profile", methods=["PUT"], parameters=USERNAME)
@roles_required("admin")
@blp.arguments(
    ProfileArgs,
    example={
        "home": PROFILE_EXAMPLE["home"],
        "capacity": 5,
        "shifts": PROFILE_EXAMPLE["shifts"],
        "leave": PROFILE_EXAMPLE["leave"],
    },
)
@blp.response(200, ProfileSchema, example=PROFILE_EXAMPLE)
@problems(blp, 400, 401, 403, 404)
def put_profile(args, username: str):
    """Change an engineer's home base, capacity, weekly shifts (Asia/Shanghai; the list
    replaces the week) or leave (the list replaces every period). Admins only. An engineer
    with no shifts is available at any time."""
    found = settings.set_profile(
        db_session=db.session, username=username, actor=current_user.username, **args
    )
    db.session.commit()
    return found
