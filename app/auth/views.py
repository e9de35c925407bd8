"""Sign-in and sign-out pages (browser sessions, with CSRF)."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from app.auth.service import TooManyAttempts, authenticate
from app.extensions import db
from app.i18n import error_text
from app.urls import safe_next

bp = Blueprint("pages_auth", __name__)


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
            error = error_text(exc)
            user = None
        if user is not None:
            login_user(user)
            return redirect(safe_next(request.args.get("next")))
        if error is None:
            error = _("Wrong username or password")
        return render_template("auth/login.html", error=error, username=username), 401
    return render_template("auth/login.html", error=None, username="")


@bp.post("/logout")
def logout():
    if current_user.is_authenticated:
        logout_user()
    return redirect(url_for("pages_auth.login"))
