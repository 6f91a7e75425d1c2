"""A fresh, seeded read model on SQLite or on the session's PostgreSQL (one database per test)."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.session import create_all, make_engine, make_session_factory
from tests.support.catalog import seed
from tests.support.postgres import create_database, drop_database

ENGINES = ["sqlite", "postgres"]


@asynccontextmanager
async def seeded_read_model(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """For a fixture parametrized over ENGINES: tables created, demo catalog seeded."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/orders.db"
    else:
        pg_url: str = request.getfixturevalue("pg_url")
        url = await create_database(pg_url, f"t_{uuid.uuid4().hex[:12]}")
    engine = make_engine(url)
    await create_all(engine)
    factory = make_session_factory(engine)
    await seed(factory)
    try:
        yield factory
    finally:
        await engine.dispose()


@asynccontextmanager
async def empty_read_model(
    engine_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Tables created and nothing else, on "sqlite" or "postgresql"; the database dropped after."""
    pg_url = ""
    name = f"t_{uuid.uuid4().hex[:12]}"
    if engine_name == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/{name}.db"
    else:
        pg_url = request.getfixturevalue("pg_url")
        url = await create_database(pg_url, name)
    engine = make_engine(url)
    try:
        await create_all(engine)
        yield make_session_factory(engine)
    finally:
        await engine.dispose()
        if pg_url:
            await drop_database(pg_url, name)
