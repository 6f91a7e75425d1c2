"""Alembic environment: async engines (sqlite+aiosqlite, postgresql+asyncpg).

The database URL comes, first found wins, from:
  1. `config.attributes["database_url"]` (db.migrate.upgrade passes it this way),
  2. `alembic -x url=...` on the command line,
  3. `sqlalchemy.url` in the ini (not set by default),
  4. DATABASE_URL via settings.get_settings() (the environment / .env; the app's default).
A caller may also hand over an open sync connection in `config.attributes["connection"]`.
"""

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from db.migrate import render_item
from db.tables import Base

config = context.config

# Only the `alembic` command configures logging from the ini; code calling
# db.migrate keeps its own logging setup.
if config.config_file_name is not None and not config.attributes.get("keep_logging"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def database_url() -> str:
    url = config.attributes.get("database_url") or context.get_x_argument(as_dictionary=True).get(
        "url"
    )
    if not url:
        url = config.get_main_option("sqlalchemy.url")
    if not url:
        from settings import get_settings

        url = get_settings().database_url
    return str(url)


def _configure(url: str, /, **kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: later migrations get copy-and-move batches.
        render_as_batch=url.startswith("sqlite"),
        compare_type=True,
        render_item=render_item,
        **kwargs,  # type: ignore[arg-type]
    )


def run_migrations_offline() -> None:
    """`alembic upgrade head --sql`: print the SQL for the URL's dialect instead of running it."""
    url = database_url()
    _configure(url, url=url, literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    _configure(connection.engine.url.drivername, connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations(url: str) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
        return
    asyncio.run(run_async_migrations(database_url()))


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
