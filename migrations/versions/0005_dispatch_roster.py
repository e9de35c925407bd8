"""dispatch roster: the version token of the engineers' snapshot, an index on live positions

Revision ID: 0005roster
Revises: 0004dispatch
Create Date: 2026-11-26 19:45:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0005roster"
down_revision = "0004dispatch"
branch_labels = None
depends_on = None


def upgrade():
    roster = op.create_table(
        "dispatch_roster",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispatch_roster")),
    )
    op.bulk_insert(roster, [{"id": 1, "token": "initial"}])
    with op.batch_alter_table("engineer_profile", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_engineer_profile_pos_at"), ["pos_at"], unique=False)


def downgrade():
    with op.batch_alter_table("engineer_profile", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_engineer_profile_pos_at"))
    op.drop_table("dispatch_roster")
