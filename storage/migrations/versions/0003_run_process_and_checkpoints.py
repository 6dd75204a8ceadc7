"""The process that writes a run, and how far the run has come (resume after a crash).

``runs.host``, ``runs.pid``, ``runs.process_started``: the writing process, so that another process
on the same host can tell at once whether it still lives (the pid alone may have been reused:
``process_started`` is the process's own start time as the operating system reports it). Runs
written before this revision have none and fall back to the heartbeat (``runs.updated_at``).

``run_checkpoints``: one row per run with the clock time of its start, the step index reached and that step's position (which
voltage level, which cycler record, which spectrum...), written by the storage writer in the same
transaction as the point rows it covers; ``generation`` counts those transactions and names the
simulated station's state file saved with them (procedures/resume.py).

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("host", sa.String(255)))
        batch.add_column(sa.Column("pid", sa.Integer))
        batch.add_column(sa.Column("process_started", sa.String(64)))
    op.create_table(
        "run_checkpoints",
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("clock_t0", sa.Float, nullable=False),
        sa.Column("step_index", sa.Integer, nullable=False),
        sa.Column("position", sa.JSON),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("run_checkpoints")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("process_started")
        batch.drop_column("pid")
        batch.drop_column("host")
