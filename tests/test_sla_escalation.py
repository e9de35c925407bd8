"""Each escalation level notifies the right people once, by email received by a real SMTP
server (aiosmtpd), and the reminder threshold reminds the engineer once."""

from __future__ import annotations

from datetime import UTC, timedelta

from app.auth.service import find_user
from app.notify.mailer import send_pending
from app.sla.escalation import escalate
from tests.test_notify import mail_config, smtp  # noqa: F401 - the SMTP server fixture
from tests.test_sla_clock import THURSDAY_9, at, calendars, policy, repair  # noqa: F401

EMAILS = {"fac1": "fac1@example.com", "fac_lead": "lead@example.com", "desk": "desk@example.com"}


def recipients_by_subject(server) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for message in server.mailbox.messages:
        found.setdefault(message["Subject"], set()).add(message["To"])
    return found


def test_each_level_notifies_its_people_once(app, db_session, calendars, smtp):  # noqa: F811
    for username, address in EMAILS.items():
        find_user(db_session=db_session, username=username).email = address
    policy(
        db_session,
        calendars,
        "设施 24×7",
        calendar="24x7",
        category="facilities",
        response_minutes=600,
        resolution_minutes=60,
    )
    with at(THURSDAY_9):
        flow = repair(db_session)
        flow.do("task_dispatch", "desk", engineer="fac1", parts_needed=False)
    number = flow.ticket.number
    smtp.start()

    def run(minutes: int) -> dict[str, set[str]]:
        now = THURSDAY_9 + timedelta(minutes=minutes)
        with at(now):
            escalate(db_session=db_session, now=now)
            escalate(db_session=db_session, now=now)  # a second pass notifies nobody again
            send_pending(db_session, mail_config(app, smtp), now)
        got = recipients_by_subject(smtp)
        smtp.mailbox.messages.clear()
        return got

    assert run(20) == {}
    assert run(31) == {
        f"工单 {number} 解决时限已用 50% / work order {number}: 50% of the resolution time is used": {
            "fac1@example.com"
        }
    }
    # 75 %: the reminder threshold and the 75 % level, each once.
    at_75 = run(46)
    assert sorted(sorted(people) for people in at_75.values()) == [
        ["fac1@example.com"],
        ["fac1@example.com", "lead@example.com"],
    ]
    # 100 %: the group lead and the dispatchers (desk), once.
    (over,) = run(61).values()
    assert {"lead@example.com", "desk@example.com"} <= over and "fac1@example.com" not in over
    assert run(62) == {}


def test_the_ledger_is_readable_through_the_api(db_session, calendars, as_user):  # noqa: F811
    policy(db_session, calendars, "设施 24×7", calendar="24x7", category="facilities")
    with at(THURSDAY_9):
        flow = repair(db_session)
        flow.do("task_dispatch", "desk", engineer="fac1", parts_needed=False)
    with at(THURSDAY_9 + timedelta(minutes=30)):
        answer = as_user("desk").get(f"/api/v1/tickets/{flow.ticket.id}/sla")
    assert answer.status_code == 200
    clocks = {clock["kind"]: clock for clock in answer.get_json()["clocks"]}
    assert set(clocks) == {"response", "resolution"}
    resolution = clocks["resolution"]
    assert (resolution["state"], resolution["target_minutes"]) == ("running", 480)
    assert resolution["elapsed_minutes"] == 30.0
    assert (
        resolution["deadline"] == (THURSDAY_9 + timedelta(minutes=480)).astimezone(UTC).isoformat()
    )
    assert as_user("alice").get("/api/v1/tickets/999999/sla").status_code == 404


def test_the_ledger_is_on_the_work_order_page(db_session, calendars, pages):  # noqa: F811
    policy(
        db_session,
        calendars,
        "设施 24×7",
        calendar="24x7",
        category="facilities",
        pause_on=["task_parts"],
    )
    with at(THURSDAY_9):
        flow = repair(db_session)
        flow.do("task_dispatch", "desk", engineer="fac1", parts_needed=True, parts_list="电容 × 1")
    with at(THURSDAY_9 + timedelta(minutes=30)):
        html = pages("desk").get(f"/tickets/{flow.ticket.id}").get_data(as_text=True)
        requester = pages("alice").get(f"/tickets/{flow.ticket.id}").get_data(as_text=True)
    assert 'id="sla-ledger"' in html and "服务级别（SLA）" in html
    assert 'data-clock="resolution" data-state="paused"' in html
    assert "已暂停；若现在恢复，截止" in html and 'data-interval="paused"' in html
    assert 'id="sla-ledger"' not in requester
