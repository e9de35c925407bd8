"""The email job: sends due email rows of the outbox over SMTP, one transaction per message.

Several workers may run it at once: each message is claimed with FOR UPDATE SKIP LOCKED
(PostgreSQL; SQLite serialises writers), sent, and marked in the same transaction. Delivery is
at least once: a worker that dies between the SMTP answer and its commit leaves the row
pending, and it is sent again.
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.extensions import db
from app.notify.models import OutboxMessage
from app.timeutil import utcnow

log = logging.getLogger(__name__)

# The longest wait between two attempts at one message.
MAX_BACKOFF = timedelta(hours=6)


@dataclass
class MailReport:
    sent: int = 0
    failed: int = 0  # attempts that failed this pass (the rows stay pending unless given up)
    given_up: int = 0  # rows that reached MAIL_MAX_ATTEMPTS and are now "failed"
    disabled: bool = False


class _Connection:
    """One SMTP session for a pass, opened at the first message."""

    def __init__(self, config):
        self.config = config
        self.smtp: smtplib.SMTP | None = None

    def open(self) -> None:
        if self.smtp is not None:
            return
        config = self.config
        smtp = smtplib.SMTP(
            config["MAIL_SMTP_HOST"], config["MAIL_SMTP_PORT"], timeout=config["MAIL_SMTP_TIMEOUT"]
        )
        try:
            if config["MAIL_SMTP_STARTTLS"]:
                smtp.starttls()
            if config["MAIL_SMTP_USERNAME"]:
                smtp.login(config["MAIL_SMTP_USERNAME"], config["MAIL_SMTP_PASSWORD"])
        except BaseException:
            smtp.close()
            raise
        self.smtp = smtp

    def send(self, message: EmailMessage) -> None:
        self.open()
        self.smtp.send_message(message)

    def close(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (smtplib.SMTPException, OSError):
                self.smtp.close()
            self.smtp = None


def build_message(row: OutboxMessage, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = row.subject
    message["From"] = sender
    message["To"] = row.recipient
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = make_msgid(idstring=f"outbox-{row.id}")
    message.set_content(row.body, charset="utf-8")
    return message


def backoff(config, attempts: int) -> timedelta:
    """MAIL_RETRY_SECONDS after the first failure, doubling after each next one."""
    seconds = config["MAIL_RETRY_SECONDS"] * 2 ** min(attempts - 1, 20)
    return min(timedelta(seconds=seconds), MAX_BACKOFF)


def _claim_next(db_session: Session, now: datetime, skipped: list[int]) -> OutboxMessage | None:
    query = (
        select(OutboxMessage)
        .where(
            OutboxMessage.channel == "email",
            OutboxMessage.status == "pending",
            OutboxMessage.next_attempt_at <= now,
        )
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if skipped:
        query = query.where(OutboxMessage.id.not_in(skipped))
    return db_session.scalar(query)


def send_pending(db_session: Session, config, now: datetime | None = None) -> MailReport:
    """Send the due email rows (up to MAIL_BATCH_SIZE); commits after each message.

    A message the server refuses is kept pending with the error and tried again after a
    growing wait, and marked failed after MAIL_MAX_ATTEMPTS. When the server cannot be reached
    the pass stops after recording it on that message: the others would fail the same way.
    With MAIL_SMTP_HOST empty nothing is sent and the rows stay pending.
    """
    report = MailReport()
    if not config["MAIL_SMTP_HOST"]:
        report.disabled = True
        return report
    now = now or utcnow()
    connection = _Connection(config)
    handled: list[int] = []
    try:
        for _ in range(config["MAIL_BATCH_SIZE"]):
            row = _claim_next(db_session, now, handled)
            if row is None:
                db_session.rollback()
                break
            handled.append(row.id)
            unreachable = False
            try:
                connection.open()
                connection.send(build_message(row, config["MAIL_FROM"]))
            except smtplib.SMTPRecipientsRefused as error:
                # This message's fault (an address the server refuses): go on with the others.
                _record_failure(row, config, now, _describe(error), report)
                connection.close()
            except (smtplib.SMTPException, OSError) as error:
                # A server that cannot be reached, refuses us, or rejects the message: the
                # pass stops unless the session was open and answered for this message alone.
                unreachable = connection.smtp is None or not isinstance(
                    error, smtplib.SMTPResponseException
                )
                _record_failure(row, config, now, _describe(error), report)
                connection.close()
            else:
                row.status = "sent"
                row.sent_at = now
                row.attempts += 1
                row.last_error = None
                report.sent += 1
            db_session.commit()
            if unreachable:
                break
    finally:
        connection.close()
    return report


def _describe(error: Exception) -> str:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return "; ".join(
            f"{recipient}: {code} {reason.decode(errors='replace')}"
            for recipient, (code, reason) in error.recipients.items()
        )
    if isinstance(error, smtplib.SMTPResponseException):
        message = error.smtp_error
        if isinstance(message, bytes):
            message = message.decode(errors="replace")
        return f"{error.smtp_code} {message}"
    return f"{type(error).__name__}: {error}"


def _record_failure(row: OutboxMessage, config, now: datetime, error: str, report) -> None:
    row.attempts += 1
    row.last_error = error[:2000]
    if row.attempts >= config["MAIL_MAX_ATTEMPTS"]:
        row.status = "failed"
        report.given_up += 1
        log.error("email %s to %s given up: %s", row.id, row.recipient, error)
    else:
        row.next_attempt_at = now + backoff(config, row.attempts)
        log.warning(
            "email %s to %s failed (attempt %s): %s", row.id, row.recipient, row.attempts, error
        )
    report.failed += 1


def send_mail(app: Flask) -> MailReport:
    """One pass of the email job, with an app context (the scheduler's entry point)."""
    with app.app_context():
        try:
            report = send_pending(db.session, app.config)
        finally:
            db.session.remove()
    if report.sent or report.failed:
        log.info("mail: %s sent, %s failed", report.sent, report.failed)
    return report
