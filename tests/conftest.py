"""Session-wide servers, each started lazily the first time a test asks for it.

Only the shared servers live here; DB/worker fixtures belong in conftest files of subfolders.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.support.postgres import start_postgres
from tests.support.temporal import start_dev_server_env, start_time_skipping_env


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """`postgresql+asyncpg://app@127.0.0.1:PORT/orders` of a throwaway server for the session."""
    with start_postgres() as url:
        yield url


@pytest.fixture(scope="session")
async def ts_env() -> AsyncIterator[WorkflowEnvironment]:
    """Time-skipping Temporal test server for the session."""
    async with await start_time_skipping_env() as env:
        yield env


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal dev server (with OrderNo/CustomerId/SupplierId/OrderStatus) for the session."""
    async with await start_dev_server_env() as env:
        yield env
