"""Schemas of sign-in, tokens and the organisation (users, groups, departments, skills)."""

from marshmallow import Schema, fields, validate


class TokenRequestSchema(Schema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=100))
    password = fields.String(
        required=True, validate=validate.Length(min=1, max=200), load_only=True
    )


class TokenSchema(Schema):
    token = fields.String(metadata={"description": "shown once; send as `Authorization: Bearer …`"})
    token_type = fields.String(dump_default="Bearer")
    expires_at = fields.DateTime(allow_none=True)
    username = fields.String()
    role = fields.String()
