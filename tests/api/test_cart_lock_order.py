"""POST /cart/remove locks the cart's lines in SKU order, so two calls never deadlock.

On PostgreSQL a transaction that locked line B and waits for line A, while another holds A
and waits for B, is aborted with "deadlock detected": the API answered 500. The handler is
called here on a real PostgreSQL database while another transaction holds the line that sorts
first and then takes the other one (the cycle the old body-order locking closed).
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.session import create_all, make_engine, make_session_factory, write_session
from db.tables import CartLine
from starter.api.routers.cart import CartRemoveIn, CartRemoveLine, remove_quantities
from starter.security import Principal, Role
from tests.support.catalog import seed
from tests.support.postgres import create_database


@pytest.fixture
async def sessions(pg_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    url = await create_database(pg_url, f"t_{uuid.uuid4().hex[:12]}")
    engine = make_engine(url)
    await create_all(engine)
    factory = make_session_factory(engine)
    await seed(factory)
    try:
        yield factory
    finally:
        await engine.dispose()


async def waiting_on_a_lock(sessions: async_sessionmaker[AsyncSession]) -> bool:
    async with sessions() as s:
        n = await s.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return bool(n)


async def test_removing_lines_in_any_order_never_deadlocks(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with write_session(sessions) as s:
        for sku in ("cup-white", "tea-green"):
            s.add(CartLine(customer_id="alice", sku=sku, qty=3, added_at=datetime.now(UTC)))

    body = CartRemoveIn(
        lines=[CartRemoveLine(sku="tea-green", qty=1), CartRemoveLine(sku="cup-white", qty=1)]
    )
    alice = Principal("alice", Role.CUSTOMER)
    loop = asyncio.get_running_loop()
    async with write_session(sessions) as other:  # e.g. the same customer's other device
        first = await other.get(CartLine, ("alice", "cup-white"), with_for_update=True)
        assert first is not None
        call = asyncio.create_task(remove_quantities(body, alice, sessions, None))
        deadline = loop.time() + 30
        while not await waiting_on_a_lock(sessions):
            assert not call.done(), "the call did not wait for the line held here"
            assert loop.time() < deadline, "the call never waited for the line held here"
            await asyncio.sleep(0.02)
        # Locking in the body's order, the call now held tea-green: this closed the cycle.
        second = await other.get(CartLine, ("alice", "tea-green"), with_for_update=True)
        assert second is not None
        second.qty += 10
    response = await asyncio.wait_for(call, 30)
    assert response.status_code == 200, bytes(response.body)
    async with sessions() as s:
        lines = {
            li.sku: li.qty
            for li in (await s.scalars(select(CartLine).where(CartLine.customer_id == "alice")))
        }
    assert lines == {"cup-white": 2, "tea-green": 12}
