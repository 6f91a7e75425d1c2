"""The test infrastructure itself: real PostgreSQL, time-skipping and dev Temporal servers."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from temporalio import workflow
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.support.postgres import create_database, drop_database
from tests.support.temporal import DEFAULT_SEARCH_ATTRIBUTES
from worker import workflow_runner


@workflow.defn
class SleepADay:
    @workflow.run
    async def run(self, name: str) -> str:
        await asyncio.sleep(timedelta(days=1).total_seconds())
        return f"hello {name}"


async def test_postgres_answers_select_1(pg_url: str) -> None:
    engine = create_async_engine(pg_url)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("select 1"))).scalar_one() == 1
            assert (await conn.execute(text("select current_database()"))).scalar_one() == "orders"
    finally:
        await engine.dispose()


async def test_postgres_extra_database(pg_url: str) -> None:
    url = await create_database(pg_url, "infra_extra")
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            name = (await conn.execute(text("select current_database()"))).scalar_one()
            assert name == "infra_extra"
    finally:
        await engine.dispose()
        await drop_database(pg_url, "infra_extra")


async def test_time_skipping_sleeps_a_day_fast(ts_env: WorkflowEnvironment) -> None:
    task_queue = f"infra-{uuid.uuid4()}"
    # The project's runner: its passthrough list keeps the sandbox from re-importing the
    # C-extension DB drivers this module imports (that corrupted asyncpg: a later
    # connection segfaulted).
    async with Worker(
        ts_env.client,
        task_queue=task_queue,
        workflows=[SleepADay],
        workflow_runner=workflow_runner(),
    ):
        started = time.monotonic()
        result = await ts_env.client.execute_workflow(
            SleepADay.run, "world", id=f"sleep-{uuid.uuid4()}", task_queue=task_queue
        )
        elapsed = time.monotonic() - started
    assert result == "hello world"
    assert elapsed < 5, f"time skipping took {elapsed:.1f}s of wall time"


async def test_dev_server_registers_search_attributes(dev_env: WorkflowEnvironment) -> None:
    resp = await dev_env.client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=dev_env.client.namespace)
    )
    for name in DEFAULT_SEARCH_ATTRIBUTES:
        assert resp.custom_attributes.get(name) == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD, name
