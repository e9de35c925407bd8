"""Page languages: Simplified Chinese by default, English on request (flask-babel).

Message ids are English; app/translations/zh holds the Chinese. The chosen language lives in a
cookie (set by the language switch), else the browser's Accept-Language picks, else Chinese.
"""

from __future__ import annotations

import re
from datetime import datetime

from flask import Blueprint, Flask, g, make_response, redirect, request
from flask_babel import Babel, format_datetime, get_locale

from app.urls import safe_next

LANGUAGES = {"zh": "中文", "en": "English"}
COOKIE = "paidan_lang"
babel = Babel()
bp = Blueprint("i18n", __name__)

# Data written in both languages by an admin, "解决方案 / Solution": one side per language.
_BILINGUAL = re.compile(r"^(?P<zh>[^/]*?[\u3400-\u9fff][^/]*?)\s+/\s+(?P<en>[^/]+)$")


def select_locale() -> str:
    chosen = request.cookies.get(COOKIE)
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(list(LANGUAGES), default="zh")


def current_language() -> str:
    return get_locale().language if get_locale() else "zh"


def pick(text: str | None, language: str | None = None) -> str:
    """The side of a bilingual "中文 / English" text for the page language; others unchanged."""
    if not text:
        return text or ""
    match = _BILINGUAL.match(text.strip())
    if not match:
        return text
    return match["zh" if (language or current_language()) == "zh" else "en"].strip()


def error_text(error) -> str:
    """A PaidanError's message in the page language."""
    return error.zh if current_language() == "zh" else error.en


def local_time(value: datetime | None, style: str = "short") -> str:
    if value is None:
        return "—"
    return format_datetime(value, "yyyy-MM-dd HH:mm" if style == "short" else style)


@bp.get("/lang/<code>")
def switch_language(code: str):
    response = make_response(redirect(safe_next(request.args.get("next"))))
    if code in LANGUAGES:
        response.set_cookie(COOKIE, code, max_age=365 * 24 * 3600, samesite="Lax", httponly=True)
    return response


def init_i18n(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale)

    @app.before_request
    def choose_language_afresh():
        # flask-babel caches the language in g; an app context can outlive one request
        # (commands, tests), and each request must choose again.
        g.pop("_flask_babel", None)

    app.register_blueprint(bp)
    app.jinja_env.globals.update(
        LANGUAGES=LANGUAGES, current_language=current_language, pick=pick, error_text=error_text
    )
    app.jinja_env.filters["local_time"] = local_time
    app.jinja_env.filters["pick"] = pick
