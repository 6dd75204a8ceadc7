"""The schema as storage/schema.py created it before migrations (commit 0bac8df).

A database written by that code has these tables and no ``alembic_version``; storage recognises
it and stamps it with this revision instead of running it (see storage/migrations/__init__.py).
The tables are written out here, not taken from storage/schema.py, because schema.py follows the
newest revision.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

N_VALUE_SLOTS = 16


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("uid", sa.String(64), nullable=False, unique=True),
        sa.Column("protocol_name", sa.String(255), nullable=False),
        sa.Column("protocol", sa.JSON),
        sa.Column("sample", sa.JSON),
        sa.Column("station", sa.JSON),
        sa.Column("simulated", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("traceback", sa.Text),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("ended_at", sa.DateTime),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "steps",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("step_index", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255)),
        sa.Column("params", sa.JSON),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("started_at", sa.DateTime),
        sa.Column("ended_at", sa.DateTime),
        sa.Column("summary", sa.JSON),
    )
    op.create_index("ix_steps_run_step", "steps", ["run_id", "step_index"])
    op.create_table(
        "streams",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("step_index", sa.Integer),
        sa.Column("descriptor_uid", sa.String(64), nullable=False, unique=True),
        sa.Column("metadata", sa.JSON),
        sa.Column("columns", sa.JSON, nullable=False),
        sa.Column("layout", sa.JSON, nullable=False),
        sa.UniqueConstraint("run_id", "name", name="uq_streams_run_name"),
    )
    op.create_table(
        "points",
        sa.Column("stream_id", sa.Integer, sa.ForeignKey("streams.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("time_s", sa.Float),
        *(sa.Column(f"v{i}", sa.Float) for i in range(N_VALUE_SLOTS)),
        sa.Column("extra", sa.Text),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "analysis_results",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("step_index", sa.Integer),
        sa.Column("result", sa.JSON),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_analysis_run_name", "analysis_results", ["run_id", "name"])


def downgrade() -> None:
    for table in ("analysis_results", "points", "streams", "steps", "runs"):
        op.drop_table(table)
