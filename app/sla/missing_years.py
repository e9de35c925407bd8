"""Years without official holiday data that SLA deadlines reach: the admins hear of each once.

A clock whose deadline needs such a year runs without one (``clock.MISSING_YEARS`` notes the
year); before the transaction commits, every active admin gets one in-app notification per
missing year, however many work orders ran into it (``dedupe_key`` per year).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import User
from app.notify.service import notify
from app.sla.clock import MISSING_YEARS


def notify_admins(db_session: Session) -> int:
    """Notify the admins of the years noted in this transaction; returns how many
    notifications were new (none for a year they already heard of)."""
    missing = db_session.info.pop(MISSING_YEARS, None)
    if not missing:
        return 0
    admins = db_session.scalars(
        select(User)
        .where(User.role == "admin", User.is_active_account.is_(True))
        .order_by(User.username)
    ).all()
    written = 0
    for year, calendar_id in sorted(missing.items()):
        written += len(
            notify(
                db_session,
                users=admins,
                kind="sla_holidays_missing",
                title=(
                    f"截止时间未知：{year} 年没有节假日数据",
                    f"Deadline unknown: no holiday data for {year}",
                ),
                body=(
                    f"有工单的 SLA 截止时间落在 {year} 年，但还没有 {year} 年的法定节假日和调休"
                    "上班日。工单照常创建，截止时间暂为未知，也不会升级。请在工作日历中录入或"
                    f"导入 {year} 年的日期，截止时间和超时定时器随即算出。",
                    f"Work orders have SLA deadlines in {year}, but no official holidays or "
                    f"adjusted workdays are known for {year}. The work orders were created; "
                    "their deadlines are unknown and they do not escalate until the days are "
                    "entered or imported in the calendar admin, which computes them.",
                ),
                link=f"/sla/calendars/{calendar_id}?year={year}",
                dedupe_key=f"sla:holidays-missing:{year}",
                channels=(),
            ).notifications
        )
    return written
