"""Alembic environment: migrates the connection handed over by batchyard.store.migrate.

Developers creating a revision can also point plain ``alembic`` at a database with
``-x url=sqlite:///dev.db``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

from batchyard.store.tables import SCHEMA, metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite alters tables by copying them; batch mode writes that for us.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        # On PostgreSQL the version table sits beside batchyard's tables, in their schema.
        version_table_schema=SCHEMA if connection.dialect.name == "postgresql" else None,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_standalone() -> None:
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("pass the database with: alembic -x url=<sync SQLAlchemy URL> …")
    engine = create_engine(url)
    if engine.dialect.name == "postgresql":  # the same schema the server's engine maps to
        engine = engine.execution_options(schema_translate_map={None: SCHEMA})
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


_connection = context.config.attributes.get("connection")
if _connection is not None:
    _run(_connection)
else:
    _run_standalone()
