"""CSRF protection for anything a signed-in browser session sends.

Bearer-token requests carry no ambient credential and need no token. A request authenticated
by the session cookie must prove it came from our pages: unsafe methods need the session's CSRF
token in the form field `csrf_token` or the header `X-CSRF-Token`.
"""

from __future__ import annotations

import hmac
import secrets

from flask import Flask, g, request, session

from app.errors import NotAllowed

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def csrf_token() -> str:
    """The session's CSRF token (created on first use); templates call it."""
    token = session.get("csrf_token")
    if token is None:
        token = session["csrf_token"] = secrets.token_urlsafe(32)
    return token


def check_csrf() -> None:
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    expected = session.get("csrf_token") or ""
    if not expected or not hmac.compare_digest(sent, expected):
        raise NotAllowed(
            "页面已过期或来源不明（CSRF 校验失败），请刷新页面后重试",
            "the page expired or the request did not come from our pages (CSRF check "
            "failed); reload the page and try again",
        )


def init_csrf(app: Flask) -> None:
    app.jinja_env.globals["csrf_token"] = csrf_token

    @app.before_request
    def protect():
        if request.method in SAFE_METHODS or request.headers.get("Authorization"):
            return
        # The login form itself and any request that would be signed in by the cookie.
        if request.endpoint == "pages_auth.login" or "_user_id" in session:
            check_csrf()
        g.csrf_checked = True
