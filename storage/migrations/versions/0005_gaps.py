"""A table of the gaps in a run's streams: points a BioLogic channel's finite buffer lost while
no controller read it (procedures/reattach.py).

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gaps",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("stream", sa.String(255), nullable=False),
        sa.Column("step_index", sa.Integer),
        sa.Column("technique", sa.String(64)),
        sa.Column("from_s", sa.Float, nullable=False),
        sa.Column("to_s", sa.Float, nullable=False),
        sa.Column("points_lost", sa.Integer, nullable=False),
        sa.Column("points_expected", sa.Integer),
    )
    op.create_index("ix_gaps_run", "gaps", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_gaps_run", table_name="gaps")
    op.drop_table("gaps")
