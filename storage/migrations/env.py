"""Alembic environment of the cellbench schema; run by :mod:`storage.migrations`, never alone.

Online, the caller passes an open connection (``config.attributes["connection"]``) already inside
the transaction that serialises schema changes, so Alembic neither opens nor commits one: the
whole upgrade commits or rolls back as one. Offline (``--sql``), the SQL is rendered for the URL's
dialect. Batch mode lets the same migration files alter tables on SQLite, which lacks most of
ALTER TABLE, and run plain ALTERs elsewhere.
"""
from alembic import context

config = context.config

if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True,
                      render_as_batch=True)
else:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("storage/migrations/env.py needs an open connection: upgrade with "
                           "`main.py db upgrade --db URL` or storage.migrations.upgrade()")
    context.configure(connection=connection, render_as_batch=True)

with context.begin_transaction():
    context.run_migrations()
