"""/api/v1/auth (sign-in tokens), /api-tokens (systems' tokens) and the organisation:
/users, /groups, /departments, /skills.

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
    department_subtree,
    login_required,
    roles_required,
    schema_for,
)
from app.auth.models import ApiToken, Department, Group, Skill, User, UserSkill
from app.auth.schemas import (
    USER_VIEWS,
    ApiTokenCreateSchema,
    ApiTokenIssuedSchema,
    ApiTokenListArgs,
    ApiTokenPageSchema,
    ApiTokenSchema,
    DepartmentCreateSchema,
    DepartmentListArgs,
    DepartmentPageSchema,
    DepartmentSchema,
    DepartmentTreeSchema,
    DepartmentUpdateSchema,
    GroupCreateSchema,
    GroupPageSchema,
    GroupSchema,
    GroupUpdateSchema,
    NameFilterArgs,
    PasswordChangeSchema,
    PasswordResetSchema,
    SkillCreateSchema,
    SkillPageSchema,
    SkillSchema,
    SkillUpdateSchema,
    TokenRequestSchema,
    TokenSchema,
    UserCreateSchema,
    UserListArgs,
    UserPageSchema,
    UserSchema,
    UserUpdateSchema,
)
from app.auth.tokens import (
    issue_personal_token,
    issue_system_token,
    revoke_personal_tokens,
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
USER_ID, USER_PARAM = _path_id("user_id", 5)
GROUP_ID, GROUP_PARAM = _path_id("group_id", 2)
DEPARTMENT_ID, DEPARTMENT_PARAM = _path_id("department_id", 4)
SKILL_ID, SKILL_PARAM = _path_id("skill_id", 1)

auth_blp = Blueprint(
    "auth", __name__, url_prefix="/api/v1/auth", description="登录令牌 / sign-in tokens"
)
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


# ---------------------------------------------------------------- users


def _user_answer(user: User, status: int = 200):
    """A user in the fields the caller may see: all of their own, else their role's view."""
    if user.id == current_user.id:
        schema = UserSchema()
    else:
        schema = schema_for(current_user, UserSchema, USER_VIEWS)
    return jsonify(schema.dump(user)), status


def _user_updates(args: dict) -> dict:
    updates = dict(args)
    if "skills" in updates:
        updates["skills"] = {entry["skill"]: entry["level"] for entry in updates["skills"]}
    return updates


@users_blp.route("", methods=["GET"])
@roles_required(*ORG_READERS)
@users_blp.arguments(UserListArgs, location="query")
@users_blp.response(200, UserPageSchema, example=_page(_USER_EXAMPLE))
@problems(users_blp, 400, 401, 403)
def list_users(args):
    """Accounts by username. Dispatchers see active people, and only username, display name,
    groups and skills; admins see every account in full."""
    query = select(User).where(service.visible_users(current_user)).order_by(User.username)
    if args.get("q"):
        query = query.where(
            or_(
                User.username.icontains(args["q"], autoescape=True),
                User.display_name.icontains(args["q"], autoescape=True),
            )
        )
    if args.get("role"):
        query = query.where(User.role == args["role"])
    if args.get("group"):
        query = query.where(User.groups.any(Group.code == args["group"]))
    if args.get("department"):
        top = db.session.scalar(select(Department.id).where(Department.code == args["department"]))
        query = query.where(User.department_id.in_(department_subtree(db.session, top)))
    if args.get("skill"):
        held = UserSkill.skill.has(Skill.code == args["skill"])
        if args.get("min_level"):
            held = and_(held, UserSkill.level >= args["min_level"])
        query = query.where(User.skills.any(held))
    if "active" in args:
        query = query.where(User.is_active_account.is_(args["active"]))
    if args.get("kind"):
        query = query.where(User.kind == args["kind"])
    page = paginate(db.session, query, args["page"], args["per_page"])
    schema = schema_for(current_user, UserSchema, USER_VIEWS)
    return jsonify({**page, "items": schema.dump(page["items"], many=True)})


@users_blp.route("", methods=["POST"])
@roles_required("admin")
@users_blp.arguments(
    UserCreateSchema,
    example={
        "username": "liqiang",
        "password": "initial-pass-1",
        "role": "handler",
        "display_name": "李强",
        "email": "liqiang@paidan.example",
        "department": "hq_it",
        "groups": ["network"],
        "skills": [{"skill": "network", "level": 5}],
    },
)
@users_blp.response(201, UserSchema, example=_USER_EXAMPLE)
@problems(users_blp, 400, 401, 403, 409)
def create(args):
    """Create a person's account with an initial password (at least 8 characters)."""
    updates = _user_updates(args)
    user = service.create_user(
        db_session=db.session,
        username=updates["username"],
        password=updates["password"],
        role=updates["role"],
        display_name=updates.get("display_name"),
        email=updates.get("email"),
        phone=updates.get("phone"),
        group_codes=updates.get("groups"),
        department_code=updates.get("department"),
        skills=updates.get("skills"),
    )
    db.session.commit()
    return user


@users_blp.route("/me", methods=["GET"])
@login_required
@users_blp.response(200, UserSchema, example=_USER_EXAMPLE)
@problems(users_blp, 401)
def me():
    """The caller's own account, in full."""
    return current_user


@users_blp.route("/me/password", methods=["PATCH"])
@login_required
@users_blp.arguments(
    PasswordChangeSchema,
    example={"old_password": "paidan123", "new_password": "a-longer-passphrase"},
)
@users_blp.response(204)
@problems(users_blp, 400, 401, 429)
def change_my_password(args):
    """Change one's own password, giving the old one. Wrong old passwords count as failed
    sign-ins: after several the account is locked for a while (429)."""
    service.change_own_password(
        db_session=db.session,
        user=current_user._get_current_object(),
        old_password=args["old_password"],
        new_password=args["new_password"],
        remote_addr=request.remote_addr,
    )
    db.session.commit()


@users_blp.route(f"/{USER_ID}", methods=["GET"], parameters=USER_PARAM)
@login_required
@users_blp.response(200, UserSchema, example=_USER_EXAMPLE)
@problems(users_blp, 401, 404)
def get_user(user_id: int):
    """One account, in the fields the caller's role may see (404 if it may not see it)."""
    return _user_answer(_fetch(User, user_id, "用户", "user", service.visible_users(current_user)))


@users_blp.route(f"/{USER_ID}", methods=["PATCH"], parameters=USER_PARAM)
@roles_required("admin")
@users_blp.arguments(
    UserUpdateSchema,
    example={
        "role": "dispatcher",
        "department": "shanghai",
        "groups": ["service_desk"],
        "skills": [{"skill": "network", "level": 4}, {"skill": "printer", "level": 2}],
    },
)
@users_blp.response(200, UserSchema, example={**_USER_EXAMPLE, "role": "dispatcher"})
@problems(users_blp, 400, 401, 403, 404, 409)
def update(args, user_id: int):
    """Change what is given: profile, role, department, groups (all of them), skills (all of
    them, with levels 1–5). Each change is audited with its before and after. Nobody changes
    their own role, and the last admin stays one."""
    user = _fetch(User, user_id, "用户", "user")
    service.update_user(
        db_session=db.session,
        user=user,
        acting_user=current_user._get_current_object(),
        **_user_updates(args),
    )
    db.session.commit()
    return user


@users_blp.route(f"/{USER_ID}/deactivate", methods=["POST"], parameters=USER_PARAM)
@roles_required("admin")
@users_blp.response(200, UserSchema, example={**_USER_EXAMPLE, "active": False})
@problems(users_blp, 401, 403, 404, 409)
def deactivate(user_id: int):
    """Deactivate an account (accounts are never deleted): it can no longer sign in, and its
    tokens stop working."""
    user = _fetch(User, user_id, "用户", "user")
    service.deactivate_user(
        db_session=db.session, user=user, acting_user=current_user._get_current_object()
    )
    db.session.commit()
    return user


@users_blp.route(f"/{USER_ID}/activate", methods=["POST"], parameters=USER_PARAM)
@roles_required("admin")
@users_blp.response(200, UserSchema, example=_USER_EXAMPLE)
@problems(users_blp, 401, 403, 404)
def activate(user_id: int):
    """Let a deactivated account sign in again."""
    user = _fetch(User, user_id, "用户", "user")
    service.activate_user(db_session=db.session, user=user)
    db.session.commit()
    return user


@users_blp.route(f"/{USER_ID}/password", methods=["PATCH"], parameters=USER_PARAM)
@roles_required("admin")
@users_blp.arguments(PasswordResetSchema, example={"password": "temporary-pass-1"})
@users_blp.response(204)
@problems(users_blp, 400, 401, 403, 404, 409)
def reset_password(args, user_id: int):
    """Set a new password for someone who forgot theirs; their personal tokens are revoked,
    so every device signs in again."""
    user = _fetch(User, user_id, "用户", "user")
    service.set_password(
        db_session=db.session,
        user=user,
        password=args["password"],
        acting_user=current_user._get_current_object(),
    )
    revoke_personal_tokens(db_session=db.session, user=user)
    db.session.commit()


# ---------------------------------------------------------------- groups


@groups_blp.route("", methods=["GET"])
@roles_required(*ORG_READERS)
@groups_blp.arguments(NameFilterArgs, location="query")
@groups_blp.response(200, GroupPageSchema, example=_page(_GROUP_EXAMPLE))
@problems(groups_blp, 400, 401, 403)
def list_groups(args):
    """Groups by code, with their lead and members."""
    query = select(Group).order_by(Group.code)
    if args.get("q"):
        query = query.where(
            or_(
                Group.code.icontains(args["q"], autoescape=True),
                Group.name.icontains(args["q"], autoescape=True),
            )
        )
    return paginate(db.session, query, args["page"], args["per_page"])


@groups_blp.route("", methods=["POST"])
@roles_required("admin")
@groups_blp.arguments(
    GroupCreateSchema,
    example={
        "code": "network",
        "name": "网络组",
        "description": "网络、VPN、交换机与无线",
        "lead": "liqiang",
    },
)
@groups_blp.response(201, GroupSchema, example=_GROUP_EXAMPLE)
@problems(groups_blp, 400, 401, 403, 409)
def create_group(args):
    """Create a group. Its code is fixed: process diagrams name candidate groups by it.
    Members join through their user record (`groups`)."""
    group = service.create_group(
        db_session=db.session,
        code=args["code"],
        name=args["name"],
        description=args.get("description"),
        lead=args.get("lead"),
    )
    db.session.commit()
    return group


@groups_blp.route(f"/{GROUP_ID}", methods=["GET"], parameters=GROUP_PARAM)
@login_required
@groups_blp.response(200, GroupSchema, example=_GROUP_EXAMPLE)
@problems(groups_blp, 401, 404)
def get_group(group_id: int):
    """One group with its lead and members."""
    return _org_record(Group, group_id, "组", "group")


@groups_blp.route(f"/{GROUP_ID}", methods=["PATCH"], parameters=GROUP_PARAM)
@roles_required("admin")
@groups_blp.arguments(GroupUpdateSchema, example={"name": "网络与安全组", "lead": "sunhao"})
@groups_blp.response(200, GroupSchema, example=_GROUP_EXAMPLE)
@problems(groups_blp, 400, 401, 403, 404)
def update_group(args, group_id: int):
    """Change a group's name, description or lead (a username; null for none)."""
    group = _fetch(Group, group_id, "组", "group")
    service.update_group(db_session=db.session, group=group, **args)
    db.session.commit()
    return group


# ---------------------------------------------------------------- departments


@departments_blp.route("", methods=["GET"])
@roles_required(*ORG_READERS)
@departments_blp.arguments(DepartmentListArgs, location="query")
@departments_blp.response(200, DepartmentPageSchema, example=_page(_DEPARTMENT_EXAMPLE))
@problems(departments_blp, 400, 401, 403)
def list_departments(args):
    """Departments by code, each with its parent; the whole tree is at /departments/tree."""
    query = select(Department).order_by(Department.code)
    if args.get("q"):
        query = query.where(
            or_(
                Department.code.icontains(args["q"], autoescape=True),
                Department.name.icontains(args["q"], autoescape=True),
            )
        )
    if args.get("parent"):
        parent = select(Department.id).where(Department.code == args["parent"])
        query = query.where(Department.parent_id.in_(parent.scalar_subquery()))
    return paginate(db.session, query, args["page"], args["per_page"])


@departments_blp.route("/tree", methods=["GET"])
@roles_required(*ORG_READERS)
@departments_blp.response(
    200,
    DepartmentTreeSchema(many=True),
    example=[
        {
            "id": 1,
            "code": "hq",
            "name": "总部",
            "children": [
                {"id": 4, "code": "hq_it", "name": "IT 部", "children": []},
                {"id": 5, "code": "shanghai", "name": "上海分公司", "children": []},
            ],
        }
    ],
)
@problems(departments_blp, 401, 403)
def tree():
    """The department tree: top departments with their sub-departments nested."""
    return service.department_tree(db_session=db.session)


@departments_blp.route("", methods=["POST"])
@roles_required("admin")
@departments_blp.arguments(
    DepartmentCreateSchema, example={"code": "hq_it", "name": "IT 部", "parent": "hq"}
)
@departments_blp.response(201, DepartmentSchema, example=_DEPARTMENT_EXAMPLE)
@problems(departments_blp, 400, 401, 403, 409)
def create_department(args):
    """Create a department under `parent` (a code), or at the top."""
    department = service.create_department(
        db_session=db.session, code=args["code"], name=args["name"], parent=args.get("parent")
    )
    db.session.commit()
    return department


@departments_blp.route(f"/{DEPARTMENT_ID}", methods=["GET"], parameters=DEPARTMENT_PARAM)
@login_required
@departments_blp.response(200, DepartmentSchema, example=_DEPARTMENT_EXAMPLE)
@problems(departments_blp, 401, 404)
def get_department(department_id: int):
    """One department with its parent."""
    return _org_record(Department, department_id, "部门", "department")


@departments_blp.route(f"/{DEPARTMENT_ID}", methods=["PATCH"], parameters=DEPARTMENT_PARAM)
@roles_required("admin")
@departments_blp.arguments(DepartmentUpdateSchema, example={"name": "信息技术部", "parent": "hq"})
@departments_blp.response(200, DepartmentSchema, example=_DEPARTMENT_EXAMPLE)
@problems(departments_blp, 400, 401, 403, 404)
def update_department(args, department_id: int):
    """Rename a department or move it (with its sub-departments) under another parent."""
    department = _fetch(Department, department_id, "部门", "department")
    service.update_department(db_session=db.session, department=department, **args)
    db.session.commit()
    return department


# ---------------------------------------------------------------- skills


@skills_blp.route("", methods=["GET"])
@roles_required(*ORG_READERS)
@skills_blp.arguments(NameFilterArgs, location="query")
@skills_blp.response(200, SkillPageSchema, example=_page(_SKILL_EXAMPLE))
@problems(skills_blp, 400, 401, 403)
def list_skills(args):
    """Skill tags by code."""
    query = select(Skill).order_by(Skill.code)
    if args.get("q"):
        query = query.where(
            or_(
                Skill.code.icontains(args["q"], autoescape=True),
                Skill.name.icontains(args["q"], autoescape=True),
            )
        )
    return paginate(db.session, query, args["page"], args["per_page"])


@skills_blp.route("", methods=["POST"])
@roles_required("admin")
@skills_blp.arguments(SkillCreateSchema, example={"code": "network", "name": "网络"})
@skills_blp.response(201, SkillSchema, example=_SKILL_EXAMPLE)
@problems(skills_blp, 400, 401, 403, 409)
def create_skill(args):
    """Create a skill tag; people hold it at a level through their user record (`skills`)."""
    skill = service.create_skill(db_session=db.session, code=args["code"], name=args["name"])
    db.session.commit()
    return skill


@skills_blp.route(f"/{SKILL_ID}", methods=["GET"], parameters=SKILL_PARAM)
@login_required
@skills_blp.response(200, SkillSchema, example=_SKILL_EXAMPLE)
@problems(skills_blp, 401, 404)
def get_skill(skill_id: int):
    """One skill tag."""
    return _org_record(Skill, skill_id, "技能", "skill")


@skills_blp.route(f"/{SKILL_ID}", methods=["PATCH"], parameters=SKILL_PARAM)
@roles_required("admin")
@skills_blp.arguments(SkillUpdateSchema, example={"name": "网络与 VPN"})
@skills_blp.response(200, SkillSchema, example=_SKILL_EXAMPLE)
@problems(skills_blp, 400, 401, 403, 404)
def update_skill(args, skill_id: int):
    """Rename a skill tag (its code stays)."""
    skill = _fetch(Skill, skill_id, "技能", "skill")
    service.update_skill(db_session=db.session, skill=skill, name=args["name"])
    db.session.commit()
    return skill
