"""The SLA admin API: business calendars (hours, days, CSV import, the years without holiday
data) and SLA policies (targets, escalation, order), as an admin configures them, with bad input
named in Chinese and English and nothing stored, and other roles kept out."""

from __future__ import annotations

import io
from datetime import datetime

import pytest
import time_machine
from sqlalchemy import func, select

from app.audit.models import AuditEntry
from app.auth.models import Department
from app.sla.calendars_service import ensure_default_calendars
from app.sla.models import BusinessCalendar, CalendarDay
from app.sla.sla_models import SlaPolicy
from tests.conftest import SHANGHAI
from tests.flows import Flow

API = "/api/v1/sla"
# Thursday 26 November 2026 in Shanghai: 2027 is within the look-ahead, and chinese-calendar
# (1.11) knows nothing of it.
NOVEMBER = datetime(2026, 11, 26, 9, 0, tzinfo=SHANGHAI)
JUNE = datetime(2026, 6, 1, 9, 0, tzinfo=SHANGHAI)
CSV_2027 = "\n".join(
    [
        "date,kind,name",
        "2027-01-01,holiday,元旦",
        "2027-02-06,holiday,春节",
        "2027-02-07,holiday,春节",
        "2027-02-20,workday,春节调休",
        "2027-03-15,closure,办公室搬迁",
    ]
)


@pytest.fixture(autouse=True)
def november():
    with time_machine.travel(NOVEMBER, tick=False):
        yield


@pytest.fixture
def calendars(db_session) -> dict[str, int]:
    found = ensure_default_calendars(db_session)
    db_session.commit()
    return {code: calendar.id for code, calendar in found.items()}


@pytest.fixture
def admin(as_user):
    return as_user("admin")


def problem_of(answer, status: int) -> dict:
    assert answer.status_code == status, answer.get_data(as_text=True)[:600]
    assert answer.mimetype == "application/problem+json"
    return answer.get_json()


def count(db_session, model) -> int:
    return db_session.scalar(select(func.count()).select_from(model))


def csv_file(text: str, encoding: str = "utf-8", name: str = "days.csv") -> dict:
    return {"file": (io.BytesIO(text.encode(encoding)), name)}


def policy_body(calendar_id: int, **values) -> dict:
    return {
        "name": "设施报修",
        "process_key": "equipment_repair",
        "response_minutes": 60,
        "resolution_minutes": 480,
        "calendar_id": calendar_id,
        **values,
    }


# ---------------------------------------------------------------- calendars


def test_an_admin_creates_a_calendar_and_changes_its_week(admin, db_session):
    created = admin.post(
        f"{API}/calendars",
        json={
            "code": "shanghai-office",
            "name": "上海办公室",
            "working_hours": {"0": [["08:30", "12:00"], ["13:00", "17:30"]]},
        },
    )
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["time_zone"] == "Asia/Shanghai" and body["use_official_holidays"] is True
    assert body["working_hours"] == {"0": [["08:30", "12:00"], ["13:00", "17:30"]]}
    assert body["uncovered_years"] == [2027]

    week = {str(day): [["09:00", "18:00"]] for day in range(6)}
    changed = admin.patch(f"{API}/calendars/{body['id']}", json={"working_hours": week})
    assert changed.status_code == 200
    again = admin.get(f"{API}/calendars/{body['id']}").get_json()
    assert again["working_hours"] == week and again["name"] == "上海办公室"
    listed = admin.get(f"{API}/calendars").get_json()
    assert [item["code"] for item in listed["items"]] == ["shanghai-office"]
    actions = db_session.scalars(
        select(AuditEntry.action).where(AuditEntry.object_type == "business_calendar")
    ).all()
    assert actions == ["calendar.create", "calendar.update"]


@pytest.mark.parametrize(
    ("values", "field", "zh", "en"),
    [
        (
            {"working_hours": {"3": [["09:00", "12:30"], ["12:00", "18:00"]]}},
            "working_hours",
            "周四 时段 09:00–12:30 与 12:00–18:00 重叠",
            "Thursday intervals 09:00–12:30 and 12:00–18:00 overlap",
        ),
        (
            {"working_hours": {"0": [["18:00", "09:00"]]}},
            "working_hours",
            "结束不晚于开始",
            "does not end after it starts",
        ),
        ({"time_zone": "Asia/Beijing"}, "time_zone", "未知时区", "unknown time zone"),
        ({"code": "Head Office"}, "code", "只能含小写字母", "may hold only lowercase letters"),
    ],
)
def test_bad_calendar_input_is_named_in_both_languages_and_nothing_is_stored(
    admin, db_session, values, field, zh, en
):
    body = {"code": "office", "name": "办公室", "working_hours": {"0": [["09:00", "18:00"]]}}
    problem = problem_of(admin.post(f"{API}/calendars", json={**body, **values}), 400)
    assert field in problem["errors"]
    assert zh in problem["detail_zh"] and en in problem["detail_en"]
    assert problem["detail"] == problem["detail_zh"]
    assert count(db_session, BusinessCalendar) == 0


def test_a_bad_change_leaves_the_calendar_as_it_was(admin, calendars):
    url = f"{API}/calendars/{calendars['standard']}"
    before = admin.get(url).get_json()
    overlapping = {"4": [["09:00", "13:00"], ["12:00", "18:00"]]}
    problem = problem_of(admin.patch(url, json={"working_hours": overlapping}), 400)
    assert "working_hours" in problem["errors"]
    assert admin.get(url).get_json() == before
    taken = problem_of(admin.patch(url, json={"code": "24x7"}), 409)
    assert "24x7" in taken["detail_zh"] and "already exists" in taken["detail_en"]


def test_a_missing_calendar_is_404_and_unknown_fields_are_400(admin):
    problem = problem_of(admin.get(f"{API}/calendars/999999"), 404)
    assert "999999" in problem["detail_zh"] and "999999" in problem["detail_en"]
    problem_of(admin.get(f"{API}/calendars/99999999999"), 404)
    problem = problem_of(
        admin.post(f"{API}/calendars", json={"code": "x", "name": "X", "colour": "red"}), 400
    )
    assert "colour" in problem["detail_zh"] and "colour" in problem["detail_en"]


# ---------------------------------------------------------------- the years without data


def test_each_calendar_reports_the_years_in_use_without_holiday_data(admin, calendars):
    standard = admin.get(f"{API}/calendars/{calendars['standard']}").get_json()
    assert standard["uncovered_years"] == [2027]
    assert admin.get(f"{API}/calendars/{calendars['24x7']}").get_json()["uncovered_years"] == []
    london = admin.post(
        f"{API}/calendars",
        json={
            "code": "london",
            "name": "London office",
            "time_zone": "Europe/London",
            "use_official_holidays": False,
            "working_hours": {"0": [["09:00", "17:00"]]},
        },
    ).get_json()
    assert london["uncovered_years"] == [], "Chinese holidays do not shape it"
    with time_machine.travel(JUNE, tick=False):
        # Deadlines counted in June stay in 2026, which the built-in data knows.
        again = admin.get(f"{API}/calendars/{calendars['standard']}").get_json()
        assert again["uncovered_years"] == []


# ---------------------------------------------------------------- days


def test_holidays_go_to_the_shared_table_and_closures_to_the_calendar(admin, calendars, db_session):
    standard, office = calendars["standard"], None
    office = admin.post(
        f"{API}/calendars",
        json={"code": "office", "name": "办公室", "working_hours": {"0": [["09:00", "18:00"]]}},
    ).get_json()["id"]
    new_year = admin.post(
        f"{API}/calendars/{standard}/days",
        json={"date": "2027-01-01", "kind": "holiday", "name": "元旦"},
    )
    assert new_year.status_code == 201
    assert new_year.get_json() | {"id": 0} == {
        "id": 0,
        "date": "2027-01-01",
        "kind": "holiday",
        "name": "元旦",
        "scope": "official",
        "calendar_id": None,
    }
    move = admin.post(
        f"{API}/calendars/{standard}/days",
        json={"date": "2027-03-15", "kind": "closure", "name": "搬迁"},
    ).get_json()
    assert move["scope"] == "calendar" and move["calendar_id"] == standard

    def dates(calendar_id):
        items = admin.get(f"{API}/calendars/{calendar_id}/days?year=2027").get_json()["items"]
        return [(item["date"], item["scope"]) for item in items]

    assert dates(standard) == [("2027-01-01", "official"), ("2027-03-15", "calendar")]
    assert dates(office) == [("2027-01-01", "official")], "another calendar shares the holiday"
    assert admin.get(f"{API}/calendars/{standard}").get_json()["uncovered_years"] == []

    # Somebody else's closure is not this calendar's to remove.
    problem_of(admin.delete(f"{API}/calendars/{office}/days/{move['id']}"), 404)
    assert admin.delete(f"{API}/calendars/{standard}/days/{move['id']}").status_code == 204
    assert dates(standard) == [("2027-01-01", "official")]
    assert count(db_session, CalendarDay) == 1


def test_a_day_already_there_is_refused_and_the_stored_one_kept(admin, calendars, db_session):
    url = f"{API}/calendars/{calendars['standard']}/days"
    assert (
        admin.post(url, json={"date": "2027-02-06", "kind": "holiday", "name": "春节"}).status_code
        == 201
    )
    problem = problem_of(
        admin.post(url, json={"date": "2027-02-06", "kind": "workday", "name": "改成上班"}), 409
    )
    assert "2027-02-06" in problem["detail_zh"] and "法定节假日「春节」" in problem["detail_zh"]
    assert "already a holiday" in problem["detail_en"] and "remove it first" in problem["detail_en"]
    assert "date" in problem["errors"]
    (row,) = db_session.scalars(select(CalendarDay)).all()
    assert (row.kind, row.name) == ("holiday", "春节")


@pytest.mark.parametrize(
    ("body", "field", "zh", "en"),
    [
        ({"date": "2027-02-30", "kind": "holiday"}, "date", "不是日期", "is not a date"),
        ({"date": "2027-02-06", "kind": "vacation"}, "kind", "「vacation」无效", "'vacation'"),
    ],
)
def test_a_bad_day_is_named(admin, calendars, db_session, body, field, zh, en):
    problem = problem_of(
        admin.post(f"{API}/calendars/{calendars['standard']}/days", json=body), 400
    )
    assert field in problem["errors"]
    assert zh in problem["detail_zh"] and en in problem["detail_en"]
    assert count(db_session, CalendarDay) == 0


def test_a_24x7_calendar_takes_no_days(admin, calendars):
    problem = problem_of(
        admin.post(
            f"{API}/calendars/{calendars['24x7']}/days",
            json={"date": "2027-01-01", "kind": "holiday"},
        ),
        400,
    )
    assert "7×24" in problem["detail_zh"] and "24×7" in problem["detail_en"]


def test_importing_2027_clears_the_warning_and_counts_through_new_year(
    admin, calendars, db_session
):
    url = f"{API}/calendars/{calendars['standard']}/days/import"
    answer = admin.post(url, data=csv_file(CSV_2027), content_type="multipart/form-data")
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["imported"] == 5 and body["uncovered_years"] == []
    scopes = {day["date"]: day["scope"] for day in body["days"]}
    assert scopes["2027-02-20"] == "official" and scopes["2027-03-15"] == "calendar"
    assert admin.get(f"{API}/calendars/{calendars['standard']}").get_json()["uncovered_years"] == []


def test_a_csv_saved_by_excel_in_gbk_is_read(admin, calendars):
    url = f"{API}/calendars/{calendars['standard']}/days/import"
    answer = admin.post(url, data=csv_file(CSV_2027, "gbk"), content_type="multipart/form-data")
    assert answer.status_code == 200
    names = {day["date"]: day["name"] for day in answer.get_json()["days"]}
    assert names["2027-02-06"] == "春节"


def test_a_bad_csv_names_every_bad_line_and_stores_nothing(admin, calendars, db_session):
    text = "\n".join(
        [
            "date,kind,name",
            "2027-01-01,holiday,元旦",
            "2027-13-01,holiday,不存在的月份",
            "2027-02-06,vacation,春节",
            "2027-01-01,holiday,又是元旦",
            "2027-02-20",
        ]
    )
    url = f"{API}/calendars/{calendars['standard']}/days/import"
    problem = problem_of(
        admin.post(url, data=csv_file(text), content_type="multipart/form-data"), 400
    )
    for number in (3, 4, 5, 6):
        assert (
            f"第 {number} 行" in problem["detail_zh"] and f"line {number}:" in problem["detail_en"]
        )
    assert "第 2 行：" not in problem["detail_zh"]
    assert "未保存任何日期" in problem["detail_zh"] and "nothing was stored" in problem["detail_en"]
    assert "repeats line 2" in problem["detail_en"]
    assert set(problem["errors"]["lines"]) == {"3", "4", "5", "6"}
    assert count(db_session, CalendarDay) == 0
    assert admin.get(f"{API}/calendars/{calendars['standard']}").get_json()["uncovered_years"] == [
        2027
    ]


def test_an_import_without_a_file_or_with_binary_is_refused(admin, calendars):
    url = f"{API}/calendars/{calendars['standard']}/days/import"
    problem = problem_of(admin.post(url, data={}, content_type="multipart/form-data"), 400)
    assert "file" in problem["detail_zh"] and "file" in problem["detail_en"]
    binary = {"file": (io.BytesIO(b"\xff\xfe\x00\x81\x00"), "days.csv")}
    problem = problem_of(admin.post(url, data=binary, content_type="multipart/form-data"), 400)
    assert "UTF-8" in problem["detail_zh"] and "UTF-8" in problem["detail_en"]


# ---------------------------------------------------------------- policies


def test_an_admin_creates_changes_and_deletes_a_policy(admin, calendars, db_session):
    created = admin.post(
        f"{API}/policies",
        json=policy_body(
            calendars["standard"],
            priority="P1",
            escalation_levels=[
                {"percent": 50, "notify": ["assignee"]},
                {"percent": 100, "notify": ["manager", "user:desk"]},
            ],
            reminder_percent=80,
        ),
    )
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["position"] == 1 and body["calendar"]["code"] == "standard"
    assert body["escalation_levels"][1]["notify"] == ["manager", "user:desk"]
    assert body["reminder_percent"] == 80 and body["category"] is None

    changed = admin.patch(
        f"{API}/policies/{body['id']}", json={"resolution_minutes": 360, "category": "hvac"}
    ).get_json()
    assert changed["resolution_minutes"] == 360 and changed["category"] == "hvac"
    assert admin.get(f"{API}/policies/{body['id']}").get_json() == changed
    assert admin.delete(f"{API}/policies/{body['id']}").status_code == 204
    assert admin.get(f"{API}/policies").get_json()["total"] == 0


def test_new_policies_get_the_default_escalation_and_reminder(admin, calendars):
    body = admin.post(f"{API}/policies", json=policy_body(calendars["24x7"])).get_json()
    assert [level["percent"] for level in body["escalation_levels"]] == [50, 75, 100, 150]
    assert body["reminder_percent"] == 75 and body["response_event"] == "first_action"


@pytest.mark.parametrize(
    ("values", "field", "zh", "en"),
    [
        ({"response_minutes": -30}, "response_minutes", "响应时限（工作分钟）", "-30"),
        ({"resolution_minutes": 0}, "resolution_minutes", "解决时限（工作分钟）", "from 1"),
        ({"calendar_id": 987654}, "calendar_id", "没有 id 为 987654 的工作日历", "987654"),
        ({"priority": "P9"}, "priority", "优先级", "one of P1"),
        ({"department_code": "nowhere"}, "department_code", "「nowhere」", "'nowhere'"),
        ({"reminder_percent": 120}, "reminder_percent", "超时提醒阈值", "1 to 100"),
        (
            {"escalation_levels": [{"percent": 75, "notify": ["user:nobody"]}]},
            "escalation_levels",
            "nobody",
            "no active users named nobody",
        ),
        (
            {
                "escalation_levels": [
                    {"percent": 100, "notify": ["manager"]},
                    {"percent": 50, "notify": ["assignee"]},
                ]
            },
            "escalation_levels",
            "升序",
            "ascending",
        ),
    ],
)
def test_bad_policy_input_is_named_in_both_languages_and_nothing_is_stored(
    admin, calendars, db_session, values, field, zh, en
):
    body = {**policy_body(calendars["standard"]), **values}
    problem = problem_of(admin.post(f"{API}/policies", json=body), 400)
    assert field in problem["errors"]
    assert field in problem["detail_zh"] and zh in problem["detail_zh"]
    assert field in problem["detail_en"] and en in problem["detail_en"]
    assert count(db_session, SlaPolicy) == 0


def test_a_bad_change_leaves_the_policy_as_it_was(admin, calendars):
    policy = admin.post(f"{API}/policies", json=policy_body(calendars["standard"])).get_json()
    url = f"{API}/policies/{policy['id']}"
    problem = problem_of(admin.patch(url, json={"name": "改名", "response_minutes": -1}), 400)
    assert "response_minutes" in problem["errors"]
    assert admin.get(url).get_json() == policy


def test_a_policy_in_use_cannot_be_deleted_only_deactivated(admin, calendars, db_session):
    policy = admin.post(f"{API}/policies", json=policy_body(calendars["standard"])).get_json()
    Flow(
        db_session,
        "bob",
        "equipment_repair",
        category="facilities",
        priority="P3",
        region="shanghai",
        device_no="DEV-T-2",
    )
    problem = problem_of(admin.delete(f"{API}/policies/{policy['id']}"), 409)
    assert "停用" in problem["detail_zh"] and "deactivate" in problem["detail_en"]
    assert admin.patch(f"{API}/policies/{policy['id']}", json={"active": False}).status_code == 200


def test_reordering_changes_which_policy_a_work_order_gets(admin, as_user, calendars, db_session):
    broad = admin.post(
        f"{API}/policies", json=policy_body(calendars["standard"], name="全部报修")
    ).get_json()
    urgent = admin.post(
        f"{API}/policies",
        json=policy_body(calendars["24x7"], name="紧急报修", priority="P1", resolution_minutes=240),
    ).get_json()
    listed = admin.get(f"{API}/policies").get_json()["items"]
    assert [item["name"] for item in listed] == ["全部报修", "紧急报修"]

    ask = f"{API}/policies/match?process_key=equipment_repair&priority=P1"
    assert admin.get(ask).get_json()["policy"]["name"] == "全部报修"

    reordered = admin.request(
        "PUT", f"{API}/policies/order", json={"policy_ids": [urgent["id"], broad["id"]]}
    )
    assert reordered.status_code == 200
    assert [item["position"] for item in reordered.get_json()] == [1, 2]
    assert as_user("desk").get(ask).get_json()["policy"]["name"] == "紧急报修"
    p3 = f"{API}/policies/match?process_key=equipment_repair&priority=P3"
    assert admin.get(p3).get_json()["policy"]["name"] == "全部报修"
    assert admin.get(f"{API}/policies/match?process_key=it_service").get_json() == {"policy": None}

    # A real work order: its SLA ledger names the policy that now comes first.
    flow = Flow(
        db_session,
        "bob",
        "equipment_repair",
        title="配电柜冒烟",
        category="facilities",
        priority="P1",
        region="shanghai",
        device_no="DEV-T-2",
    )
    ledger = admin.get(f"/api/v1/tickets/{flow.ticket.id}/sla").get_json()
    assert {clock["policy"]["name"] for clock in ledger["clocks"]} == {"紧急报修"}


def test_an_order_must_name_every_policy_once(admin, calendars):
    first = admin.post(f"{API}/policies", json=policy_body(calendars["standard"])).get_json()
    admin.post(f"{API}/policies", json=policy_body(calendars["standard"], name="第二"))
    problem = problem_of(
        admin.request("PUT", f"{API}/policies/order", json={"policy_ids": [first["id"]]}), 400
    )
    assert "policy_ids" in problem["errors"]
    assert "缺少" in problem["detail_zh"] and "missing" in problem["detail_en"]
    assert [p["name"] for p in admin.get(f"{API}/policies").get_json()["items"]] == [
        "设施报修",
        "第二",
    ]


def test_a_department_policy_matches_the_departments_below_it(admin, calendars, db_session):
    hq = Department(code="hq", name="总部")
    db_session.add(hq)
    db_session.flush()
    db_session.add(Department(code="hq_it", name="IT 部", parent_id=hq.id))
    db_session.commit()
    admin.post(f"{API}/policies", json=policy_body(calendars["standard"], department_code="hq"))
    found = admin.get(f"{API}/policies/match?process_key=equipment_repair&department=hq_it")
    assert found.get_json()["policy"]["department_code"] == "hq"


# ---------------------------------------------------------------- who may


def test_dispatchers_read_and_other_roles_are_kept_out(as_user, calendars, db_session):
    admin = as_user("admin")
    policy = admin.post(f"{API}/policies", json=policy_body(calendars["standard"])).get_json()
    desk, net1 = as_user("desk"), as_user("net1")
    assert desk.get(f"{API}/calendars").status_code == 200
    assert desk.get(f"{API}/policies/{policy['id']}").status_code == 200

    problem = problem_of(desk.post(f"{API}/calendars", json={"code": "x", "name": "X"}), 403)
    assert "admin" in problem["detail_zh"] and "admin" in problem["detail_en"]
    problem_of(desk.patch(f"{API}/policies/{policy['id']}", json={"response_minutes": 1}), 403)
    problem_of(desk.delete(f"{API}/policies/{policy['id']}"), 403)
    problem_of(
        desk.post(
            f"{API}/calendars/{calendars['standard']}/days",
            json={"date": "2027-01-01", "kind": "holiday"},
        ),
        403,
    )
    assert count(db_session, CalendarDay) == 0
    assert admin.get(f"{API}/policies/{policy['id']}").get_json() == policy

    problem_of(net1.get(f"{API}/calendars"), 403)
    problem_of(net1.get(f"{API}/calendars/{calendars['standard']}"), 404)
    problem_of(net1.get(f"{API}/policies/{policy['id']}"), 404)
    problem_of(as_user("alice").get(f"{API}/policies"), 403)
