"""Sign-in and sign-out pages (browser sessions, with CSRF)."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user

from app.auth.service import TooManyAttempts, authenticate
from app.extensions import db

bp = Blueprint("pages_auth", __name__)


def _safe_next(target: str | None) -> str:
    # Only paths on this site: an absolute URL here would be an open redirect.
    if target and not urlsplit(target).netloc and target.startswith("/"):
        return target
    return url_for("pages.home")


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        try:
            user = authenticate(
                db_session=db.session,
                username=username,
                password=request.form.get("password", ""),
                remote_addr=request.remote_addr,
            )
        except TooManyAttempts as exc:
            error = exc
            user = None
        if user is not None:
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
        if error is None:
            error = "用户名或密码不正确 / wrong username or password"
        return render_template("auth/login.html", error=error, username=username), 401
    return render_template("auth/login.html", error=None, username="")


@bp.post("/logout")
def logout():
    if current_user.is_authenticated:
        logout_user()
    return redirect(url_for("pages_auth.login"))
