"""/api/v1/auth/token: a password sign-in that returns a bearer token."""

from __future__ import annotations

from flask import request

from app.api import Blueprint
from app.auth.access import NotSignedIn
from app.auth.schemas import TokenRequestSchema, TokenSchema
from app.auth.service import authenticate
from app.auth.tokens import issue_personal_token
from app.extensions import db

auth_blp = Blueprint(
    "auth", __name__, url_prefix="/api/v1/auth", description="登录令牌 / sign-in tokens"
)


@auth_blp.route("/token", methods=["POST"])
@auth_blp.arguments(TokenRequestSchema)
@auth_blp.response(201, TokenSchema)
def create_token(args):
    """Exchange a username and password for a personal bearer token (expires)."""
    user = authenticate(
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


# The organisation and the tokens of other systems; filled in by their endpoints below.
tokens_blp = Blueprint(
    "api_tokens",
    __name__,
    url_prefix="/api/v1/api-tokens",
    description="系统令牌 / API tokens for other systems",
)
users_blp = Blueprint("users", __name__, url_prefix="/api/v1/users", description="用户 / users")
groups_blp = Blueprint("groups", __name__, url_prefix="/api/v1/groups", description="组 / groups")
departments_blp = Blueprint(
    "departments", __name__, url_prefix="/api/v1/departments", description="部门 / departments"
)
skills_blp = Blueprint(
    "skills", __name__, url_prefix="/api/v1/skills", description="技能标签 / skill tags"
)
