"""Workflow scenario fixtures: a fresh read model (SQLite and PostgreSQL) and a real worker
on the time-skipping test server."""

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from db.session import create_all, make_engine, make_session_factory
from tests.support.catalog import seed
from tests.support.postgres import create_database
from tests.support.shop import Shop
from worker import build_worker


@pytest.fixture(params=["sqlite", "postgres"])
async def sessions(
    request: pytest.FixtureRequest, tmp_path: object
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A fresh, seeded read model on each database engine."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/orders.db"
    else:
        pg_url: str = request.getfixturevalue("pg_url")
        url = await create_database(pg_url, f"t_{uuid.uuid4().hex[:12]}")
    engine = make_engine(url)
    await create_all(engine)
    factory = make_session_factory(engine)
    await seed(factory)
    yield factory
    await engine.dispose()


@pytest.fixture
async def shop(
    ts_env: WorkflowEnvironment, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Shop]:
    task_queue = f"orders-{uuid.uuid4().hex[:8]}"
    async with build_worker(ts_env.client, task_queue, sessions):
        shop = Shop(ts_env, sessions, task_queue)
        yield shop
        await shop.close()
