"""Live updates on PostgreSQL: the order_log trigger's NOTIFY wakes the hub at once.

The hub polls only every `fallback_interval` (set to a minute here), so a row delivered in
well under a second came through LISTEN/NOTIFY. No Temporal: rows are inserted directly.
"""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.migrate import downgrade, upgrade_async
from db.session import make_engine, make_session_factory, write_session
from db.tables import OrderLog
from starter.security import Principal, Role
from starter.web.live import Event, Grant, LiveHub, Subscription
from tests.api.helpers import eventually
from tests.support.postgres import create_database, drop_database

FALLBACK = 60.0


@pytest.fixture
async def pg_sessions(pg_url: str) -> AsyncIterator[tuple[str, async_sessionmaker[AsyncSession]]]:
    name = f"live_{uuid.uuid4().hex[:12]}"
    url = await create_database(pg_url, name)
    await upgrade_async(url)
    engine = make_engine(url)
    try:
        yield url, make_session_factory(engine)
    finally:
        await engine.dispose()
        await drop_database(pg_url, name)


def admin() -> Grant:
    return Grant(Principal("root", Role.ADMIN), frozenset({"admin"}))


def row(action: str) -> OrderLog:
    return OrderLog(order_no="PG1", actor="system", action=action, detail={}, at=datetime.now(UTC))


async def insert(sessions: async_sessionmaker[AsyncSession], action: str) -> int:
    async with write_session(sessions) as s:
        entry = row(action)
        s.add(entry)
        await s.flush()
        return entry.id


async def next_event(sub: Subscription, timeout: float) -> Event:
    item = await sub.next(timeout)
    assert isinstance(item, Event), f"nothing within {timeout}s"
    return item


async def listening(hub: LiveHub) -> None:
    async def up() -> bool:
        return hub.listening

    await eventually(up, 10, "the hub to LISTEN")


async def caught_up(hub: LiveHub) -> None:
    """Wait until the watcher's catch-up tick after LISTEN is over.

    The watcher sets up LISTEN before it ticks, in each turn of its loop (starter/web/live/
    hub.py, `_watch`). Once LISTEN is up it wakes itself and starts the catch-up tick next,
    counting its query (`queries`) without yielding to the loop in between; if the first
    subscriber's cursor was not set yet, it ticks as soon as `subscribe` (which the caller
    has awaited) sets it. So with LISTEN up, at least one tick done and none under way
    (`ticks` counts a tick once its query has returned), the catch-up is over, even if
    LISTEN came up only on a retry, after polling ticks. Nothing else wakes the watcher but
    a notification or the fallback poll (a minute away): the queries counted from here on
    are the test's own.
    """

    async def done() -> bool:
        return hub.listening and hub.ticks >= 1 and hub.ticks == hub.queries

    await eventually(done, 10, "the catch-up tick after LISTEN")


async def test_notify_wakes_the_hub_long_before_its_fallback_poll(
    pg_sessions: tuple[str, async_sessionmaker[AsyncSession]],
) -> None:
    _, sessions = pg_sessions
    hub = LiveHub(sessions, fallback_interval=FALLBACK)
    try:
        sub = await hub.subscribe(admin())
        await listening(hub)
        await caught_up(hub)
        queries = hub.queries
        for action in ("first", "second", "third"):
            started = time.monotonic()
            new_id = await insert(sessions, action)
            event = await next_event(sub, 2.0)
            assert (event.id, event.data["action"]) == (new_id, action)
            assert time.monotonic() - started < 1.0
        assert hub.notifications >= 3
        assert hub.queries - queries <= 3  # one query per wake-up, no polling in between
    finally:
        await hub.stop()
    assert not hub.listening


async def test_a_late_commit_of_a_lower_id_still_arrives(
    pg_sessions: tuple[str, async_sessionmaker[AsyncSession]],
) -> None:
    """Two writers: id n commits after n+1. The hub remembers n and delivers it when it comes."""
    _, sessions = pg_sessions
    hub = LiveHub(sessions, fallback_interval=FALLBACK)
    try:
        sub = await hub.subscribe(admin())
        await listening(hub)
        async with write_session(sessions) as slow:
            early = row("slow")
            slow.add(early)
            await slow.flush()  # id taken, not committed
            fast = await insert(sessions, "fast")
            assert fast > early.id
            assert (await next_event(sub, 2.0)).id == fast
        event = await next_event(sub, 2.0)  # committed on leaving the block
        assert (event.id, event.data["action"]) == (early.id, "slow")
    finally:
        await hub.stop()


async def test_the_hub_polls_while_notifications_are_off(
    pg_sessions: tuple[str, async_sessionmaker[AsyncSession]],
) -> None:
    """Without LISTEN (or the trigger) the same rows still arrive, by polling."""
    _, sessions = pg_sessions
    hub = LiveHub(sessions, listen=False, poll_interval=0.1)
    try:
        sub = await hub.subscribe(admin())
        new_id = await insert(sessions, "polled")
        assert (await next_event(sub, 2.0)).id == new_id
        assert not hub.listening and hub.notifications == 0
    finally:
        await hub.stop()


async def test_the_trigger_is_postgresql_only_and_goes_with_a_downgrade(
    pg_sessions: tuple[str, async_sessionmaker[AsyncSession]],
) -> None:
    url, sessions = pg_sessions
    query = text("SELECT count(*) FROM pg_trigger WHERE tgname = 'order_log_notify'")
    async with sessions() as s:
        assert await s.scalar(query) == 1
    await asyncio.to_thread(downgrade, url, "0002")
    async with sessions() as s:
        assert await s.scalar(query) == 0
        assert await s.scalar(text("SELECT to_regproc('order_log_notify')")) is None
    await upgrade_async(url)
    async with sessions() as s:
        assert await s.scalar(query) == 1
