"""The roster snapshot a decision ranks from is what a fresh read of the tables says, after
every kind of change: positions, check-ins, profiles, shifts, leave, skills, groups, new
engineers, work given, taken and finished, the clock moving on and the day turning."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import time_machine

from app.auth.service import find_user, update_user
from app.dispatch import roster, service
from app.dispatch.people import load_candidates
from app.dispatch.settings import set_group_config, set_profile
from app.dispatch.work import settings_for
from app.inbox.service import claim
from app.site.service import check_in
from tests.flows import Flow
from tests.test_dispatch_service import FAR, MONDAY_10, NEAR, engineer, skills, work_order

GROUPS = ["network", "facilities"]


def same(db_session, now, *, skill_codes=None, device_no=None, groups=GROUPS) -> None:
    """The snapshot and a fresh read agree on every engineer and every column."""
    look = {
        "db_session": db_session,
        "now": now,
        "group_codes": groups,
        "skill_codes": skill_codes,
        "device_no": device_no,
    }
    got, fresh = roster.candidate_table(**look), load_candidates(**look)
    assert got.usernames == fresh.usernames
    assert got.names == fresh.names
    for column in ("lat", "lng"):
        np.testing.assert_allclose(getattr(got, column), getattr(fresh, column), err_msg=column)
    assert list(got.sources) == list(fresh.sources)
    assert sorted(got.skills) == sorted(fresh.skills)
    for code, levels in fresh.skills.items():
        assert list(got.skills[code]) == list(levels), code
    assert got.skill_names == fresh.skill_names
    for column in ("on_shift", "on_leave", "capacity", "fixed_device"):
        assert list(getattr(got, column)) == list(getattr(fresh, column)), column
    assert got.open_jobs.tolist() == fresh.open_jobs.tolist()
    np.testing.assert_allclose(got.minutes_today, fresh.minutes_today, atol=1e-6)


def test_the_snapshot_follows_every_change(db_session):
    skills(db_session)
    now = MONDAY_10
    with time_machine.travel(now, tick=False):
        net = engineer(db_session, "r_net", "network", {"network": 3}, at=NEAR, home=FAR)
        engineer(db_session, "r_home", "network", {"network": 2}, home=NEAR)
        fac = engineer(db_session, "r_fac", "facilities", {"air_conditioning": 4}, home=FAR)
        same(db_session, now)
        same(db_session, now, skill_codes=["network"])

        # A position reported, a new engineer, a changed capacity, shifts and leave.
        service.report_position(
            db_session=db_session, user=net, lat=FAR[0], lng=FAR[1], accuracy_m=5
        )
        same(db_session, now)
        engineer(db_session, "r_new", "network", {"network": 5}, at=NEAR)
        same(db_session, now)
        set_profile(db_session=db_session, username="r_home", capacity=1)
        set_profile(
            db_session=db_session,
            username="r_fac",
            shifts=[{"weekday": 0, "start": "08:00", "end": "09:00"}],
        )
        set_profile(
            db_session=db_session,
            username="r_new",
            leave=[
                {
                    "starts_at": now - timedelta(hours=1),
                    "ends_at": now + timedelta(hours=1),
                    "reason": "病假",
                }
            ],
        )
        same(db_session, now)
        off = roster.candidate_table(db_session=db_session, now=now, group_codes=["facilities"])
        assert not off.on_shift[off.index("r_fac")]
        set_profile(db_session=db_session, username="r_fac", shifts=[])
        same(db_session, now)

        # Skills and groups changed through the account.
        update_user(
            db_session=db_session,
            user=find_user(db_session=db_session, username="r_home"),
            skills={"network": 4, "pc": 1},
            groups=["network", "facilities"],
        )
        same(db_session, now)
        same(db_session, now, groups=["facilities"])

        # Work given and taken: open jobs by priority.
        urgent = work_order(db_session, "network", "P1", device_no="DEV-T-2")
        claim(db_session=db_session, user=net, task_id=urgent.task("task_handle").id)
        same(db_session, now, device_no="DEV-T-2")
        other = work_order(db_session, "network", "P3")
        service.assign(
            db_session=db_session,
            user=find_user(db_session=db_session, username="desk"),
            ticket_id=other.ticket.id,
            username="r_home",
            reason="熟悉该用户",
        )
        same(db_session, now)

        # A check-in at a repair: today's position of an engineer whose phone is silent.
        repair = Flow(
            db_session,
            "alice",
            "equipment_repair",
            title="空调",
            category="facilities",
            priority="P3",
            region="shanghai",
            device_no="DEV-T-2",
        )
        repair.do("task_dispatch", "desk", engineer="r_fac", parts_needed=False)
        check_in(
            db_session=db_session,
            user=fac,
            device_no="DEV-T-2",
            ticket_id=repair.ticket.id,
            lat=NEAR[0],
            lng=NEAR[1],
        )
        same(db_session, now, device_no="DEV-T-2")

    # Work finished later in the day: minutes worked, the device fixed before.
    later = now + timedelta(hours=2)
    with time_machine.travel(later, tick=False):
        urgent.do("task_handle", "r_net", solution="更换模块", time_spent_minutes=100)
        same(db_session, later, device_no="DEV-T-2")
        table = roster.candidate_table(
            db_session=db_session, now=later, group_codes=GROUPS, device_no="DEV-T-2"
        )
        i = table.index("r_net")
        assert table.minutes_today[i] > 100 and table.fixed_device[i]
        assert table.open_jobs[i].tolist() == [0, 0, 0, 0]

    # The live positions go stale; the next day starts afresh; the clock going back is seen.
    for moment in (later + timedelta(minutes=40), now + timedelta(days=1), now):
        with time_machine.travel(moment, tick=False):
            same(db_session, moment, device_no="DEV-T-2")


def test_a_change_rolled_back_is_forgotten(db_session):
    skills(db_session)
    with time_machine.travel(MONDAY_10, tick=False):
        engineer(db_session, "r_one", "network", {"network": 3}, at=NEAR)
        same(db_session, MONDAY_10)
        savepoint = db_session.begin_nested()
        engineer(db_session, "r_gone", "network", {"network": 3}, at=NEAR)
        assert (
            "r_gone"
            in roster.candidate_table(
                db_session=db_session, now=MONDAY_10, group_codes=GROUPS
            ).usernames
        )
        savepoint.rollback()
        assert (
            "r_gone"
            not in roster.candidate_table(
                db_session=db_session, now=MONDAY_10, group_codes=GROUPS
            ).usernames
        )
        same(db_session, MONDAY_10)


def test_group_settings_follow_a_config_change(db_session):
    """settings_for answers from the snapshot after a look in the same transaction, and a
    config written after that look (same transaction, or another) is what it answers next."""
    skills(db_session)
    with time_machine.travel(MONDAY_10, tick=False):
        engineer(db_session, "r_cfg", "network", {"network": 3}, at=NEAR)
        set_group_config(db_session=db_session, code="network", mode="pool")
        db_session.flush()

        def look_then_settings():
            roster.candidate_table(db_session=db_session, now=MONDAY_10, group_codes=GROUPS)
            cached = roster.group_configs(db_session, ["network"])
            assert cached is not None, "a look in this transaction lets the snapshot answer"
            return settings_for(db_session, None, ["network"])

        assert look_then_settings().mode == "pool"
        set_group_config(
            db_session=db_session, code="network", mode="auto", weights={"travel": 2.5}
        )
        db_session.flush()
        # No look since the write: the table is read, not the snapshot.
        assert roster.group_configs(db_session, ["network"]) is None
        assert settings_for(db_session, None, ["network"]).mode == "auto"
        settings = look_then_settings()
        assert settings.mode == "auto"
        assert settings.weights.travel == 2.5
        # By name as well as by code, as the table is matched.
        name = roster.group_configs(db_session, ["网络组"])
        assert [code for code, _cfg in name] == ["network"]
