"""The run's read model: a fresh PostgreSQL database, migrated to head (shared with
bench.flashsale)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

from db.migrate import upgrade_async
from tests.support.postgres import create_database, start_postgres


@contextlib.asynccontextmanager
async def read_model_database(pg_url: str | None, prefix: str) -> AsyncIterator[str]:
    """A new database on `pg_url`'s server (left there), else a throwaway server as the tests
    start one (stopped on leaving); migrated with db.migrate. Yields its URL."""
    with contextlib.ExitStack() as stack:
        if pg_url:
            url = await create_database(pg_url, f"{prefix}_{uuid.uuid4().hex[:10]}")
        else:
            url = stack.enter_context(start_postgres())
        await upgrade_async(url)
        yield url
