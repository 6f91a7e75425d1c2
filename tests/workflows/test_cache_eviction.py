"""A bounded workflow cache loses nothing (ORDERS_WORKER_MAX_CACHED_WORKFLOWS, docs/operations.md).

A worker that may keep one workflow in memory runs three orders: each new one evicts the
one before, so the first order's next task finds it gone and rebuilds it by replaying its
history. It still answers: a query, a customer's cancel (update with validator) and, for
another evicted order, a payment signal — and the read model ends with every invariant.
The SDK's own metrics (an in-memory buffer on the worker's client) prove the evictions and
the cache misses really happened, so the test cannot pass on a cache that kept everything.
"""

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.runtime import (
    BUFFERED_METRIC_KIND_COUNTER,
    MetricBuffer,
    Runtime,
    TelemetryConfig,
)
from temporalio.testing import WorkflowEnvironment

from domain.messages import CancelOrder, SnapshotQuery
from domain.states import CloseReason, OrderStatus
from tests.support.invariants import check_invariants
from tests.support.shop import Shop
from worker import build_worker
from workflows.order import OrderWorkflow

TWO_SUPPLIERS = [("tea-green", 2), ("pot-clay", 1), ("cup-white", 3)]


class Metrics:
    """The worker's SDK metrics, summed per name (counters arrive as deltas)."""

    def __init__(self) -> None:
        self.buffer = MetricBuffer(10_000)
        self.runtime = Runtime(telemetry=TelemetryConfig(metrics=self.buffer))
        self.totals: Counter[str] = Counter()

    def read(self) -> Counter[str]:
        for u in self.buffer.retrieve_updates():
            if u.metric.kind == BUFFERED_METRIC_KIND_COUNTER:
                self.totals[u.metric.name] += int(u.value)
        return self.totals


@pytest.fixture
async def small_cache(
    ts_env: WorkflowEnvironment, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[tuple[Shop, Metrics]]:
    metrics = Metrics()
    client = await Client.connect(
        ts_env.client.service_client.config.target_host,
        namespace=ts_env.client.namespace,
        data_converter=ts_env.client.data_converter,
        runtime=metrics.runtime,
    )
    task_queue = f"orders-cache1-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, task_queue, sessions, max_cached_workflows=1):
        shop = Shop(ts_env, sessions, task_queue)
        yield shop, metrics
        await shop.close()


async def test_evicted_workflows_answer_by_replay(small_cache: tuple[Shop, Metrics]) -> None:
    shop, metrics = small_cache
    first, placed_first = await shop.submit(TWO_SUPPLIERS, coins="2.50")
    second, placed_second = await shop.submit(TWO_SUPPLIERS)
    third, _ = await shop.submit([("tea-green", 1)])  # evicts the second too
    evicted = metrics.read()["temporal_sticky_cache_total_forced_eviction"]
    assert evicted >= 2, dict(metrics.totals)

    # The first order is not in memory: a query, then a cancel, both by replay.
    snap = await first.query(OrderWorkflow.snapshot, SnapshotQuery())
    assert snap.status is OrderStatus.PENDING_PAYMENT
    assert snap.payable == placed_first.plan.payable
    done = await first.execute_update(OrderWorkflow.cancel, CancelOrder(actor_id="alice"))
    assert done.status is OrderStatus.CLOSED
    assert done.close_reason is CloseReason.USER_CANCELLED
    row = await shop.order_status(placed_first.order_no, "CLOSED")
    assert row.close_reason == CloseReason.USER_CANCELLED

    # The second order, evicted as well, takes its payment signal and starts its children.
    await shop.pay(second, placed_second.plan.payable)
    await shop.order_status(placed_second.order_no, "PAID")
    snap = await second.query(OrderWorkflow.snapshot, SnapshotQuery())
    assert snap.status is OrderStatus.PAID and snap.paid == placed_second.plan.payable
    assert len(snap.supplier_orders) == 2

    # A refused command is refused as before: the first order is closed now.
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await first.execute_update(OrderWorkflow.cancel, CancelOrder(actor_id="alice"))
    assert "only unpaid orders" in str(refused.value.cause)

    totals = metrics.read()
    assert totals["temporal_sticky_cache_miss"] >= 2, dict(totals)  # tasks rebuilt by replay
    assert snap.paid > Decimal(0)
    await third.terminate("test finished")
    await check_invariants(shop.sessions)
