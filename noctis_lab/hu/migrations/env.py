"""Alembic environment of the calibration history.

Noctis Lab runs it in code (:func:`noctis_lab.hu._history_db.upgrade`), handing
over an open connection in ``config.attributes["connection"]``; it also works
from the ``alembic`` command line with ``sqlalchemy.url`` set. Only the
history's own tables (``hu_*``) are considered: other areas keep their tables in
the same database and Alembic must neither create nor drop them.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import create_engine

from noctis_lab.hu._history_schema import VERSION_TABLE, Base, include_name, include_object

config = context.config
target_metadata = Base.metadata


_OPTIONS: dict[str, Any] = {
    "target_metadata": target_metadata,
    "version_table": VERSION_TABLE,
    "include_name": include_name,
    "include_object": include_object,
    "render_as_batch": True,  # SQLite needs batch mode to alter tables
}


def run_migrations_offline() -> None:
    """Write the SQL to stdout (``alembic upgrade head --sql``)."""
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True, **_OPTIONS)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate through the caller's connection, or one made from ``sqlalchemy.url``."""
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, **_OPTIONS)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("set sqlalchemy.url, or pass a connection in config.attributes")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            context.configure(connection=conn, **_OPTIONS)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
