"""The shell commands an operator uses: create-user, deploy-processes, seed-demo."""

import re
from datetime import datetime

import pytest
import time_machine
from sqlalchemy import func, select

from app.auth.models import User
from app.dispatch.models import DispatchDecision
from app.engine.models import HumanTask, ProcessDefinition
from app.extensions import db
from app.sla.sla_models import SlaClock, SlaPolicy
from app.tickets.models import Ticket
from tests.conftest import SHANGHAI


def run(app, *args):
    return app.test_cli_runner().invoke(args=list(args), catch_exceptions=False)


def test_create_user_makes_an_account_that_can_sign_in(fresh_app):
    result = run(
        fresh_app,
        "create-user",
        "ops",
        "--password",
        "long-enough-1",
        "--role",
        "admin",
        "--group",
        "service_desk",
        "--name",
        "运维",
    )
    assert result.exit_code == 0, result.output
    assert "已创建用户 ops" in result.output
    client = fresh_app.test_client()
    signed_in = client.post(
        "/api/v1/auth/token", json={"username": "ops", "password": "long-enough-1"}
    )
    assert signed_in.status_code == 201, signed_in.get_json()
    token = signed_in.get_json()["token"]
    response = client.get("/api/v1/tasks", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    with fresh_app.app_context():
        user = db.session.scalars(select(User).where(User.username == "ops")).one()
        assert (user.display_name, user.role, [g.code for g in user.groups]) == (
            "运维",
            "admin",
            ["service_desk"],
        )
        db.session.remove()


def test_create_user_refuses_bad_input_and_stores_nothing(fresh_app):
    with fresh_app.app_context():
        users = db.session.scalar(select(func.count()).select_from(User))
        db.session.remove()
    cases = [
        (["--password", "long-enough-1", "--role", "king"], "角色 king 不存在"),
        (["--password", "short", "--role", "admin"], "at least 8 characters"),
        (["--password", "long-enough-1", "--role", "admin", "--group", "nope"], "组 nope 不存在"),
    ]
    for options, message in cases:
        result = fresh_app.test_cli_runner().invoke(args=["create-user", "ops2", *options])
        assert result.exit_code != 0 and message in result.output, result.output
    result = fresh_app.test_cli_runner().invoke(
        args=["create-user", "admin", "--password", "long-enough-1", "--role", "admin"]
    )
    assert result.exit_code != 0 and "用户 admin 已存在" in result.output
    with fresh_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == users
        db.session.remove()


def test_deploy_processes_keeps_versions_of_unchanged_files(fresh_app):
    result = run(fresh_app, "deploy-processes")
    assert result.exit_code == 0, result.output
    assert "it_service v1" in result.output and "equipment_repair v1" in result.output
    with fresh_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ProcessDefinition)) == 2
        db.session.remove()


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 11, 28, 10, 0, tzinfo=SHANGHAI),  # Saturday morning: few on shift
        datetime(2026, 11, 24, 23, 0, tzinfo=SHANGHAI),  # Tuesday night: nobody on shift
        datetime(2026, 11, 29, 21, 0, tzinfo=SHANGHAI),  # Sunday night: 吴芳's night shift
    ],
)
def test_seed_demo_works_at_any_hour(new_database, moment):
    """The dispatcher's 派单 choices are checked as on the task page; whoever is on shift
    then, each is accepted (a reason is given wherever the choice may not be the best)."""
    from flask_migrate import upgrade

    from app import create_app

    app = create_app(
        {"DATABASE_URL": new_database(), "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 64}
    )
    with app.app_context():
        upgrade()
    with time_machine.travel(moment, tick=True):
        result = run(app, "seed-demo")
    assert result.exit_code == 0, result.output
    with app.app_context():
        chosen = db.session.scalars(
            select(DispatchDecision.chosen).where(DispatchDecision.mode == "dispatcher")
        ).all()
        assert sorted(chosen) == ["wufang", "zhaomin", "zhoujie"]
        db.session.remove()
        db.engine.dispose()


def test_seed_demo_builds_a_living_company_once(new_database):
    from flask_migrate import upgrade

    from app import create_app

    app = create_app(
        {"DATABASE_URL": new_database(), "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 64}
    )
    with app.app_context():
        upgrade()
    # A working Thursday morning: who is on shift decides whom dispatch recommends.
    with time_machine.travel(datetime(2026, 11, 26, 10, 0, tzinfo=SHANGHAI), tick=True):
        result = run(app, "seed-demo")
    assert result.exit_code == 0, result.output
    assert "演示数据已创建" in result.output

    with app.app_context():
        tickets = {t.title: t for t in db.session.scalars(select(Ticket))}
        assert len(tickets) == 9
        assert {t.status for t in tickets.values()} == {"open", "in_progress", "closed"}
        assert tickets["邮箱密码重置"].status == "closed"
        assert tickets["服务器风扇告警"].status == "closed"
        assert tickets["无法连接公司 VPN"].current_step == "问题分级"
        assert tickets["UPS 电源告警"].current_step in {"现场处理、备件申领", "备件申领、现场处理"}
        assert tickets["财务系统登录报错"].current_step == "技术组处理"  # sent back by review
        roles = set(db.session.scalars(select(User.role)))
        assert roles == {"admin", "dispatcher", "handler", "reviewer", "requester", "finance"}
        open_tasks = db.session.scalar(
            select(func.count()).select_from(HumanTask).where(HumanTask.status == "open")
        )
        assert open_tasks == 8
        # Every open work order runs its SLA clocks under the demo's policies.
        clocks = db.session.execute(
            select(Ticket.title, SlaPolicy.name, SlaClock.kind)
            .join(SlaClock, SlaClock.ticket_id == Ticket.id)
            .join(SlaPolicy, SlaPolicy.id == SlaClock.policy_id)
        ).all()
        by_title = {(title, kind): name for title, name, kind in clocks}
        # P1: the urgent policy comes first and wins over the field-repair one.
        assert by_title[("UPS 电源告警", "resolution")] == "紧急故障（全天候）"
        assert by_title[("无法连接公司 VPN", "resolution")] == "IT 服务台（默认）"
        # Every engineer the dispatcher gave a repair to is explained on the work order: the
        # 派单 steps were completed as a person does, so each stored its decision.
        decided = db.session.execute(
            select(
                Ticket.title,
                DispatchDecision.chosen,
                DispatchDecision.decided_by,
                DispatchDecision.reason,
            )
            .join(DispatchDecision, DispatchDecision.ticket_id == Ticket.id)
            .where(DispatchDecision.mode == "dispatcher")
        ).all()
        # 吴芳 was the recommendation; nobody was eligible for the reader; 周杰 overrode 王磊.
        assert {title: rest for title, *rest in decided} == {
            "UPS 电源告警": ["wufang", "zhangwei", None],
            "门禁读卡器故障": ["zhaomin", "zhangwei", "赵敏正在深圳，当天可以到场"],
            "服务器风扇告警": ["zhoujie", "zhangwei", "周杰负责深圳机房的服务器"],
        }
        db.session.remove()

    again = run(app, "seed-demo")
    assert "跳过" in again.output
    browser = app.test_client()
    html = {"Accept": "text/html"}
    assert browser.get("/", headers=html).headers["Location"].startswith("/login")
    login = browser.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', login).group(1)
    signed_in = browser.post(
        "/login", data={"username": "admin", "password": "paidan123", "csrf_token": token}
    )
    assert signed_in.status_code == 302
    overview = browser.get("/", follow_redirects=True)
    assert overview.status_code == 200
    page = overview.get_data(as_text=True)
    assert "UPS 电源告警" in page and "待我处理" in page
    ups = browser.get(f"/tickets/{tickets['UPS 电源告警'].id}", headers=html)
    assert 'data-chosen="wufang"' in ups.get_data(as_text=True), "the page says why 吴芳"
    with app.app_context():
        db.engine.dispose()
