"""Alembic head == db.tables.Base.metadata, on SQLite and on a real PostgreSQL.

`alembic upgrade head` must create exactly the tables, columns, indexes and constraints the
models declare (autogenerate's compare_metadata finds nothing to do), and `downgrade base`
must remove them again.
"""

import asyncio
import os
import sys
import uuid
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata, produce_migrations, render_python_code
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from db.migrate import downgrade, render_item, upgrade, upgrade_async
from db.tables import Base
from tests.support.postgres import create_database, drop_database

ROOT = Path(__file__).resolve().parents[2]
MODEL_TABLES = set(Base.metadata.tables)


def _diffs(conn: Connection) -> list[Any]:
    ctx = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(ctx, Base.metadata))


def _columns(conn: Connection) -> dict[str, set[str]]:
    insp = inspect(conn)
    return {t: {c["name"] for c in insp.get_columns(t)} for t in insp.get_table_names()}


def _revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


async def _check_head(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        assert await conn.run_sync(_diffs) == []
        columns = await conn.run_sync(_columns)
        assert await conn.run_sync(_revision) is not None
    assert set(columns) == MODEL_TABLES | {"alembic_version"}
    for name, table in Base.metadata.tables.items():
        assert columns[name] == {c.name for c in table.columns}, name


async def _check_base(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        columns = await conn.run_sync(_columns)
        assert await conn.run_sync(_revision) is None
    assert set(columns) <= {"alembic_version"}


async def test_sqlite_upgrade_head_matches_models_and_downgrades(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/nested/dir/orders.db"  # parent dirs are created
    await upgrade_async(url)
    await upgrade_async(url)  # at head already: a no-op
    engine = create_async_engine(url)
    try:
        await _check_head(engine)
        await asyncio.to_thread(downgrade, url, "base")
        await _check_base(engine)
        await asyncio.to_thread(upgrade, url)  # and back up again, from a plain thread
        await _check_head(engine)
    finally:
        await engine.dispose()


async def test_alembic_command_uses_database_url_from_settings(tmp_path: Path) -> None:
    """`alembic upgrade head` from the repo root, configured only by DATABASE_URL."""
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), "upgrade", "head"),
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    assert "Running upgrade  -> 0001" in err.decode()  # the ini's logging config is used
    engine = create_async_engine(url)
    try:
        await _check_head(engine)
    finally:
        await engine.dispose()


async def test_postgres_upgrade_head_matches_models_and_downgrades(pg_url: str) -> None:
    name = f"mig_{uuid.uuid4().hex[:12]}"
    url = await create_database(pg_url, name)
    engine = create_async_engine(url)
    try:
        await upgrade_async(url)
        await _check_head(engine)
        async with engine.connect() as conn:
            # The PostgreSQL-specific renderings the initial migration is reviewed for.
            rows = await conn.execute(
                text(
                    "SELECT table_name || '.' || column_name, data_type "
                    "FROM information_schema.columns WHERE table_schema = 'public'"
                )
            )
            types = {str(column): str(data_type) for column, data_type in rows}
            assert types["orders.pay_deadline"] == "timestamp with time zone"
            assert types["orders.plan"] == "json"
            assert types["customers.default_address"] == "json"
            assert types["products.price"] == "numeric"
            assert types["packages.last_lat"] == "double precision"
            precision = (
                await conn.execute(
                    text(
                        "SELECT numeric_precision, numeric_scale FROM information_schema.columns "
                        "WHERE table_name = 'orders' AND column_name = 'payable'"
                    )
                )
            ).one()
            assert tuple(precision) == (14, 2)
            serial = (
                await conn.execute(
                    text(
                        "SELECT column_default FROM information_schema.columns "
                        "WHERE table_name = 'packages' AND column_name = 'id'"
                    )
                )
            ).scalar_one()
            assert serial is not None and serial.startswith("nextval(")
            unique = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM information_schema.table_constraints "
                        "WHERE table_name = 'packages' AND constraint_type = 'UNIQUE' "
                        "AND constraint_name = 'uq_packages_tracking'"
                    )
                )
            ).scalar_one()
            assert unique == 1
        await asyncio.to_thread(downgrade, url, "base")
        await _check_base(engine)
    finally:
        await engine.dispose()
        await drop_database(pg_url, name)


def test_autogenerate_writes_plain_sqlalchemy_types() -> None:
    """Scripts must not import the models (db.tables.UTCDateTime → sa.DateTime(timezone=True))."""
    engine = create_engine("sqlite://")
    with engine.connect() as conn:
        ops = produce_migrations(MigrationContext.configure(conn), Base.metadata)
    assert ops.upgrade_ops is not None
    code = render_python_code(ops.upgrade_ops, render_item=render_item)
    assert "db.tables" not in code
    assert "sa.DateTime(timezone=True)" in code
