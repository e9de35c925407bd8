"""The organisation's groups, departments and skill tags: create, change, find (audited)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.service import record, record_changes
from app.auth.models import Department, Group, Skill, User
from app.auth.service import CODE, find_user, named_department
from app.errors import Conflict, InvalidInput

# ---------------------------------------------------------------- groups


def create_group(
    *,
    db_session: Session,
    code: str,
    name: str,
    description: str | None = None,
    lead: str | None = None,
) -> Group:
    _check_code(code, "组", "group")
    if db_session.execute(select(Group).where(Group.code == code)).scalar_one_or_none():
        raise Conflict(f"组 {code} 已存在", f"group {code} already exists")
    group = Group(code=code, name=_name(name, "组", "group"), description=description or None)
    if lead is not None:
        group.lead = _lead(db_session, lead)
    db_session.add(group)
    db_session.flush()
    record(
        db_session=db_session,
        action="group.create",
        object_type="group",
        object_id=code,
        after=_group_snapshot(group),
    )
    return group


def update_group(*, db_session: Session, group: Group, **updates: object) -> Group:
    """Change a group's name, description or lead (a username, or None). Its code stays: process
    diagrams name candidate groups by code."""
    before = _group_snapshot(group)
    if "name" in updates:
        group.name = _name(updates["name"], "组", "group")
    if "description" in updates:
        group.description = str(updates["description"] or "") or None
    if "lead" in updates:
        group.lead = None if updates["lead"] is None else _lead(db_session, str(updates["lead"]))
    db_session.flush()
    record_changes(
        db_session=db_session,
        action="group.update",
        object_type="group",
        object_id=group.code,
        before=before,
        after=_group_snapshot(group),
    )
    return group


def group_lead(*, db_session: Session, code: str) -> str | None:
    """Username of the lead of group ``code``; None when the group has none."""
    return db_session.execute(
        select(User.username).join(Group, Group.lead_id == User.id).where(Group.code == code)
    ).scalar_one_or_none()


def _group_snapshot(group: Group) -> dict:
    return {
        "code": group.code,
        "name": group.name,
        "description": group.description,
        "lead": group.lead.username if group.lead else None,
    }


def _lead(db_session: Session, username: str) -> User:
    user = find_user(db_session=db_session, username=username)
    if user is None or user.kind != "person":
        raise InvalidInput(
            f"组长 {username} 不存在：请填写已有用户的用户名",
            f"lead {username} does not exist; give the username of an existing person",
        )
    return user


# ---------------------------------------------------------------- departments


def create_department(
    *, db_session: Session, code: str, name: str, parent: str | None = None
) -> Department:
    """A department, under ``parent`` (a code) or at the top of the tree."""
    _check_code(code, "部门", "department")
    if db_session.scalar(select(Department.id).where(Department.code == code)) is not None:
        raise Conflict(f"部门 {code} 已存在", f"department {code} already exists")
    department = Department(
        code=code,
        name=_name(name, "部门", "department"),
        parent=named_department(db_session=db_session, code=parent),
    )
    db_session.add(department)
    db_session.flush()
    record(
        db_session=db_session,
        action="department.create",
        object_type="department",
        object_id=code,
        after=_department_snapshot(department),
    )
    return department


def update_department(
    *, db_session: Session, department: Department, **updates: object
) -> Department:
    """Rename a department or move it under another ``parent`` (a code, or None for the top)."""
    before = _department_snapshot(department)
    if "name" in updates:
        department.name = _name(updates["name"], "部门", "department")
    if "parent" in updates:
        parent = named_department(db_session=db_session, code=updates["parent"])
        ancestor = parent
        while ancestor is not None:
            if ancestor.id == department.id:
                raise InvalidInput(
                    f"部门 {department.code} 不能移到 {parent.code} 之下：那是它自己或它的下级部门",
                    f"department {department.code} cannot move under {parent.code}, "
                    "which is itself or one of its own sub-departments",
                )
            ancestor = ancestor.parent
        department.parent = parent
    db_session.flush()
    record_changes(
        db_session=db_session,
        action="department.update",
        object_type="department",
        object_id=department.code,
        before=before,
        after=_department_snapshot(department),
    )
    return department


def department_tree(*, db_session: Session) -> list[dict]:
    """Every department as nested dicts (id, code, name, children), roots first, by code."""
    departments = db_session.scalars(select(Department).order_by(Department.code)).all()
    nodes = {
        d.id: {"id": d.id, "code": d.code, "name": d.name, "children": []} for d in departments
    }
    roots = []
    for department in departments:
        node = nodes[department.id]
        if department.parent_id is None:
            roots.append(node)
        else:
            nodes[department.parent_id]["children"].append(node)
    return roots


def _department_snapshot(department: Department) -> dict:
    return {
        "code": department.code,
        "name": department.name,
        "parent": department.parent.code if department.parent else None,
    }


# ---------------------------------------------------------------- skills


def create_skill(*, db_session: Session, code: str, name: str) -> Skill:
    _check_code(code, "技能", "skill")
    if db_session.scalar(select(Skill.id).where(Skill.code == code)) is not None:
        raise Conflict(f"技能 {code} 已存在", f"skill {code} already exists")
    skill = Skill(code=code, name=_name(name, "技能", "skill"))
    db_session.add(skill)
    db_session.flush()
    record(
        db_session=db_session,
        action="skill.create",
        object_type="skill",
        object_id=code,
        after={"code": code, "name": skill.name},
    )
    return skill


def update_skill(*, db_session: Session, skill: Skill, name: str) -> Skill:
    before = {"name": skill.name}
    skill.name = _name(name, "技能", "skill")
    record_changes(
        db_session=db_session,
        action="skill.update",
        object_type="skill",
        object_id=skill.code,
        before=before,
        after={"name": skill.name},
    )
    return skill


# ---------------------------------------------------------------- shared checks


def _check_code(code: str, zh_kind: str, en_kind: str) -> None:
    if not CODE.fullmatch(code or ""):
        raise InvalidInput(
            f"{zh_kind}代码 {code} 无效：以字母或数字开头，只含字母、数字和 _ . -，最多 50 个字符",
            f"{en_kind} code {code} is not valid: start with a letter or digit, then letters, "
            "digits, _ . - (50 at most)",
        )


def _name(name: object, zh_kind: str, en_kind: str) -> str:
    text = str(name or "").strip()
    if not text:
        raise InvalidInput(f"{zh_kind}名称不能为空", f"the {en_kind} name must not be empty")
    return text
