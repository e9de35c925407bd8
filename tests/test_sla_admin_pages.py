"""The SLA admin pages: the policies in match order (create, edit, reorder, "which one
applies?"), the calendars and one calendar's week, days and CSV import, with a loud warning on
every year in use that has no holiday data. Dispatchers read; other roles are kept out."""

from __future__ import annotations

import io
from datetime import datetime

import lxml.html
import pytest
import time_machine
from sqlalchemy import func, select

from app.sla.calendars_service import ensure_default_calendars
from app.sla.models import BusinessCalendar, CalendarDay
from app.sla.policies import create_policy, list_policies
from app.sla.sla_models import SlaPolicy
from tests.conftest import SHANGHAI

NOVEMBER = datetime(2026, 11, 26, 9, 0, tzinfo=SHANGHAI)
WARNING_ZH = "2027 年没有节假日数据，请维护或导入"
WARNING_EN = "No holiday data for 2027: maintain or import it"


@pytest.fixture(autouse=True)
def november():
    with time_machine.travel(NOVEMBER, tick=False):
        yield


@pytest.fixture
def calendars(db_session) -> dict[str, int]:
    found = ensure_default_calendars(db_session)
    db_session.commit()
    return {code: calendar.id for code, calendar in found.items()}


def page(answer, status: int = 200) -> lxml.html.HtmlElement:
    assert answer.status_code == status, answer.get_data(as_text=True)[:1500]
    return lxml.html.fromstring(answer.get_data(as_text=True))


def texts(root, xpath: str) -> list[str]:
    return [" ".join(" ".join(e.itertext()).split()) for e in root.xpath(xpath)]


def text(root, xpath: str) -> str:
    return " ".join(texts(root, xpath))


def count(db_session, model) -> int:
    return db_session.scalar(select(func.count()).select_from(model))


def add_policy(db_session, calendar_id: int, name: str, **values) -> SlaPolicy:
    policy = create_policy(
        db_session=db_session,
        values={
            "name": name,
            "process_key": "equipment_repair",
            "response_minutes": 60,
            "resolution_minutes": 480,
            "calendar_id": calendar_id,
            **values,
        },
        actor="admin",
    )
    db_session.commit()
    return policy


# ---------------------------------------------------------------- the warning


def test_a_year_in_use_without_holiday_data_is_flagged_on_every_page(pages, calendars, db_session):
    add_policy(db_session, calendars["standard"], "全部报修")
    admin = pages("admin")
    overview = page(admin.get("/overview"))
    assert overview.xpath("//nav//a[@data-nav='sla' and @href='/sla']"), "the admin nav links it"
    assert text(overview, "//a[@data-nav='sla']") == "SLA 设置"

    for url in ("/sla", "/sla/calendars", f"/sla/calendars/{calendars['standard']}"):
        root = page(admin.get(url))
        warnings = texts(root, "//*[@data-uncovered='2027']")
        assert warnings and all(WARNING_ZH in w for w in warnings), url
        assert root.xpath("//*[@data-uncovered='2027']/a[contains(@href, 'year=2027')]"), url

    calendar_page = page(admin.get(f"/sla/calendars/{calendars['standard']}"))
    assert calendar_page.xpath("//*[@data-uncovered='2027'][@role='alert']")
    assert text(calendar_page, "//section[@id='days']/h2") == "2027 年的日期", (
        "the page opens on the year that needs data"
    )
    assert calendar_page.xpath("//a[@data-year='2027'][@aria-current='page']")

    english = page(pages("admin", "en").get(f"/sla/calendars/{calendars['standard']}"))
    assert WARNING_EN in text(english, "//*[@data-uncovered='2027']")

    # The 24×7 calendar is never short of holidays.
    round_the_clock = page(admin.get(f"/sla/calendars/{calendars['24x7']}"))
    assert not round_the_clock.xpath("//*[@data-uncovered]")


def test_adding_a_holiday_of_2027_from_the_page_clears_the_warning(pages, calendars, db_session):
    admin = pages("admin")
    url = f"/sla/calendars/{calendars['standard']}/days"
    answer = admin.htmx(
        url,
        "POST",
        data={"csrf_token": admin.csrf, "date": "2027-01-01", "kind": "holiday", "name": "元旦"},
    )
    fragment = page(answer)
    assert texts(fragment, "//tr[@data-day='2027-01-01']/td")[:3] == [
        "2027-01-01 周五",
        "法定节假日",
        "元旦",
    ]
    (warning_box,) = fragment.xpath("//*[@id='uncovered'][@hx-swap-oob='true']")
    assert not warning_box.xpath(".//*[@data-uncovered]"), "the warning is gone"
    root = page(admin.get(f"/sla/calendars/{calendars['standard']}"))
    assert not root.xpath("//*[@data-uncovered]")

    again = admin.htmx(
        url,
        "POST",
        data={"csrf_token": admin.csrf, "date": "2027-01-01", "kind": "workday", "name": "x"},
    )
    refused = page(again, 409)
    assert "2027-01-01 在法定节假日表中已是法定节假日「元旦」" in text(refused, "//*[@data-error]")
    assert count(db_session, CalendarDay) == 1

    (row,) = db_session.scalars(select(CalendarDay)).all()
    removed = admin.htmx(f"{url}/{row.id}/delete", "POST", data={"csrf_token": admin.csrf})
    assert not page(removed).xpath("//tr[@data-day]")
    assert count(db_session, CalendarDay) == 0


def test_importing_a_csv_from_the_page(pages, calendars, db_session):
    admin = pages("admin")
    url = f"/sla/calendars/{calendars['standard']}/days/import"
    good = "date,kind,name\n2027-02-06,holiday,春节\n2027-02-20,workday,春节调休\n"
    answer = admin.post(
        url,
        data={"csrf_token": admin.csrf, "file": (io.BytesIO(good.encode()), "2027.csv")},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith("year=2027")
    root = page(admin.get(answer.headers["Location"]))
    assert "已导入 2 个日期" in text(root, "//p[contains(@class, 'flash')]")
    assert [d for d in root.xpath("//tr/@data-day")] == ["2027-02-06", "2027-02-20"]
    assert not root.xpath("//*[@data-uncovered]")

    bad = "2027-03-01,closure,停电\n2027-02-30,holiday,不存在\n"
    refused = page(
        admin.post(
            url,
            data={"csrf_token": admin.csrf, "file": (io.BytesIO(bad.encode()), "bad.csv")},
            content_type="multipart/form-data",
        ),
        400,
    )
    message = text(refused, "//*[@data-error]")
    assert "第 2 行" in message and "未保存任何日期" in message
    assert count(db_session, CalendarDay) == 2, "the good line was not stored either"

    nothing = page(admin.post(url, data={"csrf_token": admin.csrf}), 400)
    assert "请先选择 CSV 文件" in text(nothing, "//*[@data-error]")


# ---------------------------------------------------------------- the week


def test_the_week_is_changed_from_the_page_and_bad_hours_are_named(pages, calendars, db_session):
    admin = pages("admin")
    url = f"/sla/calendars/{calendars['standard']}"
    form = {
        "csrf_token": admin.csrf,
        "name": "总部工作时间",
        "time_zone": "Asia/Shanghai",
        "use_official_holidays": "1",
        **{f"hours-{day}": "09:00 - 12:00，13:00-17:30" for day in range(5)},
        "hours-5": "09:00-12:00",
    }
    assert admin.post(url, data=form).status_code == 303
    calendar = db_session.get(BusinessCalendar, calendars["standard"])
    db_session.refresh(calendar)
    assert calendar.name == "总部工作时间"
    assert calendar.working_hours["0"] == [["09:00", "12:00"], ["13:00", "17:30"]]
    assert calendar.working_hours["5"] == [["09:00", "12:00"]] and "6" not in calendar.working_hours
    root = page(admin.get(url))
    assert root.xpath("//input[@name='hours-5']/@value") == ["09:00-12:00"]

    bad = {**form, "name": "改坏了", "hours-2": "13:00-12:00"}
    refused = page(admin.post(url, data=bad), 400)
    assert "周三第 1 段 13:00–12:00 结束不晚于开始" in text(refused, "//*[@data-error]")
    assert refused.xpath("//input[@name='hours-2']/@value") == ["13:00-12:00"], "kept as typed"
    db_session.refresh(calendar)
    assert calendar.name == "总部工作时间"


def test_a_calendar_is_created_from_the_list(pages, calendars, db_session):
    admin = pages("admin")
    form = {
        "csrf_token": admin.csrf,
        "code": "night_shift",
        "name": "夜班",
        "time_zone": "Asia/Shanghai",
        "hours-0": "00:00-06:00, 22:00-24:00",
    }
    answer = admin.post("/sla/calendars", data=form)
    assert answer.status_code == 303
    created = db_session.scalar(
        select(BusinessCalendar).where(BusinessCalendar.code == "night_shift")
    )
    assert created.working_hours == {"0": [["00:00", "06:00"], ["22:00", "24:00"]]}
    assert created.use_official_holidays is False, "the box was left unticked"
    listed = page(admin.get("/sla/calendars"))
    assert "周一: 00:00-06:00, 22:00-24:00" in text(listed, f"//li[@data-calendar='{created.id}']")

    taken = page(admin.post("/sla/calendars", data={**form, "name": "再来一个"}), 409)
    assert "night_shift" in text(taken, "//*[@data-error]")
    assert count(db_session, BusinessCalendar) == 3


def test_the_standard_calendars_can_be_added_when_missing(pages, db_session):
    admin = pages("admin")
    root = page(admin.get("/sla/calendars"))
    assert root.xpath("//*[@data-no-calendars]") and root.xpath("//button[@data-defaults]")
    assert admin.post("/sla/calendars/defaults", data={"csrf_token": admin.csrf}).status_code == 303
    root = page(admin.get("/sla/calendars"))
    assert len(root.xpath("//li[@data-calendar]")) == 2 and not root.xpath(
        "//button[@data-defaults]"
    )


# ---------------------------------------------------------------- policies


def policy_form(admin, calendar_id: int, **values) -> dict:
    return {
        "csrf_token": admin.csrf,
        "name": "空调报修",
        "process_key": "equipment_repair",
        "category": "facilities",
        "priority": "",
        "department_code": "",
        "response_minutes": "120",
        "resolution_minutes": "960",
        "response_event": "checkin",
        "calendar_id": str(calendar_id),
        "pause_on": "备件申领, task_parts",
        "reminder_percent": "80",
        "level-0-percent": "50",
        "level-0-notify": ["assignee"],
        "level-0-people": "",
        "level-1-percent": "100",
        "level-1-notify": ["group_lead", "manager"],
        "level-1-people": "desk",
        "level-2-percent": "",
        "level-2-people": "",
        "active": "1",
        **values,
    }


def test_a_policy_is_created_and_edited_from_the_page(pages, calendars, db_session):
    admin = pages("admin")
    new = page(admin.get("/sla/policies/new"))
    assert new.xpath("//input[@name='level-3-percent']"), "four default levels, then spare rows"
    assert new.xpath("//input[@name='reminder_percent']/@value") == ["75"]

    answer = admin.post("/sla/policies/new", data=policy_form(admin, calendars["standard"]))
    assert answer.status_code == 303
    (policy,) = list_policies(db_session=db_session)
    assert (policy.response_minutes, policy.resolution_minutes) == (120, 960)
    assert policy.pause_on == ["备件申领", "task_parts"] and policy.reminder_percent == 80
    assert policy.escalation_levels == [
        {"percent": 50, "notify": ["assignee"]},
        {"percent": 100, "notify": ["group_lead", "manager", "user:desk"]},
    ]
    listed = page(admin.get("/sla"))
    item = f"//li[@data-policy='{policy.id}']"
    assert "类型 设备报修" in text(listed, f"{item}//dd[@data-fits]")
    assert "设施" in text(listed, f"{item}//dd[@data-fits]")
    assert "120 个工作分钟（2 小时）" in text(listed, item)
    assert "100 %: 组长、调度员、desk" in text(listed, item), "people by display name"

    edit = page(admin.get(f"/sla/policies/{policy.id}"))
    assert edit.xpath("//input[@name='level-1-people']/@value") == ["desk"]
    changed = policy_form(admin, calendars["24x7"], resolution_minutes="240", active="")
    assert admin.post(f"/sla/policies/{policy.id}", data=changed).status_code == 303
    db_session.refresh(policy)
    assert (policy.resolution_minutes, policy.calendar_id, policy.active) == (
        240,
        calendars["24x7"],
        False,
    )


def test_bad_policy_input_is_shown_on_the_form_and_nothing_is_stored(pages, calendars, db_session):
    admin = pages("admin")
    form = policy_form(admin, calendars["standard"], response_minutes="-30")
    refused = page(admin.post("/sla/policies/new", data=form), 400)
    message = text(refused, "//*[@data-error]")
    assert "响应时限（工作分钟） response_minutes" in message and "-30" in message
    assert refused.xpath("//input[@name='response_minutes']/@value") == ["-30"], "kept as typed"
    assert refused.xpath("//input[@name='level-1-people']/@value") == ["desk"]
    assert count(db_session, SlaPolicy) == 0

    english = pages("admin", "en")
    refused = page(
        english.post("/sla/policies/new", data={**form, "csrf_token": english.csrf}), 400
    )
    assert "response_minutes: a whole number of working minutes" in text(
        refused, "//*[@data-error]"
    )


def test_moving_a_policy_changes_which_one_applies(pages, calendars, db_session):
    broad = add_policy(db_session, calendars["standard"], "全部报修")
    urgent = add_policy(db_session, calendars["24x7"], "紧急报修", priority="P1")
    admin = pages("admin")
    trial = "/sla?process_key=equipment_repair&priority=P1"
    assert page(admin.get(trial)).xpath("//p[@data-trial]/@data-trial") == [str(broad.id)]

    moved = admin.htmx(
        f"/sla/policies/{urgent.id}/move",
        "POST",
        data={"csrf_token": admin.csrf, "direction": "up"},
    )
    fragment = page(moved)
    assert fragment.xpath("//li/@data-policy") == [str(urgent.id), str(broad.id)]
    assert fragment.xpath(f"//li[@data-policy='{urgent.id}']//button[@data-move='up']/@disabled")
    root = page(admin.get(trial))
    assert root.xpath("//p[@data-trial]/@data-trial") == [str(urgent.id)]
    assert "此类工单将使用：紧急报修" in text(root, "//p[@data-trial]")
    assert [p.name for p in list_policies(db_session=db_session)] == ["紧急报修", "全部报修"]

    nothing = page(admin.get("/sla?process_key=it_service"))
    assert "没有匹配的启用策略" in text(nothing, "//p[@data-trial]")


def test_a_policy_in_use_is_not_deleted_from_the_page(pages, calendars, db_session):
    from tests.flows import Flow

    policy = add_policy(db_session, calendars["standard"], "全部报修")
    Flow(
        db_session,
        "bob",
        "equipment_repair",
        category="facilities",
        priority="P3",
        region="shanghai",
        device_no="DEV-T-2",
    )
    admin = pages("admin")
    refused = page(
        admin.post(f"/sla/policies/{policy.id}/delete", data={"csrf_token": admin.csrf}), 409
    )
    assert "不能删除" in text(refused, "//*[@data-error]")
    assert count(db_session, SlaPolicy) == 1

    unused = add_policy(db_session, calendars["standard"], "闲置")
    answer = admin.post(f"/sla/policies/{unused.id}/delete", data={"csrf_token": admin.csrf})
    assert answer.status_code == 303 and count(db_session, SlaPolicy) == 1


# ---------------------------------------------------------------- who may


def test_dispatchers_read_the_pages_without_ways_to_change_them(pages, calendars, db_session):
    policy = add_policy(db_session, calendars["standard"], "全部报修")
    desk = pages("desk")
    listed = page(desk.get("/sla"))
    assert listed.xpath(f"//li[@data-policy='{policy.id}']")
    assert not listed.xpath("//button[@data-move]") and not listed.xpath(
        "//a[contains(@href, '/sla/policies/new')]"
    )
    form = page(desk.get(f"/sla/policies/{policy.id}"))
    assert form.xpath("//fieldset[@disabled]") and not form.xpath("//main//button[@type='submit']")
    calendar = page(desk.get(f"/sla/calendars/{calendars['standard']}"))
    assert not calendar.xpath("//form[@data-add-day]") and not calendar.xpath(
        "//input[@type='file']"
    )
    assert WARNING_ZH in text(calendar, "//*[@data-uncovered]")

    answer = desk.post(f"/sla/policies/{policy.id}/delete", data={"csrf_token": desk.csrf})
    assert answer.status_code == 403
    answer = desk.post(
        f"/sla/calendars/{calendars['standard']}/days",
        data={"csrf_token": desk.csrf, "date": "2027-01-01", "kind": "holiday"},
    )
    assert answer.status_code == 403
    assert count(db_session, SlaPolicy) == 1 and count(db_session, CalendarDay) == 0


@pytest.mark.parametrize("username", ["net1", "reviewer", "alice", "fin1"])
def test_other_roles_neither_see_the_link_nor_open_the_pages(pages, calendars, username):
    browser = pages(username)
    home = page(browser.get("/", follow_redirects=True))
    assert not home.xpath("//a[@data-nav='sla']")
    for url in ("/sla", "/sla/calendars", f"/sla/calendars/{calendars['standard']}"):
        assert browser.get(url).status_code == 403, url


def test_the_pages_with_data_are_in_one_language(pages, calendars, db_session):
    from tests.conftest import ORG
    from tests.crawl import chinese_in_english_page, english_words_in_chinese_page, visible_texts

    add_policy(
        db_session,
        calendars["standard"],
        "全部报修",
        escalation_levels=[{"percent": 100, "notify": ["manager", "user:desk"]}],
    )
    standard = calendars["standard"]
    import_days = f"/sla/calendars/{standard}/days/import"
    admin = pages("admin")
    csv = "2027-02-06,holiday,春节\n2027-03-15,closure,搬迁\n"
    admin.post(
        import_days,
        data={"csrf_token": admin.csrf, "file": (io.BytesIO(csv.encode()), "d.csv")},
        content_type="multipart/form-data",
    )
    from tests.crawl import stored_strings

    data = stored_strings()
    (policy,) = list_policies(db_session=db_session)
    urls = [
        "/sla",
        "/sla?process_key=equipment_repair&priority=P1",
        "/sla/policies/new",
        f"/sla/policies/{policy.id}",
        "/sla/calendars",
        f"/sla/calendars/{standard}?year=2026",
        f"/sla/calendars/{standard}?year=2027",
        f"/sla/calendars/{calendars['24x7']}",
    ]
    usernames = {name for name, *_ in ORG}
    for language, check in (
        ("zh", lambda t: english_words_in_chinese_page(t, usernames, data)),
        ("en", lambda t: chinese_in_english_page(t, data)),
    ):
        browser = pages("admin", language)
        for url in urls:
            # The page's own part; the navigation is every page's and crawled elsewhere.
            (main,) = page(browser.get(url)).xpath("//main")
            assert check(visible_texts(lxml.html.tostring(main, encoding="unicode"))) == [], (
                language,
                url,
            )
    built_in = page(pages("admin", "en").get(f"/sla/calendars/{standard}?year=2026"))
    assert "National Day" in text(built_in, "//details[@data-built-in]")
