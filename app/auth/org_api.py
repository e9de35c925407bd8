"""/api/v1/users, /groups, /departments, /skills: the organisation.

Who may do what: admins manage everything. Dispatchers assign work, so they may read the
people (without personal data), groups, departments and skills. Every signed-in account reads
and changes its own profile at /users/me. Other roles get 403 on the organisation's lists and
404 for a single record they may not see, so ids cannot be probed.
"""

from __future__ import annotations

from flask import jsonify, request
from flask_login import current_user
from sqlalchemy import and_, or_, select

from app.api import Blueprint, paginate, problems
from app.auth import org_service, service
from app.auth.access import (
    department_subtree,
    login_required,
    roles_required,
    schema_for,
)

# Roles that may read the organisation: dispatchers assign work to its people and groups.
from app.auth.api import (
    _DEPARTMENT_EXAMPLE,
    _GROUP_EXAMPLE,
    _SKILL_EXAMPLE,
    _USER_EXAMPLE,
    ORG_READERS,
    _fetch,
    _org_record,
    _page,
    _path_id,
)
from app.auth.models import Department, Group, Skill, User, UserSkill
from app.auth.schemas import (
    USER_VIEWS,
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
    UserCreateSchema,
    UserListArgs,
    UserPageSchema,
    UserSchema,
    UserUpdateSchema,
)
from app.auth.tokens import (
    revoke_personal_tokens,
)
from app.extensions import db

USER_ID, USER_PARAM = _path_id("user_id", 5)
GROUP_ID, GROUP_PARAM = _path_id("group_id", 2)
DEPARTMENT_ID, DEPARTMENT_PARAM = _path_id("department_id", 4)
SKILL_ID, SKILL_PARAM = _path_id("skill_id", 1)

users_blp = Blueprint("users", __name__, url_prefix="/api/v1/users", description="用户 / users")
groups_blp = Blueprint("groups", __name__, url_prefix="/api/v1/groups", description="组 / groups")
departments_blp = Blueprint(
    "departments", __name__, url_prefix="/api/v1/departments", description="部门 / departments"
)
skills_blp = Blueprint(
    "skills", __name__, url_prefix="/api/v1/skills", description="技能标签 / skill tags"
)


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
    group = org_service.create_group(
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
    org_service.update_group(db_session=db.session, group=group, **args)
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
    return org_service.department_tree(db_session=db.session)


@departments_blp.route("", methods=["POST"])
@roles_required("admin")
@departments_blp.arguments(
    DepartmentCreateSchema, example={"code": "hq_it", "name": "IT 部", "parent": "hq"}
)
@departments_blp.response(201, DepartmentSchema, example=_DEPARTMENT_EXAMPLE)
@problems(departments_blp, 400, 401, 403, 409)
def create_department(args):
    """Create a department under `parent` (a code), or at the top."""
    department = org_service.create_department(
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
    org_service.update_department(db_session=db.session, department=department, **args)
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
    skill = org_service.create_skill(db_session=db.session, code=args["code"], name=args["name"])
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
    org_service.update_skill(db_session=db.session, skill=skill, name=args["name"])
    db.session.commit()
    return skill
