"""/api/v1/audit: reading the audit trail (admins). Nothing here changes or deletes a row."""

from app.api import Blueprint

audit_blp = Blueprint(
    "audit", __name__, url_prefix="/api/v1/audit", description="审计日志 / audit trail"
)
