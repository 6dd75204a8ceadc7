"""A table of the runs' suspensions (watched conditions lost and recovered, procedures/watch.py).

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "suspensions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("uid", sa.String(64), nullable=False, unique=True),
        sa.Column("step_index", sa.Integer),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("setpoint_c", sa.Float),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("ended_at", sa.DateTime),
        sa.Column("detail", sa.JSON),
    )
    op.create_index("ix_suspensions_run", "suspensions", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_suspensions_run", table_name="suspensions")
    op.drop_table("suspensions")
