"""Notifications: in the app, by email to a real SMTP server (aiosmtpd), and in the outbox for
other channels; written in the transaction of their cause, once per cause."""

from __future__ import annotations

import email
import re
import socket
import threading
from datetime import datetime, timedelta
from email import policy

import pytest
import time_machine
from aiosmtpd.controller import Controller
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.service import find_user
from app.extensions import db
from app.notify import service
from app.notify.mailer import send_pending
from app.notify.models import Notification, OutboxMessage
from tests.conftest import SHANGHAI, backend
from tests.flows import Flow

NOW = datetime(2026, 11, 27, 10, 30, tzinfo=SHANGHAI)


@pytest.fixture(autouse=True)
def _a_minute_before_now():
    """Every test runs a minute before NOW (the clock going on): mail written by notify()
    is due at once, so a send at NOW finds it, whatever today's date is."""
    with time_machine.travel(NOW - timedelta(minutes=1), tick=True):
        yield


TITLE = ("工单即将超时", "Work order nearly due")
BODY = ("响应时限还剩 30 分钟", "30 minutes left to respond")


class Mailbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SmtpServer:
    def __init__(self, port: int):
        self.port = port
        self.mailbox = Mailbox()
        self.controller: Controller | None = None

    def start(self) -> SmtpServer:
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp():
    """A stopped SMTP server on a free port: tests start it (or leave it down)."""
    server = SmtpServer(free_port())
    yield server
    server.stop()


def mail_config(app, smtp: SmtpServer, **overrides) -> dict:
    return {
        **app.config,
        "MAIL_SMTP_HOST": "127.0.0.1",
        "MAIL_SMTP_PORT": smtp.port,
        "MAIL_SMTP_TIMEOUT": 5.0,
        "MAIL_FROM": "Paidan 派单 <paidan@example.com>",
        **overrides,
    }


def user(db_session, username: str, email_address: str | None = None):
    person = find_user(db_session=db_session, username=username)
    if email_address is not None:
        person.email = email_address
        db_session.flush()
    return person


def count(db_session, model) -> int:
    return db_session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def ticket(db_session):
    return Flow(db_session, "alice", "it_service", title="打印机无法联网").ticket


def test_a_notification_reaches_the_app_and_a_real_mailbox_in_both_languages(
    app, db_session, smtp, ticket
):
    net1 = user(db_session, "net1", "net1@example.com")
    written = service.notify(
        db_session,
        users=[net1],
        kind="sla_reminder",
        title=TITLE,
        body=BODY,
        ticket_id=ticket.id,
        dedupe_key=f"ticket:{ticket.id}:response:75",
    )
    db_session.commit()
    (note,) = written.notifications
    assert (note.user_id, note.ticket_id, note.link, note.read_at) == (
        net1.id,
        ticket.id,
        f"/tickets/{ticket.id}",
        None,
    )
    (row,) = written.outbox
    assert (row.channel, row.recipient, row.status) == ("email", "net1@example.com", "pending")

    smtp.start()
    report = send_pending(db_session, mail_config(app, smtp), NOW)

    assert (report.sent, report.failed) == (1, 0)
    assert smtp.mailbox.envelopes == [("paidan@example.com", ["net1@example.com"])]
    (message,) = smtp.mailbox.messages
    assert message["Subject"] == "工单即将超时 / Work order nearly due"
    assert message["To"] == "net1@example.com"
    assert "派单" in message["From"]
    text = message.get_content()
    link = f"http://127.0.0.1:5000/tickets/{ticket.id}"
    # Chinese first, English beside it, each with the link to the work order.
    assert text.index("工单即将超时") < text.index(BODY[0]) < text.index("Work order nearly due")
    assert text.index("Work order nearly due") < text.index(BODY[1])
    assert text.count(link) == 2
    db_session.refresh(row)
    assert (row.status, row.attempts, row.last_error) == ("sent", 1, None)
    assert row.sent_at == NOW
    # Sent once: the next pass finds nothing to do.
    assert send_pending(db_session, mail_config(app, smtp), NOW + timedelta(hours=1)).sent == 0
    assert len(smtp.mailbox.messages) == 1


def test_the_same_cause_twice_notifies_once_and_mails_once(app, db_session, smtp, ticket):
    people = [
        user(db_session, "net1", "net1@example.com"),
        user(db_session, "net_lead", "lead@example.com"),
    ]
    key = f"ticket:{ticket.id}:resolution:100"
    first = service.notify(
        db_session, users=people, kind="sla_escalation", title=TITLE, dedupe_key=key
    )
    again = service.notify(
        db_session, users=people, kind="sla_escalation", title=TITLE, dedupe_key=key
    )
    # Only the one not told yet is told when the cause reaches more people the second time.
    hw1 = user(db_session, "hw1", "hw1@example.com")
    widened = service.notify(
        db_session, users=[*people, hw1], kind="sla_escalation", title=TITLE, dedupe_key=key
    )
    db_session.commit()

    assert (len(first.notifications), len(first.outbox)) == (2, 2)
    assert (again.notifications, again.outbox) == ([], [])
    assert [n.user_id for n in widened.notifications] == [hw1.id]
    assert count(db_session, Notification) == 3
    assert count(db_session, OutboxMessage) == 3

    smtp.start()
    assert send_pending(db_session, mail_config(app, smtp), NOW).sent == 3
    recipients = sorted(rcpt for _sender, rcpts in smtp.mailbox.envelopes for rcpt in rcpts)
    assert recipients == ["hw1@example.com", "lead@example.com", "net1@example.com"]


def test_a_duplicate_written_by_a_concurrent_cause_is_skipped_without_breaking_the_transaction(
    db_session, monkeypatch, ticket
):
    net1 = user(db_session, "net1", "net1@example.com")
    key = "ticket:race"
    service.notify(db_session, users=[net1], kind="sla_reminder", title=TITLE, dedupe_key=key)
    # The other transaction's row is not seen by the check (as if it committed just after it):
    # the insert itself must skip it, and the transaction stays usable.
    original = db_session.scalars

    def blind_check(statement, *args, **kwargs):
        if str(statement).startswith("SELECT notification.user_id"):
            return iter(())
        return original(statement, *args, **kwargs)

    monkeypatch.setattr(db_session, "scalars", blind_check)
    written = service.notify(
        db_session, users=[net1], kind="sla_reminder", title=TITLE, dedupe_key=key
    )
    monkeypatch.undo()
    assert (written.notifications, written.outbox) == ([], [])
    assert count(db_session, Notification) == 1
    assert count(db_session, OutboxMessage) == 1
    ticket.title = "事务仍可继续"
    db_session.commit()


def test_smtp_down_keeps_the_mail_pending_with_its_error_then_the_next_run_delivers(
    app, db_session, smtp
):
    net1 = user(db_session, "net1", "net1@example.com")
    (row,) = service.notify(db_session, users=[net1], kind="sla_reminder", title=TITLE).outbox
    db_session.commit()
    config = mail_config(app, smtp)

    down = send_pending(db_session, config, NOW)  # nothing listens on the port yet

    assert (down.sent, down.failed) == (0, 1)
    db_session.refresh(row)
    assert (row.status, row.attempts) == ("pending", 1)
    assert "refused" in row.last_error.lower()
    assert row.next_attempt_at == NOW + timedelta(seconds=config["MAIL_RETRY_SECONDS"])
    # Not due again before its wait is over, even with the server back.
    smtp.start()
    assert send_pending(db_session, config, NOW + timedelta(seconds=30)).sent == 0

    later = NOW + timedelta(seconds=config["MAIL_RETRY_SECONDS"])
    assert send_pending(db_session, config, later).sent == 1
    db_session.refresh(row)
    assert (row.status, row.attempts, row.sent_at) == ("sent", 2, later)
    assert [m["Subject"] for m in smtp.mailbox.messages] == ["工单即将超时 / Work order nearly due"]


def test_the_wait_doubles_after_each_failure_and_the_mail_is_given_up_at_the_limit(
    app, db_session, smtp
):
    net1 = user(db_session, "net1", "net1@example.com")
    (row,) = service.notify(db_session, users=[net1], kind="sla_reminder", title=TITLE).outbox
    db_session.commit()
    config = mail_config(app, smtp, MAIL_MAX_ATTEMPTS=3, MAIL_RETRY_SECONDS=60)
    now = NOW
    waits = []
    for _ in range(3):
        send_pending(db_session, config, now)
        db_session.refresh(row)
        waits.append(row.next_attempt_at - now)
        now = row.next_attempt_at
    assert waits[:2] == [timedelta(seconds=60), timedelta(seconds=120)]
    assert (row.status, row.attempts) == ("failed", 3)
    assert send_pending(db_session, config, now + timedelta(days=1)).failed == 0


def test_without_an_smtp_host_nothing_is_sent_and_the_mail_waits(app, db_session, smtp):
    net1 = user(db_session, "net1", "net1@example.com")
    (row,) = service.notify(db_session, users=[net1], kind="sla_reminder", title=TITLE).outbox
    db_session.commit()
    smtp.start()
    report = send_pending(db_session, mail_config(app, smtp, MAIL_SMTP_HOST=""), NOW)
    assert report.disabled and report.sent == 0
    db_session.refresh(row)
    assert (row.status, row.attempts) == ("pending", 0)
    assert smtp.mailbox.messages == []


def test_a_refused_address_does_not_hold_up_the_other_mails(app, db_session, smtp):
    people = [
        user(db_session, "net1", "net1@example.com"),
        user(db_session, "hw1", "hw1@example.com"),
    ]
    service.notify(db_session, users=people, kind="sla_reminder", title=TITLE)
    db_session.commit()

    class Picky(Mailbox):
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            if address.startswith("net1@"):
                return "550 5.1.1 mailbox unavailable"
            envelope.rcpt_tos.append(address)
            return "250 OK"

    smtp.mailbox = Picky()
    smtp.start()
    report = send_pending(db_session, mail_config(app, smtp), NOW)
    assert (report.sent, report.failed) == (1, 1)
    refused = db_session.scalars(
        select(OutboxMessage).where(OutboxMessage.recipient == "net1@example.com")
    ).one()
    assert refused.status == "pending" and "550" in refused.last_error


def test_email_goes_to_people_with_an_address_and_other_channels_to_everyone(app, db_session):
    net1 = user(db_session, "net1", "net1@example.com")
    hw1 = user(db_session, "hw1")  # no email address
    written = service.notify(
        db_session,
        users=[net1, hw1],
        kind="sla_escalation",
        title=TITLE,
        body=BODY,
        channels=["email", "wecom"],
    )
    rows = sorted((row.channel, row.recipient) for row in written.outbox)
    assert rows == [("email", "net1@example.com"), ("wecom", "hw1"), ("wecom", "net1")]
    wecom = next(row for row in written.outbox if row.recipient == "hw1")
    assert wecom.payload["title_zh"] == TITLE[0] and wecom.payload["user_id"] == hw1.id
    assert len(written.notifications) == 2


def test_the_configured_channels_are_used_when_none_are_named(app, db_session, monkeypatch):
    monkeypatch.setitem(app.config, "NOTIFY_CHANNELS", ["webhook"])
    net1 = user(db_session, "net1", "net1@example.com")
    written = service.notify(db_session, users=[net1], kind="sla_reminder", title=TITLE)
    assert [(row.channel, row.recipient) for row in written.outbox] == [("webhook", "net1")]


def test_a_rolled_back_change_leaves_no_notification_and_no_outbox_row(db_session, ticket):
    net1 = user(db_session, "net1", "net1@example.com")
    db_session.commit()
    ticket.priority = "P1"
    service.notify(
        db_session, users=[net1], kind="sla_escalation", title=TITLE, ticket_id=ticket.id
    )
    assert count(db_session, Notification) == 1  # notify wrote into the caller's transaction
    # Had notify committed, the rows would outlive this rollback (the fixture's commits are
    # savepoints released for good).
    db_session.rollback()
    assert count(db_session, Notification) == 0
    assert count(db_session, OutboxMessage) == 0
    db_session.refresh(ticket)
    assert ticket.priority != "P1"


@pytest.mark.skipif(backend() != "postgresql", reason="SKIP LOCKED exists on PostgreSQL only")
def test_a_mail_another_worker_is_sending_is_skipped(fresh_app, smtp):
    with fresh_app.app_context():
        people = [
            user(db.session, "net1", "net1@example.com"),
            user(db.session, "hw1", "hw1@example.com"),
        ]
        written = service.notify(db.session, users=people, kind="sla_reminder", title=TITLE)
        db.session.commit()
        busy = written.outbox[0].id
        other = Session(db.engine)
        try:
            # Another worker holds the first message's row (it is sending it now).
            other.scalar(select(OutboxMessage).where(OutboxMessage.id == busy).with_for_update())
            smtp.start()
            report = send_pending(db.session, mail_config(fresh_app, smtp), datetime.now(SHANGHAI))
            assert report.sent == 1
            assert smtp.mailbox.envelopes[0][1] == ["hw1@example.com"]
        finally:
            other.rollback()
            other.close()
        db.session.remove()


# ---------------------------------------------------------------- API and page


@pytest.fixture
def notes(db_session, ticket):
    """net1 has two notifications (one read), hw1 one."""
    net1, hw1 = user(db_session, "net1"), user(db_session, "hw1")
    with time_machine.travel(NOW, tick=False):
        old = service.notify(
            db_session, users=[net1], kind="sla_reminder", title=("旧提醒", "Old reminder")
        ).notifications[0]
        service.mark_read(db_session, user=net1, notification_id=old.id)
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        new = service.notify(
            db_session,
            users=[net1],
            kind="sla_escalation",
            title=("工单已超时", "Work order overdue"),
            body=("已超过解决时限", "past its resolution target"),
            ticket_id=ticket.id,
        ).notifications[0]
        others = service.notify(
            db_session, users=[hw1], kind="sla_reminder", title=("他人的提醒", "Someone else's")
        ).notifications[0]
    db_session.commit()
    return {"old": old.id, "new": new.id, "others": others.id, "ticket": ticket.id}


def test_the_api_lists_mine_newest_first_and_hides_others(as_user, notes):
    api = as_user("net1")
    answer = api.get("/api/v1/notifications").get_json()
    assert [item["id"] for item in answer["items"]] == [notes["new"], notes["old"]]
    assert (answer["total"], answer["unread"]) == (2, 1)
    newest = answer["items"][0]
    assert (newest["title_zh"], newest["title_en"], newest["read"]) == (
        "工单已超时",
        "Work order overdue",
        False,
    )
    assert newest["link"] == f"/tickets/{notes['ticket']}"
    unread = api.get("/api/v1/notifications?unread=true").get_json()
    assert [item["id"] for item in unread["items"]] == [notes["new"]]
    paged = api.get("/api/v1/notifications?per_page=1&page=2").get_json()
    assert [item["id"] for item in paged["items"]] == [notes["old"]]

    assert api.post(f"/api/v1/notifications/{notes['others']}/read").status_code == 404
    assert as_user("admin").post(f"/api/v1/notifications/{notes['new']}/read").status_code == 404
    assert api.post("/api/v1/notifications/99999999999999999999/read").status_code == 404


def test_the_api_marks_one_and_all_read(as_user, notes):
    api = as_user("net1")
    answer = api.post(f"/api/v1/notifications/{notes['new']}/read")
    assert answer.status_code == 200
    assert answer.get_json()["read"] is True and answer.get_json()["read_at"]
    assert api.get("/api/v1/notifications").get_json()["unread"] == 0

    hw1 = as_user("hw1")
    assert hw1.get("/api/v1/notifications").get_json()["unread"] == 1
    assert hw1.post("/api/v1/notifications/read-all").get_json() == {"marked": 1, "unread": 0}
    assert hw1.get("/api/v1/notifications?unread=true").get_json()["items"] == []
    # net1's read-all marks nothing of hw1's and only its own.
    assert api.post("/api/v1/notifications/read-all").get_json()["marked"] == 0


def badge(html: str) -> str | None:
    match = re.search(
        r'<span class="badge" data-count="notifications"( hidden)?>(\d+)</span>', html
    )
    return None if match is None or match.group(1) else match.group(2)


def test_the_page_shows_mine_newest_first_with_the_unread_marked_and_a_count_in_the_menu(
    pages, notes
):
    html = pages("net1").get("/notifications").get_data(as_text=True)
    assert html.index("工单已超时") < html.index("旧提醒")
    assert "他人的提醒" not in html and "Work order overdue" not in html
    assert badge(html) == "1"
    unread = re.findall(r'data-notification="(\d+)"', html)
    assert unread == [str(notes["new"]), str(notes["old"])]
    new_item = html[html.index(f'id="notification-{notes["new"]}"') :].split("</li>")[0]
    assert 'class="turn"' in new_item and "未读" in new_item and "已超过解决时限" in new_item
    assert f'href="/tickets/{notes["ticket"]}"' in new_item
    old_item = html[html.index(f'id="notification-{notes["old"]}"') :].split("</li>")[0]
    assert "未读" not in old_item and "标为已读" not in old_item
    assert "全部标为已读" in html

    english = pages("net1", "en").get("/notifications").get_data(as_text=True)
    assert "Work order overdue" in english and "工单已超时" not in english
    assert "Mark all as read" in english

    # Every page carries the count, and it is mine.
    assert badge(pages("hw1").get("/inbox").get_data(as_text=True)) == "1"
    assert badge(pages("alice").get("/portal").get_data(as_text=True)) is None


def test_the_page_marks_read_in_place_and_all_at_once(pages, notes):
    browser = pages("net1")
    answer = browser.open(
        "/notifications/read",
        "POST",
        headers={"HX-Request": "true"},
        data={"csrf_token": browser.csrf, "notification_id": notes["new"]},
    )
    assert answer.status_code == 200
    fragment = answer.get_data(as_text=True)
    assert f'id="notification-{notes["new"]}"' in fragment and "未读" not in fragment
    assert 'data-count="notifications" hx-swap-oob' in fragment
    assert badge(browser.get("/notifications").get_data(as_text=True)) is None

    # Another person's notification cannot be marked (nor learnt of).
    assert (
        browser.post("/notifications/read", data={"notification_id": notes["others"]}).status_code
        == 404
    )
    hw1 = pages("hw1")
    answer = hw1.post("/notifications/read-all", data={})
    assert answer.status_code == 302
    html = hw1.get("/notifications").get_data(as_text=True)
    assert "已标为已读：1 条" in html and badge(html) is None and "全部标为已读" not in html
    assert "没有未读通知" in hw1.get("/notifications?unread=1").get_data(as_text=True)
