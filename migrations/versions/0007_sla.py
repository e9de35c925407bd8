"""sla: policies (first match by position) and the clock ledger of running and paused intervals

Revision ID: 0007sla
Revises: 0006calendars
Create Date: 2026-11-26 20:15:00

"""

import sqlalchemy as sa
from alembic import op


revision = "0007sla"
down_revision = "0006calendars"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade():
    op.create_table(
        "sla_policy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("process_key", sa.String(length=100), nullable=True),
        sa.Column("category", sa.String(length=40), nullable=True),
        sa.Column("priority", sa.String(length=4), nullable=True),
        sa.Column("department_code", sa.String(length=50), nullable=True),
        sa.Column("response_minutes", sa.Integer(), nullable=False),
        sa.Column("resolution_minutes", sa.Integer(), nullable=False),
        sa.Column("response_event", sa.String(length=20), nullable=False),
        sa.Column("calendar_id", sa.Integer(), nullable=False),
        sa.Column("pause_on", sa.JSON(), nullable=False),
        sa.Column("escalation_levels", sa.JSON(), nullable=False),
        sa.Column("reminder_percent", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["calendar_id"],
            ["business_calendar.id"],
            name=op.f("fk_sla_policy_calendar_id_business_calendar"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_policy")),
        sa.UniqueConstraint("name", name=op.f("uq_sla_policy_name")),
    )
    with op.batch_alter_table("sla_policy", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sla_policy_calendar_id"), ["calendar_id"])
        batch_op.create_index(batch_op.f("ix_sla_policy_position"), ["position"])

    op.create_table(
        "sla_clock",
        sa.Column("id", BigId, nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("policy_id", sa.Integer(), nullable=True),
        sa.Column("calendar_id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("target_minutes", sa.Integer(), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("breached_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["calendar_id"],
            ["business_calendar.id"],
            name=op.f("fk_sla_clock_calendar_id_business_calendar"),
        ),
        sa.ForeignKeyConstraint(
            ["policy_id"], ["sla_policy.id"], name=op.f("fk_sla_clock_policy_id_sla_policy")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_sla_clock_ticket_id_ticket")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_clock")),
    )
    with op.batch_alter_table("sla_clock", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sla_clock_deadline"), ["deadline"])
        batch_op.create_index(batch_op.f("ix_sla_clock_policy_id"), ["policy_id"])
        batch_op.create_index("ix_sla_clock_ticket_id_kind", ["ticket_id", "kind"], unique=True)

    op.create_table(
        "sla_interval",
        sa.Column("id", BigId, nullable=False),
        sa.Column("clock_id", BigId, nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(
            ["clock_id"], ["sla_clock.id"], name=op.f("fk_sla_interval_clock_id_sla_clock")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_interval")),
    )
    with op.batch_alter_table("sla_interval", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sla_interval_clock_id"), ["clock_id"])


def downgrade():
    with op.batch_alter_table("sla_interval", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sla_interval_clock_id"))
    op.drop_table("sla_interval")
    with op.batch_alter_table("sla_clock", schema=None) as batch_op:
        batch_op.drop_index("ix_sla_clock_ticket_id_kind")
        batch_op.drop_index(batch_op.f("ix_sla_clock_policy_id"))
        batch_op.drop_index(batch_op.f("ix_sla_clock_deadline"))
    op.drop_table("sla_clock")
    with op.batch_alter_table("sla_policy", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sla_policy_position"))
        batch_op.drop_index(batch_op.f("ix_sla_policy_calendar_id"))
    op.drop_table("sla_policy")
