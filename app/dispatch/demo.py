"""Demo data for dispatch: the demo company's engineers get home bases in their cities,
weekly shifts, capacities and one leave; each technical group gets its mode (facilities:
a dispatcher chooses; network: automatic; hardware: the pool, 30 minutes before automatic)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import Group
from app.dispatch.models import GroupDispatchConfig
from app.dispatch.settings import set_profile

CITIES = {
    "beijing": (39.9836, 116.3164),  # 中关村
    "shanghai": (31.2036, 121.5873),  # 张江
    "shenzhen": (22.5405, 113.9345),  # 科技园
}
WEEKDAYS = [{"weekday": d, "start": "09:00", "end": "18:00"} for d in range(5)]
EVERY_DAY = [{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)]
NIGHTS = [{"weekday": d, "start": "20:00", "end": "08:00"} for d in range(7)]

# username: (city, offset of the home from the office in degrees, capacity, shifts)
PROFILES = {
    "liqiang": ("beijing", (0.02, -0.03), 6, WEEKDAYS),
    "sunhao": ("shanghai", (-0.04, 0.02), 5, EVERY_DAY),  # on call for the network group
    "wanglei": ("beijing", (-0.03, 0.05), 5, WEEKDAYS),
    "zhoujie": (
        "shenzhen",
        (0.03, 0.04),
        4,
        [*WEEKDAYS, {"weekday": 5, "start": "09:00", "end": "13:00"}],
    ),
    "zhaomin": ("beijing", (0.05, 0.01), 5, WEEKDAYS),
    "wufang": ("shanghai", (0.02, -0.05), 4, WEEKDAYS + NIGHTS[5:]),
    "chenjing": ("beijing", (-0.01, -0.02), 6, WEEKDAYS),
}
# group code -> (mode, minutes the pool waits)
MODES = {"facilities": ("dispatcher", 30), "network": ("auto", 30), "hardware": ("pool", 30)}


def seed_dispatch(*, db_session: Session, now: datetime) -> int:
    """Profiles and group modes; returns how many engineers got a profile."""
    for username, (city, (dlat, dlng), capacity, shifts) in PROFILES.items():
        lat, lng = CITIES[city]
        leave = []
        if username == "zhaomin":
            leave = [
                {
                    "starts_at": now - timedelta(days=1),
                    "ends_at": now + timedelta(days=6),
                    "reason": "年假",
                }
            ]
        set_profile(
            db_session=db_session,
            username=username,
            actor="admin",
            home={"lat": round(lat + dlat, 4), "lng": round(lng + dlng, 4)},
            capacity=capacity,
            shifts=shifts,
            leave=leave,
        )
    for code, (mode, wait) in MODES.items():
        group_id = db_session.scalar(select(Group.id).where(Group.code == code))
        db_session.add(GroupDispatchConfig(group_id=group_id, mode=mode, pool_wait_minutes=wait))
    db_session.flush()
    return len(PROFILES)
