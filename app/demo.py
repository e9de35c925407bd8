"""Demo data: a small company in Chinese with work orders in every state."""

from __future__ import annotations

import io
from pathlib import Path

from flask import Flask
from PIL import Image, ImageDraw
from sqlalchemy import select

from app import engine
from app.attachments.service import Upload, add_attachments
from app.auth.org_service import create_department, create_group, create_skill, update_group
from app.auth.service import create_user
from app.dispatch.demo import seed_dispatch
from app.engine.models import HumanTask
from app.extensions import db
from app.inbox.service import complete
from app.portal.service import rate_ticket
from app.reports.service_report import refresh_report
from app.site.service import check_in
from app.sla.calendars_service import ensure_default_calendars
from app.sla.policies import create_policy
from app.tickets.contributions import add_note
from app.tickets.models import Device
from app.tickets.service import create_ticket
from app.timeutil import utcnow

DEMO_PASSWORD = "paidan123"

GROUPS = [
    ("service_desk", "服务台", "一线受理、问题分级与复核"),
    ("network", "网络组", "网络、VPN、交换机与无线"),
    ("hardware", "硬件组", "电脑、打印机、服务器与现场设备"),
    ("facilities", "设施组", "空调、电源、门禁等楼宇设施"),
    ("spare_parts", "备件库", "备件申领与出库"),
]

# code, name, parent code
DEPARTMENTS = [
    ("hq", "总部", None),
    ("hq_admin", "行政部", "hq"),
    ("hq_finance", "财务部", "hq"),
    ("hq_it", "IT 部", "hq"),
    ("shanghai", "上海分公司", "hq"),
    ("shenzhen", "深圳分公司", "hq"),
]

SKILLS = [
    ("network", "网络"),
    ("printer", "打印机"),
    ("pc", "电脑终端"),
    ("server", "服务器"),
    ("air_conditioning", "空调"),
    ("ups", "UPS"),
    ("access_control", "门禁"),
]

# username, display name, role, groups, lead of, department, {skill: level 1..5}
USERS = [
    ("admin", "系统管理员", "admin", [], None, "hq_it", {}),
    # 张伟 dispatches for the whole company (总部 is the top), 刘洋 for 上海分公司.
    ("zhangwei", "张伟", "dispatcher", ["service_desk"], "service_desk", "hq", {}),
    ("liuyang", "刘洋", "dispatcher", ["service_desk"], None, "shanghai", {}),
    ("huangli", "黄丽", "reviewer", ["service_desk"], None, "hq_it", {"network": 3, "pc": 3}),
    ("liqiang", "李强", "handler", ["network"], "network", "hq_it", {"network": 5, "server": 3}),
    ("sunhao", "孙浩", "handler", ["network"], None, "shanghai", {"network": 3, "pc": 2}),
    (
        "wanglei",
        "王磊",
        "handler",
        ["hardware"],
        "hardware",
        "hq_it",
        {"server": 4, "pc": 4, "printer": 3},
    ),
    ("zhoujie", "周杰", "handler", ["hardware"], None, "shenzhen", {"printer": 4, "server": 2}),
    (
        "zhaomin",
        "赵敏",
        "handler",
        ["facilities"],
        "facilities",
        "hq_admin",
        {"air_conditioning": 4, "ups": 4, "access_control": 3},
    ),
    (
        "wufang",
        "吴芳",
        "handler",
        ["facilities"],
        None,
        "shanghai",
        {"air_conditioning": 3, "ups": 2},
    ),
    ("chenjing", "陈静", "handler", ["spare_parts"], "spare_parts", "hq_admin", {"ups": 2}),
    ("xuming", "徐明", "requester", [], None, "hq_admin", {}),
    ("hetao", "何涛", "requester", [], None, "shenzhen", {}),
    ("linna", "林娜", "requester", [], None, "shanghai", {}),
    ("qianyu", "钱宇", "finance", [], None, "hq_finance", {}),
]

DEVICES = [
    (
        "DEV-BJ-0001",
        "核心交换机",
        "华为 S5735",
        "beijing",
        "北京市海淀区中关村大街 1 号 3 层机房",
        39.9836,
        116.3164,
    ),
    (
        "DEV-BJ-0002",
        "行政部打印机",
        "惠普 M404dn",
        "beijing",
        "北京市海淀区中关村大街 1 号 5 层",
        39.9836,
        116.3164,
    ),
    (
        "DEV-SH-0001",
        "UPS 不间断电源",
        "山特 C10KS",
        "shanghai",
        "上海市浦东新区张江路 88 号 B1 配电室",
        31.2036,
        121.5873,
    ),
    (
        "DEV-SH-0002",
        "会议室空调外机",
        "格力 RF12W",
        "shanghai",
        "上海市浦东新区张江路 88 号 屋顶",
        31.2036,
        121.5873,
    ),
    (
        "DEV-SZ-0001",
        "门禁读卡器",
        "海康 DS-K1T",
        "shenzhen",
        "深圳市南山区科技园南区 2 栋大堂",
        22.5405,
        113.9345,
    ),
    (
        "DEV-SZ-0002",
        "机房服务器",
        "浪潮 NF5280M6",
        "shenzhen",
        "深圳市南山区科技园南区 2 栋 4 层机房",
        22.5405,
        113.9345,
    ),
]


def shipped_files(app: Flask) -> list[tuple[str, bytes]]:
    folder = Path(app.config["PROCESSES_DIR"])
    paths = sorted(folder.glob("*.bpmn")) + sorted(folder.glob("*.dmn"))
    paths += sorted((folder / "forms").glob("*.form"))
    return [(path.name, path.read_bytes()) for path in paths]


def deploy_shipped(app: Flask, actor: str | None = None):
    return engine.deploy(db_session=db.session, files=shipped_files(app), actor=actor)


def demo_photo(colour: str) -> io.BytesIO:
    """A small picture standing in for a requester's photo of the fault."""
    image = Image.new("RGB", (640, 480), "#eceff1")
    draw = ImageDraw.Draw(image)
    draw.rectangle((160, 90, 480, 390), fill="#37474f")
    draw.ellipse((290, 150, 350, 210), fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    buffer.seek(0)
    return buffer


# SLA policies of the demo, first match wins: urgent work round the clock, field repair paused
# while spare parts are requested, everything else on the standard working week.
DEMO_POLICIES = (
    (
        "紧急故障（全天候）",
        "24x7",
        {"priority": "P1", "response_minutes": 30, "resolution_minutes": 240},
    ),
    (
        "设备现场维修",
        "standard",
        {
            "process_key": "equipment_repair",
            "response_minutes": 120,
            "resolution_minutes": 960,
            "pause_on": ["备件申领"],
        },
    ),
    ("IT 服务台（默认）", "standard", {"response_minutes": 60, "resolution_minutes": 480}),
)


def seed_sla(session) -> None:
    """The standard and 24×7 calendars and the demo's SLA policies."""
    calendars = ensure_default_calendars(session)
    for name, calendar, values in DEMO_POLICIES:
        create_policy(
            db_session=session,
            values={"name": name, "calendar_id": calendars[calendar].id, **values},
            actor="admin",
        )


def seed_demo(app: Flask) -> str:
    session = db.session
    for code, name, parent in DEPARTMENTS:
        create_department(db_session=session, code=code, name=name, parent=parent)
    for code, name in SKILLS:
        create_skill(db_session=session, code=code, name=name)
    groups = {
        code: create_group(db_session=session, code=code, name=name, description=desc)
        for code, name, desc in GROUPS
    }
    users = {}
    for username, name, role, group_codes, lead_of, department, skills in USERS:
        users[username] = create_user(
            db_session=session,
            username=username,
            password=DEMO_PASSWORD,
            role=role,
            display_name=name,
            group_codes=group_codes,
            email=f"{username}@paidan.example",
            department_code=department,
            skills=skills,
        )
        if lead_of:
            update_group(db_session=session, group=groups[lead_of], lead=username)
    for number, name, model, region, address, lat, lng in DEVICES:
        session.add(
            Device(
                device_no=number,
                name=name,
                model=model,
                region=region,
                address=address,
                lat=lat,
                lng=lng,
            )
        )
    session.flush()
    deploy_shipped(app, actor="admin")
    # Before the work orders, so that the network group's are dispatched as they arrive.
    profiles = seed_dispatch(db_session=session, now=utcnow())
    seed_sla(session)

    def ticket(requester, title, description, key="it_service", **fields):
        return create_ticket(
            db_session=session,
            requester=users[requester],
            title=title,
            description=description,
            process_key=key,
            **fields,
        )

    def act(t, element_id, username, **data):
        """The person completes the step from their inbox, as on the task page: a 派单 step
        thus stores its DispatchDecision (the work-order page says why that engineer) and
        asks for the reason given here when the choice is not the top recommendation.
        ``username`` None: the engineer dispatch gave the task to (who is on shift decides)."""
        task = session.scalars(
            select(HumanTask).where(
                HumanTask.ticket_id == t.id,
                HumanTask.status == "open",
                HumanTask.element_id == element_id,
            )
        ).one()
        user = users[username or task.assignee]
        complete(db_session=session, user=user, task_id=task.id, data=data)

    triage = dict(resolution="forward", triage_note="已电话确认现象")
    ticket(
        "xuming",
        "无法连接公司 VPN",
        "在家办公时 VPN 客户端提示认证超时，重装后仍无法连接。",
        priority="P2",
        region="beijing",
    )

    t = ticket(
        "hetao",
        "行政部打印机频繁卡纸",
        "打印超过 10 页就卡纸，影响报销单打印。",
        device_no="DEV-BJ-0002",
        region="beijing",
    )
    act(t, "task_triage", "liuyang", category="hardware", priority="P3", region="beijing", **triage)

    t = ticket(
        "linna", "邮箱密码重置", "忘记邮箱密码，需要重置。", priority="P4", region="shanghai"
    )
    act(
        t,
        "task_triage",
        "liuyang",
        category="account",
        priority="P4",
        region="shanghai",
        resolution="solved",
        triage_note="已在服务台直接重置并告知用户",
    )

    t = ticket(
        "xuming", "会议室投影仪无信号", "3 楼大会议室投影仪接笔记本无信号。", region="beijing"
    )
    act(
        t, "task_triage", "zhangwei", category="hardware", priority="P2", region="beijing", **triage
    )
    act(
        t,
        "task_handle",
        "zhoujie",
        solution="更换 HDMI 线缆并更新投影仪固件，测试正常。",
        time_spent_minutes=40,
    )

    t = ticket(
        "hetao",
        "财务系统登录报错",
        "登录财务系统时提示证书无效。",
        priority="P2",
        region="shenzhen",
    )
    act(
        t, "task_triage", "zhangwei", category="network", priority="P2", region="shenzhen", **triage
    )
    # The network group is dispatched automatically: its engineer on shift handles it.
    act(t, "task_handle", None, solution="重新导入根证书。", time_spent_minutes=20)
    act(
        t,
        "task_review",
        "huangli",
        review_result="reject",
        review_comment="用户反馈仍报错，请检查代理设置。",
    )

    repair = dict(key="equipment_repair", category="facilities")
    ticket(
        "linna",
        "会议室空调外机异响",
        "空调外机运行时有金属撞击声。",
        device_no="DEV-SH-0002",
        region="shanghai",
        priority="P3",
        **repair,
    )

    t = ticket(
        "xuming",
        "UPS 电源告警",
        "UPS 面板显示电池故障告警。",
        device_no="DEV-SH-0001",
        region="shanghai",
        priority="P1",
        **repair,
    )
    add_attachments(
        db_session=session,
        ticket_id=t.id,
        actor="xuming",
        uploads=[Upload("ups-panel.jpg", demo_photo("#c62828"), "image/jpeg")],
    )
    act(
        t,
        "task_dispatch",
        "zhangwei",
        engineer="wufang",  # the recommendation: no reason asked
        parts_needed=True,
        parts_list="UPS 蓄电池 12V 100Ah × 4",
    )

    t = ticket(
        "hetao",
        "门禁读卡器故障",
        "大堂门禁刷卡无反应。",
        device_no="DEV-SZ-0001",
        region="shenzhen",
        priority="P2",
        **repair,
    )
    act(
        t,
        "task_dispatch",
        "zhangwei",
        engineer="zhaomin",
        dispatch_reason="赵敏正在深圳，当天可以到场",
        parts_needed=False,
    )
    # The engineer scanned the reader's QR code about 20 m away, and noted what was found.
    check_in(
        db_session=session,
        user=users["zhaomin"],
        device_no="DEV-SZ-0001",
        ticket_id=t.id,
        lat=22.5406,
        lng=113.9346,
        accuracy_m=12,
    )
    add_note(
        db_session=session,
        user=users["zhaomin"],
        ticket=t,
        body="到场检查：读卡器指示灯不亮，怀疑供电模块接触不良。",
    )
    act(
        t,
        "task_onsite",
        "zhaomin",
        fault_cause="读卡器供电模块松动",
        work_done="重新紧固并测试 20 次刷卡",
    )

    t = ticket(
        "linna",
        "服务器风扇告警",
        "机房服务器 2 号风扇转速异常。",
        device_no="DEV-SZ-0002",
        region="shenzhen",
        priority="P2",
        key="equipment_repair",
        category="hardware",
    )
    act(
        t,
        "task_dispatch",
        "zhangwei",
        engineer="zhoujie",
        dispatch_reason="周杰负责深圳机房的服务器",
        parts_needed=True,
        parts_list="服务器风扇模块 × 1",
    )
    act(t, "task_parts", "chenjing", parts_issued=True, parts_note="已从深圳备件库出库")
    act(
        t,
        "task_onsite",
        "zhoujie",
        fault_cause="风扇轴承磨损",
        work_done="更换风扇模块，转速恢复正常",
    )
    act(
        t,
        "task_acceptance",
        "linna",
        acceptance_result="accept",
        acceptance_comment="已恢复，谢谢",
        csat=5,
    )
    rate_ticket(
        db_session=session,
        user=users["linna"],
        ticket_id=t.id,
        rating=5,
        comment="工程师当天到场，处理很专业。",
    )
    refresh_report(db_session=session, ticket=t)
    return (
        f"{len(DEPARTMENTS)} departments, {len(GROUPS)} groups, {len(SKILLS)} skills, "
        f"{len(USERS)} users ({profiles} engineer profiles), {len(DEVICES)} devices, "
        "9 work orders"
    )
