"""Errors on pages: a page in the reader's language instead of problem+json."""

from __future__ import annotations

from flask import make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from markupsafe import escape

from app.i18n import current_language


def page_problem(status: int, title: str, zh: str, en: str, errors=None, headers=None):
    if status == 401 and request.method == "GET" and not request.headers.get("HX-Request"):
        return redirect(url_for("pages_auth.login", next=request.full_path.rstrip("?")))
    message = zh if current_language() == "zh" else en
    if errors and isinstance(errors, dict):
        details = "; ".join(
            f"{name}: {', '.join(map(str, value)) if isinstance(value, list) else value}"
            for name, value in errors.items()
        )
        message = f"{message} ({details})"
    if request.headers.get("HX-Request"):
        response = make_response(f'<p class="error" role="alert">{escape(message)}</p>', status)
    else:
        heading = {
            401: _("Please sign in"),
            403: _("Not allowed"),
            404: _("Not found"),
            409: _("Changed in the meantime"),
            413: _("Too large"),
        }.get(status, _("Something went wrong") if status >= 500 else _("Cannot do that"))
        response = make_response(
            render_template("error.html", title=heading, message=message), status
        )
    response.headers.update({k: v for k, v in (headers or {}).items() if k != "Content-Type"})
    return response
