"""Admission control (starter/api/admission.py): at its limit of commands in flight an API
process answers 503 `overloaded` with Retry-After at once and changes nothing; reads, probes
and /metrics are never held; below the limit nothing changes.

The slot is held deterministically: the API's task queue has no worker yet, so a submit parks
in Temporal (the workflow's first task waits for a poller) until the test starts the worker.
No timings are asserted.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from db.session import create_all, make_engine, make_session_factory
from db.tables import IdempotencyKey, Order, Product
from starter.api.admission import Admission
from starter.api.app import create_app
from tests.api.conftest import serve, stack_settings, stop
from tests.api.helpers import Api, eventually
from worker import build_worker


@dataclass
class Gated:
    api: Api
    queue: str
    sessions: async_sessionmaker[AsyncSession]


@pytest.fixture
async def gated(dev_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Gated]:
    """An API with ORDERS_API_MAX_INFLIGHT=1 and no queue wait, on a task queue nobody polls."""
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'orders.db'}"
    engine = make_engine(db_url)
    await create_all(engine)
    sessions = make_session_factory(engine)
    queue = f"admission-{uuid.uuid4().hex[:8]}"
    settings = stack_settings(
        db_url,
        dev_env,
        queue,
        ORDERS_API_MAX_INFLIGHT="1",
        ORDERS_API_QUEUE_TIMEOUT="0",
    )
    running = await serve(create_app(settings))
    try:
        async with httpx.AsyncClient(base_url=running.url, timeout=60) as http:
            yield Gated(Api(http, settings, sessions), queue, sessions)
    finally:
        await stop(running)
        await engine.dispose()


async def _metric(api: Api, name: str) -> float:
    text = (await api.call("GET", "/metrics")).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def _submit(tea: str) -> dict[str, Any]:
    return {"lines": [{"sku": tea, "qty": 1}], "coins": "0.00"}


async def test_at_the_limit_a_command_is_shed_at_once_and_changes_nothing(
    gated: Gated, dev_env: WorkflowEnvironment
) -> None:
    api = gated.api
    supplier = api.supplier()
    tea = await api.product(supplier, price="10.00", on_hand=5)
    alice, bob = await api.customer(), await api.customer()
    assert await _metric(api, "orders_api_command_slots") == 1

    # Alice's submit takes the only slot and parks: no worker polls the queue yet.
    first = asyncio.create_task(api.call("POST", "/orders", alice, _submit(tea), key="a-1"))

    async def holding() -> bool:
        return await _metric(api, "orders_api_commands_in_flight") == 1

    await eventually(holding, what="alice's submit holding the slot")

    r = await api.call("POST", "/orders", bob, _submit(tea), key="b-1")
    assert r.status_code == 503, r.text
    assert r.headers["Retry-After"] == "1"
    error = r.json()["error"]
    assert error["code"] == "overloaded" and "Idempotency-Key" in error["message"]
    # Webhooks that reach Temporal are commands too; a bad signature is not even looked at.
    r = await api.signed("/webhooks/carrier", {"event_id": "e1"})
    assert r.status_code == 503 and r.headers["Retry-After"] == "1"
    assert await _metric(api, "orders_api_commands_shed_total") == 2

    # Nothing of Bob's was written: no order, no idempotency key, the stock untouched but
    # for Alice's pending placement.
    async with gated.sessions() as s:
        assert (await s.scalars(select(Order).where(Order.customer_id == bob.sub))).all() == []
        keys = (await s.scalars(select(IdempotencyKey.key))).all()
        assert not any(bob.sub in k for k in keys)
        assert any(alice.sub in k for k in keys)

    # Reads, probes and metrics are not held by the full slot.
    assert (await api.call("GET", "/orders", bob)).status_code == 200
    assert (await api.call("GET", f"/products/{tea}")).status_code == 200
    for probe in ("/healthz", "/livez", "/readyz", "/metrics"):
        assert (await api.call("GET", probe)).status_code == 200, probe
    assert not first.done()

    # The gate opens: a worker polls the queue, Alice's submit completes and frees the slot.
    async with build_worker(dev_env.client, gated.queue, gated.sessions):
        r = await first
        assert r.status_code == 201, r.text
        assert await _metric(api, "orders_api_commands_in_flight") == 0
        # Bob retries with the same key, as Retry-After said: placed as a first attempt.
        r = await api.call("POST", "/orders", bob, _submit(tea), key="b-1")
        assert r.status_code == 201, r.text
        assert "Idempotent-Replayed" not in r.headers
        order_no = r.json()["order_no"]
        r = await api.call("POST", f"/orders/{order_no}/pay", bob, key="b-pay")
        assert r.status_code == 202, r.text

    async with gated.sessions() as s:
        orders = (await s.scalars(select(Order.customer_id))).all()
        assert sorted(orders) == sorted([alice.sub, bob.sub])
        assert await s.scalar(select(Product.reserved).where(Product.sku == tea)) == 2
    assert await _metric(api, "orders_api_commands_shed_total") == 2


async def test_below_the_limit_commands_pass_one_after_another(
    gated: Gated, dev_env: WorkflowEnvironment
) -> None:
    """With one slot and no queue wait, commands sent one at a time are never shed."""
    api = gated.api
    supplier = api.supplier()
    tea = await api.product(supplier, price="10.00", on_hand=5)
    alice = await api.customer()
    async with build_worker(dev_env.client, gated.queue, gated.sessions):
        for k in range(3):
            r = await api.call("POST", "/orders", alice, _submit(tea), key=f"a-{k}")
            assert r.status_code == 201, r.text
            order_no = r.json()["order_no"]
            r = await api.call("POST", f"/orders/{order_no}/pay", alice, key=f"p-{k}")
            assert r.status_code == 202, r.text
    assert await _metric(api, "orders_api_commands_shed_total") == 0
    assert await _metric(api, "orders_api_commands_in_flight") == 0


# --- the bound itself, on one event loop (no HTTP, no clock) ----------------------------------


async def test_a_waiter_gets_the_slot_released_first_come_first_served() -> None:
    gate = Admission(limit=1, queue_timeout=3600)
    assert await gate.acquire()
    second = asyncio.create_task(gate.acquire())
    third = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)  # one loop turn: both tasks run up to their wait
    assert gate.waiting == 2
    gate.release()  # handed to the second, not freed
    assert await second and not third.done()
    assert gate.in_flight == 1 and gate.waiting == 1
    gate.release()
    assert await third
    gate.release()
    assert gate.in_flight == 0 and gate.shed == 0 and gate.admitted == 3


async def test_without_a_queue_wait_the_excess_is_refused_and_counted() -> None:
    gate = Admission(limit=2, queue_timeout=0)
    assert await gate.acquire() and await gate.acquire()
    assert not await gate.acquire()
    assert gate.shed == 1 and gate.in_flight == 2
    gate.release()
    assert await gate.acquire()


async def test_a_waiter_cancelled_after_the_handover_passes_the_slot_on() -> None:
    gate = Admission(limit=1, queue_timeout=3600)
    assert await gate.acquire()
    waiter = asyncio.create_task(gate.acquire())
    later = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)  # one loop turn: both tasks run up to their wait
    assert gate.waiting == 2
    gate.release()  # the slot goes to `waiter`...
    waiter.cancel()  # ...whose request is cancelled before it resumes
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert await later  # the slot moved on instead of leaking
    assert gate.in_flight == 1


async def test_no_bound_when_the_limit_is_zero() -> None:
    gate = Admission(limit=0, queue_timeout=0)
    assert all([await gate.acquire() for _ in range(100)])
    for _ in range(100):
        gate.release()
    assert gate.in_flight == 0 and gate.shed == 0
