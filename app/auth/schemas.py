"""Schemas of sign-in, tokens and the organisation (users, groups, departments, skills), and
the views that pick which fields of a user each role is answered with."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate

from app.api import PageArgs, PageSchema
from app.auth.models import ROLES
from app.auth.service import CODE, LEVELS, MIN_PASSWORD, USERNAME
from app.auth.tokens import NAME


def encodable(value: str) -> None:
    """Valid UTF-8 only: JSON may carry lone surrogates (\\ud800), which no database stores
    and no password hash encodes."""
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValidationError("not valid Unicode text / 不是有效的 Unicode 文本") from None


def printable(value: str) -> None:
    """No control characters: they mean nothing in a name, and PostgreSQL refuses NUL."""
    encodable(value)
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValidationError("control characters are not allowed / 不允许控制字符")


def text_block(value: str) -> None:
    """Like printable, but line breaks and tabs are allowed (descriptions)."""
    printable(value.replace("\n", " ").replace("\r", " ").replace("\t", " "))


def _name(max_length: int = 100, **kwargs) -> fields.String:
    return fields.String(validate=[validate.Length(min=1, max=max_length), printable], **kwargs)


def _code(**kwargs) -> fields.String:
    return fields.String(validate=validate.Regexp(f"^{CODE.pattern}$"), **kwargs)


ROLE = validate.OneOf(list(ROLES))


# ---------------------------------------------------------------- sign-in and tokens


class TokenRequestSchema(Schema):
    username = fields.String(required=True, validate=[validate.Length(min=1, max=64), printable])
    password = fields.String(
        required=True, validate=[validate.Length(min=1, max=200), encodable], load_only=True
    )


class TokenSchema(Schema):
    token = fields.String(metadata={"description": "shown once; send as `Authorization: Bearer …`"})
    token_type = fields.String(dump_default="Bearer")
    expires_at = fields.DateTime(allow_none=True)
    username = fields.String()
    role = fields.String()


class ApiTokenCreateSchema(Schema):
    name = fields.String(
        required=True,
        validate=validate.Regexp(f"^{NAME.pattern}$"),
        metadata={"description": "the system's name; it acts as the account `system:<name>`"},
    )
    role = fields.String(required=True, validate=ROLE)
    groups = fields.List(_code(), load_default=list, validate=validate.Length(max=50))
    department = _code(load_default=None, allow_none=True)


class ApiTokenSchema(Schema):
    """A stored token: never the token itself, only its first characters."""

    id = fields.Integer()
    name = fields.String()
    prefix = fields.String(
        metadata={"description": "the token's first characters, to recognise it"}
    )
    kind = fields.String(metadata={"description": "personal (a sign-in) or system (admin-issued)"})
    username = fields.String(attribute="user.username")
    role = fields.String(attribute="user.role")
    created_by = fields.String(allow_none=True)
    created_at = fields.DateTime()
    expires_at = fields.DateTime(allow_none=True)
    last_used_at = fields.DateTime(
        allow_none=True, metadata={"description": "to within ten minutes"}
    )
    revoked_at = fields.DateTime(allow_none=True)


class ApiTokenIssuedSchema(ApiTokenSchema):
    token = fields.String(
        metadata={"description": "shown this once only; send as `Authorization: Bearer …`"}
    )


class ApiTokenListArgs(PageArgs):
    kind = fields.String(validate=validate.OneOf(["personal", "system"]))
    active = fields.Boolean(metadata={"description": "true: neither revoked nor expired"})
    username = fields.String(validate=[validate.Length(min=1, max=100), printable])


class ApiTokenPageSchema(PageSchema):
    items = fields.List(fields.Nested(ApiTokenSchema))


# ---------------------------------------------------------------- users


class GroupRefSchema(Schema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()


class DepartmentRefSchema(Schema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()


class UserRefSchema(Schema):
    id = fields.Integer()
    username = fields.String()
    display_name = fields.String()
    active = fields.Boolean(attribute="is_active_account")


class SkillLevelSchema(Schema):
    """A skill a user holds, by code, at a level from 1 (novice) to 5 (expert)."""

    skill = _code(required=True)
    level = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=LEVELS.start, max=LEVELS.stop - 1)
    )


class HeldSkillSchema(Schema):
    skill = fields.String(attribute="skill.code")
    name = fields.String(attribute="skill.name")
    level = fields.Integer()


class UserSchema(Schema):
    id = fields.Integer()
    username = fields.String()
    display_name = fields.String()
    email = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    role = fields.String()
    kind = fields.String(
        metadata={"description": "person, or system (the account of an API token)"}
    )
    active = fields.Boolean(attribute="is_active_account")
    department = fields.Nested(DepartmentRefSchema, allow_none=True)
    groups = fields.List(fields.Nested(GroupRefSchema))
    skills = fields.List(fields.Nested(HeldSkillSchema))
    created_at = fields.DateTime()


# Field visibility per role (app.auth.access.schema_for). Someone looking at their own account
# sees all of it; dispatchers assign work and see who can do it, nothing personal; any other
# role that reaches a user not itself gets the least.
USER_VIEWS: dict[str, dict] = {
    "admin": {},
    "dispatcher": {"only": ("id", "username", "display_name", "groups", "skills")},
    "*": {"only": ("id", "username", "display_name")},
}


class UserPageSchema(PageSchema):
    items = fields.List(fields.Nested(UserSchema))


def _skills_unique(entries: list[dict]) -> None:
    codes = [entry["skill"] for entry in entries]
    repeated = sorted({code for code in codes if codes.count(code) > 1})
    if repeated:
        raise ValidationError(f"skills repeated / 技能重复: {', '.join(repeated)}")


class UserUpdateSchema(Schema):
    display_name = _name()
    email = fields.Email(allow_none=True, validate=[validate.Length(max=200), printable])
    phone = fields.String(allow_none=True, validate=[validate.Length(max=40), printable])
    role = fields.String(validate=ROLE)
    department = _code(allow_none=True, metadata={"description": "department code; null for none"})
    groups = fields.List(
        _code(), validate=validate.Length(max=50), metadata={"description": "group codes (all)"}
    )
    skills = fields.List(
        fields.Nested(SkillLevelSchema),
        validate=[validate.Length(max=50), _skills_unique],
        metadata={"description": "every skill the user holds, with its level"},
    )


class UserCreateSchema(UserUpdateSchema):
    username = fields.String(required=True, validate=validate.Regexp(f"^{USERNAME.pattern}$"))
    password = fields.String(
        required=True,
        load_only=True,
        validate=[validate.Length(min=MIN_PASSWORD, max=200), encodable],
        metadata={"description": f"initial password, at least {MIN_PASSWORD} characters"},
    )
    role = fields.String(required=True, validate=ROLE)


class UserListArgs(PageArgs):
    q = fields.String(
        validate=[validate.Length(min=1, max=100), printable],
        metadata={"description": "part of the username or display name", "example": "张"},
    )
    role = fields.String(validate=ROLE, metadata={"example": "handler"})
    group = _code(metadata={"description": "group code", "example": "network"})
    department = _code(
        metadata={"description": "department code, with its sub-departments", "example": "hq"}
    )
    skill = _code(metadata={"description": "skill code", "example": "network"})
    min_level = fields.Integer(
        validate=validate.Range(min=LEVELS.start, max=LEVELS.stop - 1),
        metadata={"description": "with `skill`: at least this level", "example": 3},
    )
    active = fields.Boolean(metadata={"description": "admins only; dispatchers see active people"})
    kind = fields.String(
        validate=validate.OneOf(["person", "system"]), metadata={"description": "admins only"}
    )


class PasswordResetSchema(Schema):
    password = fields.String(
        required=True,
        load_only=True,
        validate=[validate.Length(min=MIN_PASSWORD, max=200), encodable],
    )


class PasswordChangeSchema(Schema):
    old_password = fields.String(
        required=True, load_only=True, validate=[validate.Length(min=1, max=200), encodable]
    )
    new_password = fields.String(
        required=True,
        load_only=True,
        validate=[validate.Length(min=MIN_PASSWORD, max=200), encodable],
    )


# ---------------------------------------------------------------- groups


class GroupSchema(Schema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()
    description = fields.String(allow_none=True)
    lead = fields.Nested(UserRefSchema, allow_none=True)
    members = fields.List(fields.Nested(UserRefSchema))


class GroupPageSchema(PageSchema):
    items = fields.List(fields.Nested(GroupSchema))


class GroupUpdateSchema(Schema):
    name = _name()
    description = fields.String(allow_none=True, validate=[validate.Length(max=500), text_block])
    lead = fields.String(
        allow_none=True,
        validate=[validate.Length(min=1, max=100), printable],
        metadata={"description": "username of the lead; null for none"},
    )


class GroupCreateSchema(GroupUpdateSchema):
    code = _code(
        required=True, metadata={"description": "fixed once created: diagrams name groups by it"}
    )
    name = _name(required=True)


class NameFilterArgs(PageArgs):
    q = fields.String(
        validate=[validate.Length(min=1, max=100), printable],
        metadata={"description": "part of the code or name"},
    )


# ---------------------------------------------------------------- departments


class DepartmentSchema(Schema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()
    parent_id = fields.Integer(allow_none=True)
    parent = fields.Pluck(DepartmentRefSchema, "code", allow_none=True)


class DepartmentPageSchema(PageSchema):
    items = fields.List(fields.Nested(DepartmentSchema))


class DepartmentTreeSchema(Schema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()
    children = fields.List(fields.Nested(lambda: DepartmentTreeSchema()))


class DepartmentUpdateSchema(Schema):
    name = _name()
    parent = _code(
        allow_none=True, metadata={"description": "code of the parent; null for the top"}
    )


class DepartmentCreateSchema(DepartmentUpdateSchema):
    code = _code(required=True, metadata={"description": "fixed once created"})
    name = _name(required=True)


class DepartmentListArgs(NameFilterArgs):
    parent = _code(metadata={"description": "only the direct sub-departments of this code"})


# ---------------------------------------------------------------- skills


class SkillSchema(Schema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()


class SkillPageSchema(PageSchema):
    items = fields.List(fields.Nested(SkillSchema))


class SkillUpdateSchema(Schema):
    name = _name(required=True)


class SkillCreateSchema(SkillUpdateSchema):
    code = _code(required=True, metadata={"description": "fixed once created"})
