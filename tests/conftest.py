"""Shared servers, each started lazily the first time a test asks for it (PostgreSQL and the
dev server once for the session, the time-skipping server once per test).

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


@pytest.fixture
async def ts_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping Temporal test server of the test's own.

    Its clock is one for the whole server and skips only while nothing holds it. A
    workflow left with a task on a queue whose worker is gone holds it for good, and so
    does one terminated while its workflow task is in flight (a test that ends as its
    order splits does that about one run in five). On a shared server every later timer
    test then waited in real time, and a CI run hung. A server per test costs ~0.1 s.
    """
    async with await start_time_skipping_env() as env:
        yield env


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal dev server (with OrderNo/CustomerId/SupplierId/OrderStatus) for the session."""
    async with await start_dev_server_env() as env:
        yield env
