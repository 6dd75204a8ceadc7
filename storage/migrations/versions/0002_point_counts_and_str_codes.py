"""Stored point counts per stream, and code tables for str columns kept in float slots.

``streams.n_points``: the stream's row count in ``points``, kept by the writer in the same
transaction as the rows, so listing runs and streams never counts ``points``. Existing streams are
backfilled here (one range count per stream on the primary key).

``streams.str_codes``: ``{column: [value, ...]}`` for str columns stored as integer codes (the
value's index in the list) in a float slot instead of as JSON in ``extra``.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("streams") as batch:
        batch.add_column(sa.Column("n_points", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("str_codes", sa.JSON))
    op.execute("UPDATE streams SET n_points = "
               "(SELECT count(*) FROM points WHERE points.stream_id = streams.id)")


def downgrade() -> None:
    with op.batch_alter_table("streams") as batch:
        batch.drop_column("str_codes")
        batch.drop_column("n_points")
