"""Errors a person can act on: every one carries a Chinese and an English message."""

from __future__ import annotations


class PaidanError(Exception):
    """Base error with a bilingual message; the API turns it into application/problem+json."""

    status = 400
    title = "Bad Request"

    def __init__(
        self,
        zh: str,
        en: str,
        *,
        status: int | None = None,
        errors: dict | None = None,
        headers: dict | None = None,
    ):
        super().__init__(f"{zh} / {en}")
        self.zh = zh
        self.en = en
        if status is not None:
            self.status = status
        self.errors = errors or {}
        self.headers = headers or {}


class InvalidInput(PaidanError):
    status = 400
    title = "Bad Request"


class NotAllowed(PaidanError):
    status = 403
    title = "Forbidden"


class NotFound(PaidanError):
    status = 404
    title = "Not Found"


class Conflict(PaidanError):
    status = 409
    title = "Conflict"


class TooLarge(PaidanError):
    status = 413
    title = "Payload Too Large"


class ProcessError(PaidanError):
    """A process could not move on with the data it has (e.g. no gateway branch matched)."""

    status = 422
    title = "Unprocessable Content"
