"""Workflow scenario fixtures: a fresh read model (SQLite and PostgreSQL) and a real worker
on the time-skipping test server."""

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from tests.support.read_model import ENGINES, seeded_read_model
from tests.support.shop import Shop
from worker import build_worker


@pytest.fixture(params=ENGINES)
async def sessions(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A fresh, seeded read model on each database engine."""
    async with seeded_read_model(request, tmp_path) as factory:
        yield factory


@pytest.fixture
async def shop(
    ts_env: WorkflowEnvironment, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Shop]:
    task_queue = f"orders-{uuid.uuid4().hex[:8]}"
    async with build_worker(ts_env.client, task_queue, sessions):
        shop = Shop(ts_env, sessions, task_queue)
        yield shop
        await shop.close()
