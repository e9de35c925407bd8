"""/api/v1/auth (sign-in tokens) and /api-tokens (systems' tokens), and the helpers the
organisation's resources (app/auth/org_api.py) share with them.

Who may do what: admins manage everything. Dispatchers assign work, so they may read the
people (without personal data), groups, departments and skills. Every signed-in account reads
and changes its own profile at /users/me. Other roles get 403 on the organisation's lists and
404 for a single record they may not see, so ids cannot be probed.
"""

from __future__ import annotations

from flask import g, jsonify, request
from flask_login import current_user
from sqlalchemy import and_, or_, select

from app.api import Blueprint, paginate, problems
from app.auth import service
from app.auth.access import (
    NotSignedIn,
    login_required,
    roles_required,
)
from app.auth.models import ApiToken, User
from app.auth.schemas import (
    ApiTokenCreateSchema,
    ApiTokenIssuedSchema,
    ApiTokenListArgs,
    ApiTokenPageSchema,
    ApiTokenSchema,
    TokenRequestSchema,
    TokenSchema,
)
from app.auth.tokens import (
    issue_personal_token,
    issue_system_token,
    revoke_token,
    token_id_for,
)
from app.errors import Conflict, NotFound
from app.extensions import db
from app.timeutil import utcnow

# Roles that may read the organisation: dispatchers assign work to its people and groups.
ORG_READERS = ("admin", "dispatcher")
# Ids are 32-bit columns: a larger one names nothing and must not reach the database driver.
# (A bounded route converter would do, but Werkzeug then answers DELETE and PATCH with 405.)
MAX_ID = 2**31 - 1


def _path_id(name: str, example: int) -> tuple[str, list[dict]]:
    """A path id and its documentation with an example (flask-smorest merges the two)."""
    return f"<int:{name}>", [{"in": "path", "name": name, "example": example}]


TOKEN_ID, TOKEN_PARAM = _path_id("token_id", 7)

auth_blp = Blueprint(
    "auth", __name__, url_prefix="/api/v1/auth", description="登录令牌 / sign-in tokens"
)
tokens_blp = Blueprint(
    "api_tokens",
    __name__,
    url_prefix="/api/v1/api-tokens",
    description="系统令牌 / API tokens for other systems",
)


def _fetch(model, object_id: int, zh: str, en: str, *conditions):
    """One row by id, if the caller may see it; otherwise 404 naming it."""
    found = None
    if object_id <= MAX_ID:
        found = db.session.scalar(select(model).where(model.id == object_id, *conditions))
    if found is None:
        raise NotFound(f"{zh} {object_id} 不存在", f"{en} {object_id} not found")
    return found


def _org_record(model, object_id: int, zh: str, en: str):
    """A group, department or skill: readable by ORG_READERS; to anyone else it does not exist."""
    if current_user.role not in ORG_READERS:
        raise NotFound(f"{zh} {object_id} 不存在", f"{en} {object_id} not found")
    return _fetch(model, object_id, zh, en)


def _request_token_id() -> int | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    return token_id_for(db_session=db.session, token=header[7:].strip())


def _revoke(row: ApiToken) -> ApiToken:
    if row.id == _request_token_id():
        raise Conflict(
            f"令牌 {row.id}（{row.prefix}…）正用于本次请求，不能用它撤销自己：请用另一个令牌撤销",
            f"token {row.id} ({row.prefix}…) authenticates this very request and cannot revoke "
            "itself; revoke it with another token",
        )
    revoke_token(db_session=db.session, token_id=row.id)
    db.session.commit()
    return row


def _tokens_query(args: dict, *conditions):
    query = select(ApiToken).join(User, ApiToken.user_id == User.id).where(*conditions)
    if args.get("kind"):
        query = query.where(ApiToken.kind == args["kind"])
    if args.get("username"):
        query = query.where(User.username == args["username"])
    if "active" in args:
        valid = and_(
            ApiToken.revoked_at.is_(None),
            or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > utcnow()),
        )
        query = query.where(valid if args["active"] else ~valid)
    return query.order_by(ApiToken.id.desc())


# ---------------------------------------------------------------- examples

_TOKEN_EXAMPLE = {
    "id": 7,
    "name": "crm",
    "prefix": "pd_Xq3v9Lk",
    "kind": "system",
    "username": "system:crm",
    "role": "requester",
    "created_by": "admin",
    "created_at": "2026-11-26T02:00:00+00:00",
    "expires_at": None,
    "last_used_at": "2026-11-26T03:10:00+00:00",
    "revoked_at": None,
}
_USER_EXAMPLE = {
    "id": 5,
    "username": "liqiang",
    "display_name": "李强",
    "email": "liqiang@paidan.example",
    "phone": "13800000005",
    "role": "handler",
    "kind": "person",
    "active": True,
    "department": {"id": 4, "code": "hq_it", "name": "IT 部"},
    "groups": [{"id": 2, "code": "network", "name": "网络组"}],
    "skills": [
        {"skill": "network", "name": "网络", "level": 5},
        {"skill": "server", "name": "服务器", "level": 3},
    ],
    "created_at": "2026-11-26T02:00:00+00:00",
}
_GROUP_EXAMPLE = {
    "id": 2,
    "code": "network",
    "name": "网络组",
    "description": "网络、VPN、交换机与无线",
    "lead": {"id": 5, "username": "liqiang", "display_name": "李强", "active": True},
    "members": [
        {"id": 5, "username": "liqiang", "display_name": "李强", "active": True},
        {"id": 6, "username": "sunhao", "display_name": "孙浩", "active": True},
    ],
}
_DEPARTMENT_EXAMPLE = {
    "id": 4,
    "code": "hq_it",
    "name": "IT 部",
    "parent_id": 1,
    "parent": "hq",
}
_SKILL_EXAMPLE = {"id": 1, "code": "network", "name": "网络"}


def _page(item: dict) -> dict:
    return {"items": [item], "total": 1, "page": 1, "per_page": 20}


# ---------------------------------------------------------------- sign-in


@auth_blp.route("/token", methods=["POST"])
@auth_blp.arguments(TokenRequestSchema, example={"username": "zhangwei", "password": "paidan123"})
@auth_blp.response(
    201,
    TokenSchema,
    example={
        "token": "pd_Xq3v9LkR2…",
        "token_type": "Bearer",
        "expires_at": "2026-11-26T14:00:00+00:00",
        "username": "zhangwei",
        "role": "dispatcher",
    },
)
@problems(auth_blp, 400, 401, 429)
def create_token(args):
    """Exchange a username and password for a personal bearer token (expires).

    After repeated failures the username is locked for a while (429 with Retry-After), even
    for the right password."""
    g.auth_source = "api"  # nobody is signed in yet: the audit rows still come from the API
    user = service.authenticate(
        db_session=db.session,
        username=args["username"],
        password=args["password"],
        remote_addr=request.remote_addr,
    )
    if user is None:
        raise NotSignedIn("用户名或密码不正确", "wrong username or password")
    row, token = issue_personal_token(db_session=db.session, user=user)
    db.session.commit()
    return {
        "token": token,
        "token_type": "Bearer",
        "expires_at": row.expires_at,
        "username": user.username,
        "role": user.role,
    }


@auth_blp.route("/tokens", methods=["GET"])
@login_required
@auth_blp.arguments(ApiTokenListArgs, location="query")
@auth_blp.response(200, ApiTokenPageSchema, example=_page({**_TOKEN_EXAMPLE, "kind": "personal"}))
@problems(auth_blp, 400, 401)
def list_own_tokens(args):
    """The caller's own tokens (never the tokens themselves), newest first."""
    return paginate(
        db.session,
        _tokens_query(args, ApiToken.user_id == current_user.id),
        args["page"],
        args["per_page"],
    )


@auth_blp.route(f"/tokens/{TOKEN_ID}", methods=["DELETE"], parameters=TOKEN_PARAM)
@login_required
@auth_blp.response(200, ApiTokenSchema, example={**_TOKEN_EXAMPLE, "kind": "personal"})
@problems(auth_blp, 401, 404, 409)
def revoke_own_token(token_id: int):
    """Revoke one of the caller's personal tokens (a lost phone). Not the one in use."""
    row = _fetch(
        ApiToken,
        token_id,
        "令牌",
        "token",
        ApiToken.user_id == current_user.id,
        ApiToken.kind == "personal",
    )
    return _revoke(row)


# ---------------------------------------------------------------- systems' tokens


@tokens_blp.route("", methods=["POST"])
@roles_required("admin")
@tokens_blp.arguments(
    ApiTokenCreateSchema,
    example={"name": "crm", "role": "requester", "groups": [], "department": "hq"},
)
@tokens_blp.response(
    201, ApiTokenIssuedSchema, example={**_TOKEN_EXAMPLE, "token": "pd_Xq3v9LkR2…"}
)
@problems(tokens_blp, 400, 401, 403, 409)
def issue_token(args):
    """Issue a token for another system. It is shown in this answer only; store it now.

    The system acts as its own account `system:<name>` with the role, groups and department
    given here, so it sees and may do what a person with them would."""
    row, token = issue_system_token(
        db_session=db.session,
        name=args["name"],
        role=args["role"],
        group_codes=args["groups"],
        department_code=args["department"],
        issued_by=current_user.username,
    )
    db.session.commit()
    return jsonify({**ApiTokenSchema().dump(row), "token": token}), 201


@tokens_blp.route("", methods=["GET"])
@roles_required("admin")
@tokens_blp.arguments(ApiTokenListArgs, location="query")
@tokens_blp.response(200, ApiTokenPageSchema, example=_page(_TOKEN_EXAMPLE))
@problems(tokens_blp, 400, 401, 403)
def list_tokens(args):
    """Every token, personal and system, newest first; never the token itself."""
    return paginate(db.session, _tokens_query(args), args["page"], args["per_page"])


@tokens_blp.route(f"/{TOKEN_ID}", methods=["GET"], parameters=TOKEN_PARAM)
@roles_required("admin")
@tokens_blp.response(200, ApiTokenSchema, example=_TOKEN_EXAMPLE)
@problems(tokens_blp, 401, 403, 404)
def get_token(token_id: int):
    """One token's record."""
    return _fetch(ApiToken, token_id, "令牌", "token")


@tokens_blp.route(f"/{TOKEN_ID}", methods=["DELETE"], parameters=TOKEN_PARAM)
@roles_required("admin")
@tokens_blp.response(
    200, ApiTokenSchema, example={**_TOKEN_EXAMPLE, "revoked_at": "2026-11-27T08:00:00+00:00"}
)
@problems(tokens_blp, 401, 403, 404, 409)
def revoke(token_id: int):
    """Revoke a token: it stops working at once (401). A system's account is deactivated with
    it. The record stays, for the audit trail. Revoking twice changes nothing."""
    return _revoke(_fetch(ApiToken, token_id, "令牌", "token"))
