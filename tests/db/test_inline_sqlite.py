"""db.inline_sqlite: SQLite statements run on the loop's thread, and a lock is waited for
with asyncio, never by sleeping on that thread.

The other writer here is a plain `sqlite3` connection on the same file, standing in for
another process (the API and the worker share the file).
"""

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db import inline_sqlite
from db.session import create_all, make_engine, make_session_factory, write_session
from db.tables import Customer
from tests.api.helpers import eventually


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "inline.db"


@pytest.fixture
async def engine(db_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(f"sqlite+aiosqlite:///{db_path}")
    await create_all(engine)
    yield engine
    await engine.dispose()


async def _add(sessions: async_sessionmaker[AsyncSession], cid: str) -> None:
    async with write_session(sessions) as s:
        s.add(Customer(id=cid, name=cid, coins=Decimal("1.00"), default_address=None))


async def _ids(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    async with sessions() as s:
        return list((await s.scalars(select(Customer.id).order_by(Customer.id))).all())


async def test_statements_run_on_the_event_loops_thread(engine: AsyncEngine) -> None:
    seen: list[int] = []

    def thread_id() -> int:
        seen.append(threading.get_ident())
        return 1

    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.driver_connection, inline_sqlite.InlineConnection)
        raw.driver_connection._conn.create_function("thread_id", 0, thread_id)
        assert (await conn.execute(text("SELECT thread_id()"))).scalar() == 1
    assert seen == [threading.get_ident()]


async def test_a_writer_waits_for_another_process_without_blocking_the_loop(
    engine: AsyncEngine, db_path: Path
) -> None:
    sessions = make_session_factory(engine)
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO customers (id, name, coins) VALUES ('other', 'other', 0)")
    waits_before = inline_sqlite.busy_waits
    writer = asyncio.create_task(_add(sessions, "mine"))
    # The loop keeps running other work while the writer waits, shown without a clock: this
    # coroutine sees the writer's count of waits for the lock (busy_waits) go up between two
    # of its own steps while the writer is not done. So the writer was waiting both before
    # and after one of this coroutine's steps: the loop ran it in the middle of the wait. (It
    # cannot be done: `other` holds the lock until it commits below.) Had the writer waited
    # by sleeping on this thread, all its waits would fall between two steps of this
    # coroutine, which would see the count change at most once, when the wait was over.
    seen: set[int] = set()

    async def waiting() -> bool:
        if writer.done():
            return True  # (fails below)
        if inline_sqlite.busy_waits > waits_before:
            seen.add(inline_sqlite.busy_waits)
        return len(seen) >= 2

    await eventually(waiting, 10, "the writer to wait for the lock while this coroutine runs")
    assert not writer.done()
    assert inline_sqlite.busy_waits > waits_before
    other.execute("COMMIT")
    other.close()
    await asyncio.wait_for(writer, 10)
    assert await _ids(sessions) == ["mine", "other"]
    # Nor does a single attempt wait: SQLite's busy handler would sleep inside the
    # statement, on this thread, between the waits counted above (db/session.py turns it
    # off on every connection).
    async with engine.connect() as conn:
        assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == 0


async def test_a_lock_held_past_the_deadline_fails_the_writer_and_changes_nothing(
    engine: AsyncEngine, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inline_sqlite, "BUSY_DEADLINE_S", 0.2)
    sessions = make_session_factory(engine)
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(OperationalError, match="locked"):
            await _add(sessions, "mine")
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert await _ids(sessions) == []
    await _add(sessions, "later")  # the pool's connection is still good afterwards
    assert await _ids(sessions) == ["later"]


async def test_readers_do_not_wait_for_a_writer(engine: AsyncEngine, db_path: Path) -> None:
    sessions = make_session_factory(engine)
    await _add(sessions, "committed")
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO customers (id, name, coins) VALUES ('open', 'open', 0)")
    try:
        waits_before = inline_sqlite.busy_waits
        assert await _ids(sessions) == ["committed"]  # a WAL snapshot, taken at once
        assert inline_sqlite.busy_waits == waits_before
    finally:
        other.execute("ROLLBACK")
        other.close()


@pytest.mark.parametrize(
    ("code", "waits"),
    [
        (sqlite3.SQLITE_BUSY, True),
        (sqlite3.SQLITE_LOCKED, True),
        (sqlite3.SQLITE_BUSY_RECOVERY, True),
        (sqlite3.SQLITE_BUSY_SNAPSHOT, False),  # a stale read snapshot never gets to write
        (sqlite3.SQLITE_ERROR, False),
        (sqlite3.SQLITE_READONLY, False),
    ],
)
def test_which_errors_are_waited_out(code: int, waits: bool) -> None:
    err = sqlite3.OperationalError("database is locked")
    err.sqlite_errorcode = code
    assert inline_sqlite._busy(err) is waits
