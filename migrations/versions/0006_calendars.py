"""calendars: business calendars (working hours, time zone, official holidays, 24×7) and their
days (official holidays and adjusted workdays for every calendar, closures of one calendar)

Revision ID: 0006calendars
Revises: 0005roster
Create Date: 2026-11-26 20:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0006calendars"
down_revision = "0005roster"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "business_calendar",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("working_hours", sa.JSON(), nullable=False),
        sa.Column("use_official_holidays", sa.Boolean(), nullable=False),
        sa.Column("is_24x7", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_business_calendar")),
        sa.UniqueConstraint("code", name=op.f("uq_business_calendar_code")),
    )
    op.create_table(
        "calendar_day",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("calendar_id", sa.Integer(), nullable=True),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.CheckConstraint(
            "kind in ('holiday', 'workday', 'closure')", name=op.f("ck_calendar_day_kind")
        ),
        sa.CheckConstraint(
            "(calendar_id is null and kind <> 'closure') "
            "or (calendar_id is not null and kind = 'closure')",
            name=op.f("ck_calendar_day_scope"),
        ),
        sa.ForeignKeyConstraint(
            ["calendar_id"],
            ["business_calendar.id"],
            name=op.f("fk_calendar_day_calendar_id_business_calendar"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_day")),
        sa.UniqueConstraint("calendar_id", "date", name=op.f("uq_calendar_day_calendar_id")),
    )
    with op.batch_alter_table("calendar_day", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_calendar_day_calendar_id"), ["calendar_id"])
        batch_op.create_index(batch_op.f("ix_calendar_day_date"), ["date"])
        batch_op.create_index(
            "uq_calendar_day_official_date",
            ["date"],
            unique=True,
            sqlite_where=sa.text("calendar_id is null"),
            postgresql_where=sa.text("calendar_id is null"),
        )


def downgrade():
    op.drop_table("calendar_day")
    op.drop_table("business_calendar")
