"""/api/v1/sla: business calendars (working hours, holidays, adjusted workdays, closures, CSV
import, the years without holiday data) and SLA policies (targets, matching order, escalation).

Admins change them. Dispatchers read them: they move work against these deadlines. To other
roles the lists answer 403 and single items 404, so ids cannot be probed.
"""

from __future__ import annotations

from flask import request
from flask_login import current_user
from sqlalchemy import select

from app.api import Blueprint, PageArgs, paginate, problems
from app.auth.access import login_required, roles_required
from app.errors import InvalidInput, NotFound, TooLarge
from app.extensions import db
from app.sla import calendar_admin, calendars_service, policies
from app.sla.admin_schemas import (
    CALENDAR_EXAMPLE,
    DAY_EXAMPLE,
    POLICY_ARGS_EXAMPLE,
    POLICY_EXAMPLE,
    CalendarCreateArgs,
    CalendarPageSchema,
    CalendarSchema,
    CalendarUpdateArgs,
    DayArgs,
    DayListArgs,
    DayPageSchema,
    DaySchema,
    ImportFilesSchema,
    ImportResultSchema,
    MatchArgs,
    MatchSchema,
    OrderArgs,
    PolicyCreateArgs,
    PolicyPageSchema,
    PolicySchema,
    PolicyUpdateArgs,
)
from app.sla.models import BusinessCalendar
from app.sla.sla_models import SlaPolicy

blp = Blueprint(
    "sla",
    __name__,
    url_prefix="/api/v1/sla",
    description="SLA：工作日历与 SLA 策略 / SLA: business calendars and policies",
)

READERS = ("admin", "dispatcher")
# Ids are 32-bit columns: a larger one names nothing and must not reach the database driver.
MAX_ID = 2**31 - 1
# A year of days is some forty lines; this leaves room for comments and many years.
MAX_CSV_BYTES = 256 * 1024

CALENDAR_ID = [{"in": "path", "name": "calendar_id", "example": 1}]
DAY_ID = [*CALENDAR_ID, {"in": "path", "name": "day_id", "example": 12}]
POLICY_ID = [{"in": "path", "name": "policy_id", "example": 3}]


def _page(item: dict) -> dict:
    return {"items": [item], "total": 1, "page": 1, "per_page": 20}


def _actor() -> str:
    return current_user.username


def _calendar(calendar_id: int) -> BusinessCalendar:
    """A calendar readers may see; to other roles (and for ids out of range) none exists."""
    if current_user.role not in READERS or calendar_id > MAX_ID:
        raise NotFound(f"没有 id 为 {calendar_id} 的工作日历", f"No calendar with id {calendar_id}")
    return calendars_service.get_calendar(db_session=db.session, calendar_id=calendar_id)


def _policy(policy_id: int) -> SlaPolicy:
    if current_user.role not in READERS or policy_id > MAX_ID:
        raise NotFound(f"SLA 策略 {policy_id} 不存在", f"SLA policy {policy_id} not found")
    return policies.get_policy(db_session=db.session, policy_id=policy_id)


def calendar_answer(calendar: BusinessCalendar) -> dict:
    """A calendar with the years it is used for that have no holiday data."""
    return {
        **{
            field: getattr(calendar, field)
            for field in CalendarSchema().fields
            if field != "uncovered_years"
        },
        "uncovered_years": calendar_admin.calendar_uncovered_years(db.session, calendar),
    }


def policy_answer(policy: SlaPolicy) -> dict:
    calendar = db.session.get(BusinessCalendar, policy.calendar_id)
    return {
        **{field: getattr(policy, field) for field in PolicySchema().fields if field != "calendar"},
        "calendar": {"id": calendar.id, "code": calendar.code, "name": calendar.name},
    }


# ---------------------------------------------------------------- calendars


@blp.route("/calendars", methods=["GET"])
@roles_required(*READERS)
@blp.arguments(PageArgs, location="query")
@blp.response(200, CalendarPageSchema, example=_page(CALENDAR_EXAMPLE))
@problems(blp, 400, 401, 403)
def list_calendars(args):
    """Business calendars by code, each with `uncovered_years`: the years it is used for
    whose official holidays are unknown (deadlines there fail until they are entered)."""
    query = select(BusinessCalendar).order_by(BusinessCalendar.code)
    page = paginate(db.session, query, args["page"], args["per_page"])
    return {**page, "items": [calendar_answer(calendar) for calendar in page["items"]]}


@blp.route("/calendars", methods=["POST"])
@roles_required("admin")
@blp.arguments(
    CalendarCreateArgs,
    example={
        "code": "shanghai-office",
        "name": "上海办公室",
        "time_zone": "Asia/Shanghai",
        "working_hours": {"0": [["08:30", "12:00"], ["13:00", "17:30"]]},
        "use_official_holidays": True,
        "is_24x7": False,
    },
)
@blp.response(201, CalendarSchema, example=CALENDAR_EXAMPLE)
@problems(blp, 400, 401, 403, 409)
def create_calendar(args):
    """A new calendar: working hours per weekday ("0" Monday … "6" Sunday) in its time zone,
    whether official holidays and adjusted workdays (调休) apply, or 24×7. Hours are checked
    (HH:MM, end after start, no overlap); a code already taken is 409."""
    calendar = calendars_service.create_calendar(db_session=db.session, values=args, actor=_actor())
    answer = calendar_answer(calendar)
    db.session.commit()
    return answer


@blp.route("/calendars/<int:calendar_id>", methods=["GET"], parameters=CALENDAR_ID)
@login_required
@blp.response(200, CalendarSchema, example=CALENDAR_EXAMPLE)
@problems(blp, 401, 404)
def get_calendar(calendar_id: int):
    """One calendar with `uncovered_years`."""
    return calendar_answer(_calendar(calendar_id))


@blp.route("/calendars/<int:calendar_id>", methods=["PATCH"], parameters=CALENDAR_ID)
@roles_required("admin")
@blp.arguments(
    CalendarUpdateArgs,
    example={"working_hours": {**CALENDAR_EXAMPLE["working_hours"], "5": [["09:00", "12:00"]]}},
)
@blp.response(200, CalendarSchema, example=CALENDAR_EXAMPLE)
@problems(blp, 400, 401, 403, 404, 409)
def update_calendar(args, calendar_id: int):
    """Change the fields given (`working_hours` replaces the whole week). Running SLA clocks
    on the calendar are computed again on the new hours; their timers move with them."""
    _calendar(calendar_id)
    calendar = calendar_admin.update_calendar_and_clocks(
        db_session=db.session, calendar_id=calendar_id, values=args, actor=_actor()
    )
    answer = calendar_answer(calendar)
    db.session.commit()
    return answer


# ---------------------------------------------------------------- days


@blp.route("/calendars/<int:calendar_id>/days", methods=["GET"], parameters=CALENDAR_ID)
@login_required
@blp.arguments(DayListArgs, location="query")
@blp.response(200, DayPageSchema, example=_page(DAY_EXAMPLE))
@problems(blp, 400, 401, 404)
def list_days(args, calendar_id: int):
    """The stored days that shape the calendar, by date: its closures, and (when it follows
    official holidays) the official holidays and adjusted workdays every such calendar shares.
    Years 2004–2026 also come built in; a row here corrects the built-in data for its date."""
    calendar = _calendar(calendar_id)
    query = calendar_admin.calendar_days_query(calendar, args.get("year"))
    return paginate(db.session, query, args["page"], args["per_page"])


@blp.route("/calendars/<int:calendar_id>/days", methods=["POST"], parameters=CALENDAR_ID)
@roles_required("admin")
@blp.arguments(DayArgs, example={"date": "2027-02-06", "kind": "holiday", "name": "春节"})
@blp.response(201, DaySchema, example=DAY_EXAMPLE)
@problems(blp, 400, 401, 403, 404, 409)
def add_day(args, calendar_id: int):
    """Add a day. `holiday` and `workday` (调休上班) go to the official table, which every
    calendar following official holidays shares; `closure` closes this calendar only. A date
    already there is 409: remove it first to change it."""
    _calendar(calendar_id)
    day = calendar_admin.add_calendar_day(
        db_session=db.session,
        calendar_id=calendar_id,
        actor=_actor(),
        day=args["date"],
        kind=args["kind"],
        name=args["name"],
    )
    db.session.commit()
    return day


@blp.route("/calendars/<int:calendar_id>/days/<int:day_id>", methods=["DELETE"], parameters=DAY_ID)
@roles_required("admin")
@blp.response(204)
@problems(blp, 401, 403, 404)
def remove_day(calendar_id: int, day_id: int):
    """Remove a day of the calendar (an official one is removed for every calendar)."""
    _calendar(calendar_id)
    if day_id > MAX_ID:
        raise NotFound(f"没有 id 为 {day_id} 的日期", f"No day with id {day_id}")
    calendar_admin.remove_calendar_day(
        db_session=db.session, calendar_id=calendar_id, day_id=day_id, actor=_actor()
    )
    db.session.commit()


@blp.route("/calendars/<int:calendar_id>/days/import", methods=["POST"], parameters=CALENDAR_ID)
@roles_required("admin")
@blp.arguments(ImportFilesSchema, location="files")
@blp.response(
    200,
    ImportResultSchema,
    example={"imported": 1, "days": [DAY_EXAMPLE], "uncovered_years": []},
)
@problems(blp, 400, 401, 403, 404, 413)
def import_days(_files, calendar_id: int):
    """Import days from a CSV file (multipart field `file`, UTF-8 or GBK), one `date,kind,name`
    a line, e.g. `2027-02-06,holiday,春节`; a header line, blank lines and lines starting with
    # are skipped. Any bad line is named with its number and nothing is stored. Dates already
    stored take the imported kind and name."""
    _calendar(calendar_id)
    text = read_csv_upload(request.files.get("file"))
    days = calendar_admin.import_calendar_days(
        db_session=db.session, calendar_id=calendar_id, text=text, actor=_actor()
    )
    calendar = calendars_service.get_calendar(db_session=db.session, calendar_id=calendar_id)
    answer = {
        "imported": len(days),
        "days": days,
        "uncovered_years": calendar_admin.calendar_uncovered_years(db.session, calendar),
    }
    db.session.commit()
    return answer


def read_csv_upload(upload) -> str:
    """The text of an uploaded CSV file: UTF-8 (with or without BOM), else GBK as Excel saves
    it on Chinese Windows."""
    if upload is None:
        raise InvalidInput(
            "请在 multipart 字段 file 中上传 CSV 文件（每行「日期,类型,名称」）",
            'upload a CSV file (one "date,kind,name" a line) in the multipart field `file`',
            errors={"file": ["required"]},
        )
    data = upload.read(MAX_CSV_BYTES + 1)
    if len(data) > MAX_CSV_BYTES:
        raise TooLarge(
            f"CSV 文件不能超过 {MAX_CSV_BYTES // 1024} KB",
            f"the CSV file may not exceed {MAX_CSV_BYTES // 1024} KB",
        )
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InvalidInput(
        "文件不是 UTF-8 或 GBK 编码的文本，请另存为 CSV（UTF-8）",
        "the file is not UTF-8 or GBK text; save it as CSV (UTF-8)",
        errors={"file": ["not UTF-8 or GBK text"]},
    )


# ---------------------------------------------------------------- policies


@blp.route("/policies", methods=["GET"])
@roles_required(*READERS)
@blp.arguments(PageArgs, location="query")
@blp.response(200, PolicyPageSchema, example=_page(POLICY_EXAMPLE))
@problems(blp, 400, 401, 403)
def list_policies(args):
    """SLA policies in match order: a work order gets the first active one whose match fields
    (type, category, priority, department) all fit; an empty field matches anything."""
    query = select(SlaPolicy).order_by(SlaPolicy.position, SlaPolicy.id)
    page = paginate(db.session, query, args["page"], args["per_page"])
    return {**page, "items": [policy_answer(policy) for policy in page["items"]]}


@blp.route("/policies", methods=["POST"])
@roles_required("admin")
@blp.arguments(PolicyCreateArgs, example=POLICY_ARGS_EXAMPLE)
@blp.response(201, PolicySchema, example=POLICY_EXAMPLE)
@problems(blp, 400, 401, 403)
def create_policy(args):
    """A new policy, last in the order unless `position` is given. Targets are working
    minutes on the calendar; escalation levels default to 50/75/100/150 % and the overdue
    reminder (超时提醒阈值) to 75 %."""
    policy = policies.create_policy(db_session=db.session, values=args, actor=_actor())
    answer = policy_answer(policy)
    db.session.commit()
    return answer


@blp.route("/policies/order", methods=["PUT"])
@roles_required("admin")
@blp.arguments(OrderArgs, example={"policy_ids": [3, 1, 2]})
@blp.response(200, PolicySchema(many=True), example=[POLICY_EXAMPLE])
@problems(blp, 400, 401, 403)
def reorder(args):
    """Put every policy in the order given (each id exactly once): the first is tried first."""
    ordered = policies.reorder_policies(
        db_session=db.session, policy_ids=args["policy_ids"], actor=_actor()
    )
    answer = [policy_answer(policy) for policy in ordered]
    db.session.commit()
    return answer


@blp.route("/policies/match", methods=["GET"])
@roles_required(*READERS)
@blp.arguments(MatchArgs, location="query")
@blp.response(200, MatchSchema, example={"policy": POLICY_EXAMPLE})
@problems(blp, 400, 401, 403)
def match(args):
    """Which policy a work order with these fields would get now (null when none matches)."""
    facts = policies.facts_for(
        db.session,
        process_key=args.get("process_key", ""),
        category=args.get("category", ""),
        priority=args.get("priority", ""),
        department_code=args.get("department", ""),
    )
    found = policies.first_match(db.session, facts)
    return {"policy": policy_answer(found) if found else None}


@blp.route("/policies/<int:policy_id>", methods=["GET"], parameters=POLICY_ID)
@login_required
@blp.response(200, PolicySchema, example=POLICY_EXAMPLE)
@problems(blp, 401, 404)
def get_policy(policy_id: int):
    """One SLA policy."""
    return policy_answer(_policy(policy_id))


@blp.route("/policies/<int:policy_id>", methods=["PATCH"], parameters=POLICY_ID)
@roles_required("admin")
@blp.arguments(PolicyUpdateArgs, example={"resolution_minutes": 360, "reminder_percent": 80})
@blp.response(200, PolicySchema, example=POLICY_EXAMPLE)
@problems(blp, 400, 401, 403, 404)
def update_policy(args, policy_id: int):
    """Change the fields given. Running clocks keep their targets until their work order
    next changes."""
    _policy(policy_id)
    policy = policies.update_policy(
        db_session=db.session, policy_id=policy_id, values=args, actor=_actor()
    )
    answer = policy_answer(policy)
    db.session.commit()
    return answer


@blp.route("/policies/<int:policy_id>", methods=["DELETE"], parameters=POLICY_ID)
@roles_required("admin")
@blp.response(204)
@problems(blp, 401, 403, 404, 409)
def delete_policy(policy_id: int):
    """Delete a policy no work order's clock uses; one in use is 409: deactivate it instead
    (`active: false`)."""
    _policy(policy_id)
    policies.delete_policy(db_session=db.session, policy_id=policy_id, actor=_actor())
    db.session.commit()
