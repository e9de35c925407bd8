"""The REST API's shared parts: problem+json errors and pagination arguments."""

from __future__ import annotations

import http
import logging

from flask import Flask, has_request_context, jsonify, request
from flask_smorest import Api
from flask_smorest import Blueprint as SmorestBlueprint
from flask_smorest.utils import prepare_response
from marshmallow import Schema, fields, validate
from sqlalchemy import func, select
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException

from app.errors import PaidanError
from app.i18n import select_locale

log = logging.getLogger(__name__)

# Werkzeug's English titles with the Chinese that goes in front of them.
_HTTP_ZH = {
    400: "请求格式不正确",
    401: "请先登录",
    403: "没有权限",
    404: "找不到该地址",
    405: "该地址不支持此方法",
    409: "与当前状态冲突",
    413: "上传内容过大",
    415: "不支持的内容类型",
    422: "请求内容有误",
    500: "服务器内部错误",
}


def preferred_language() -> str:
    """The language chosen on our pages (their cookie), else zh unless Accept-Language prefers
    English: a page's fetch() gets its problem in the language the page is shown in."""
    if not has_request_context():
        return "zh"
    return select_locale()


def wants_page() -> bool:
    """A browser navigating our pages (or htmx inside them), not an API client or fetch()."""
    if not has_request_context() or request.path.startswith("/api/"):
        return False
    if request.headers.get("HX-Request"):
        return True
    accept = request.accept_mimetypes
    return bool(accept) and accept.best_match(["application/json", "text/html"]) == "text/html"


def problem(status: int, title: str, zh: str, en: str, errors=None, headers=None):
    if wants_page():
        from app.pages_errors import page_problem  # pages import the API, not the reverse

        return page_problem(status, title, zh, en, errors, headers)
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": en if preferred_language() == "en" else zh,
        "detail_zh": zh,
        "detail_en": en,
    }
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM_JSON
    response.headers.update(headers or {})
    return response


def http_problem(error: HTTPException):
    data = getattr(error, "data", None) or {}
    errors = data.get("errors") or data.get("messages")
    headers = dict(error.get_headers())
    headers.pop("Content-Type", None)
    zh = _HTTP_ZH.get(error.code, error.name)
    en = error.description or error.name
    if errors:
        fields_named = ", ".join(_field_names(errors))
        zh, en = f"请求字段有误：{fields_named}", f"invalid request fields: {fields_named}"
    return problem(error.code or 500, error.name, zh, en, errors, headers)


def _field_names(errors) -> list[str]:
    names = []
    for location, entries in errors.items() if isinstance(errors, dict) else []:
        if isinstance(entries, dict) and location in {"json", "query", "form", "files", "headers"}:
            names.extend(map(str, entries))
        else:
            names.append(str(location))
    return names


class _Parser(FlaskParser):
    # Invalid request fields are invalid input (400) like every other; 422 is kept for
    # "the process cannot continue with this data".
    DEFAULT_VALIDATION_STATUS = 400


class Blueprint(SmorestBlueprint):
    """flask-smorest Blueprint whose request validation errors are 400."""

    ARGUMENTS_PARSER = _Parser()


PROBLEM_JSON = "application/problem+json"


class PaidanApi(Api):
    """flask-smorest Api whose errors are application/problem+json, in answers and in the spec."""

    def handle_http_exception(self, error):
        return http_problem(error)

    def _register_responses(self):
        # flask-smorest documents its error responses as application/json; ours are problems.
        for status in http.HTTPStatus:
            response = {"description": status.phrase}
            if status >= 400:
                response["schema"] = ProblemSchema
            prepare_response(response, self.spec, PROBLEM_JSON)
            self.spec.components.response(status.name, response, lazy=True)
        response = {
            "description": "错误 / error (application/problem+json)",
            "schema": ProblemSchema,
        }
        prepare_response(response, self.spec, PROBLEM_JSON)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)


def _rollback() -> None:
    from app.extensions import db  # the extensions module imports this one

    db.session.rollback()


def install_error_handlers(app: Flask) -> None:
    @app.errorhandler(PaidanError)
    def paidan_error(error: PaidanError):
        _rollback()
        return problem(error.status, error.title, error.zh, error.en, error.errors, error.headers)

    @app.errorhandler(StaleDataError)
    def stale(_error):
        _rollback()
        return problem(
            409,
            "Conflict",
            "该流程刚被他人更新，请刷新后重试",
            "the process was changed by someone else at the same time; reload and try again",
        )

    @app.errorhandler(DataError)
    def bad_data(error):
        # A value the database cannot take (NUL bytes, numbers out of range) is invalid input.
        _rollback()
        log.info("data error: %s", error.orig)
        return problem(
            400,
            "Bad Request",
            "数据格式不被数据库接受（例如含有空字符或数值超出范围）",
            "a value cannot be stored (for example a NUL character or a number out of range)",
        )

    @app.errorhandler(IntegrityError)
    def integrity(error):
        _rollback()
        log.warning("integrity error: %s", error.orig)
        return problem(
            409,
            "Conflict",
            "数据与已有记录冲突，请刷新后重试",
            "the data conflicts with a stored record; reload and try again",
        )

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        # An unexpected error (a 500 among them) may leave the transaction aborted
        # (PostgreSQL): the error page must not run its queries inside it.
        _rollback()
        return http_problem(error)


class ProblemSchema(Schema):
    """application/problem+json (RFC 9457), in the caller's language, with both beside it."""

    type = fields.String(metadata={"example": "about:blank"})
    title = fields.String(metadata={"example": "Not Found"})
    status = fields.Integer(metadata={"example": 404})
    detail = fields.String(metadata={"example": "工单 42 不存在"})
    detail_zh = fields.String(metadata={"example": "工单 42 不存在"})
    detail_en = fields.String(metadata={"example": "work order 42 not found"})
    errors = fields.Dict(metadata={"description": "invalid fields, by location and name"})


_PROBLEM_TEXT = {
    400: "请求无效 / invalid input (the fields are named)",
    401: "未登录或令牌无效 / no or invalid bearer token",
    403: "没有权限 / not allowed for this role",
    404: "不存在或无权查看 / not found, or not visible to the caller",
    409: "与当前状态冲突 / conflicts with the current state",
    422: "流程无法继续 / the process cannot continue with this data",
    429: "尝试次数过多 / too many attempts",
}


def problems(blueprint, *statuses: int):
    """Document the problem responses an endpoint can give, in one line per endpoint."""

    def decorate(view):
        for status in sorted(statuses, reverse=True):
            view = blueprint.alt_response(
                status,
                schema=ProblemSchema,
                description=_PROBLEM_TEXT.get(status, ""),
                content_type=PROBLEM_JSON,
            )(view)
        return view

    return decorate


class PageSchema(Schema):
    """The envelope of every list answer; subclasses add `items`."""

    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()


class PageArgs(Schema):
    # OFFSET (page - 1) x per_page past 2^63 would be a server error on both databases.
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=200))


def paginate(db_session, query, page: int, per_page: int) -> dict:
    total = db_session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    items = list(db_session.scalars(query.limit(per_page).offset((page - 1) * per_page)))
    return {"items": items, "total": total, "page": page, "per_page": per_page}
