"""Helpers that diagram expressions may call about people and groups."""

from app.auth.org_service import group_lead
from app.extensions import db
from app.rules.expressions import register_helper


def register_auth_helpers() -> None:
    register_helper("group_lead", lambda code: group_lead(db_session=db.session, code=code))
