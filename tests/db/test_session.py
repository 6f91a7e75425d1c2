"""db.session.write_session: how the read model's writers take turns.

On SQLite one writer holds the lock at a time; writers of one process queue on an in-process
lock (no busy-handler sleeps) and open with BEGIN IMMEDIATE, readers with a deferred BEGIN.
On PostgreSQL readers run in autocommit, writers in a READ COMMITTED transaction. On both
databases a write session commits on success and rolls back on error.
"""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event, func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db import inline_sqlite
from db.session import (
    append_row,
    create_all,
    insert_if_absent,
    make_engine,
    make_session_factory,
    write_one,
    write_session,
)
from db.tables import Customer, IdempotencyKey, Order, OrderLog
from tests.support.read_model import empty_read_model


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> Any:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/session.db")
    await create_all(engine)
    yield engine
    await engine.dispose()


async def _coins(sessions: async_sessionmaker[AsyncSession], cid: str) -> Decimal | None:
    async with sessions() as s:
        return await s.scalar(select(Customer.coins).where(Customer.id == cid))


async def test_writers_of_one_process_queue_instead_of_meeting_the_lock(
    sqlite_engine: AsyncEngine,
) -> None:
    # A writer that found the file locked would wait for it (db/inline_sqlite.py counts each
    # wait): none waiting while 40 writers run at once shows they took turns in-process,
    # and the counter shows no update was lost.
    sessions = make_session_factory(sqlite_engine)
    async with write_session(sessions) as s:
        s.add(Customer(id="c1", name="c1", coins=Decimal("0"), default_address=None))

    async def add_one() -> None:
        async with write_session(sessions) as s:
            row = await s.get(Customer, "c1")
            assert row is not None
            seen = row.coins
            await asyncio.sleep(0)  # let every other writer try to interleave here
            row.coins = seen + 1

    waits_before = inline_sqlite.busy_waits
    await asyncio.gather(*(add_one() for _ in range(40)))
    assert await _coins(sessions, "c1") == Decimal("40")
    assert inline_sqlite.busy_waits == waits_before


async def test_writers_begin_immediate_and_readers_deferred(sqlite_engine: AsyncEngine) -> None:
    sessions = make_session_factory(sqlite_engine)
    begins: list[str] = []

    @event.listens_for(sqlite_engine.sync_engine, "before_cursor_execute")
    def _seen(_c: Any, _cur: Any, stmt: str, *_: Any) -> None:
        if stmt.startswith("BEGIN"):
            begins.append(stmt)

    async with write_session(sessions) as s:
        await s.get(Customer, "nobody")
    async with sessions() as s:
        await s.get(Customer, "nobody")
    assert begins == ["BEGIN IMMEDIATE", "BEGIN"]


@pytest.fixture(params=["sqlite", "postgres"])
async def sessions(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Empty tables on a SQLite file, then on the session's PostgreSQL."""
    async with empty_read_model(request.param, request, tmp_path) as factory:
        yield factory


async def test_write_session_commits_or_rolls_back(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with write_session(sessions) as s:
        s.add(Customer(id="kept", name="k", coins=Decimal("1"), default_address=None))
    with pytest.raises(RuntimeError, match="boom"):
        async with write_session(sessions) as s:
            s.add(Customer(id="gone", name="g", coins=Decimal("1"), default_address=None))
            await s.flush()
            raise RuntimeError("boom")
    assert await _coins(sessions, "kept") == Decimal("1")
    assert await _coins(sessions, "gone") is None


async def test_postgres_reads_run_without_a_transaction_and_writes_in_one(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    # transaction_timestamp() is fixed for a transaction: two statements of one transaction
    # see the same, two statements in autocommit (each a transaction of its own) do not.
    started = text("SELECT transaction_timestamp()")

    async def one_transaction(s: AsyncSession) -> bool:
        return bool(await s.scalar(started) == await s.scalar(started))

    async with empty_read_model("postgres", request, tmp_path) as sessions:
        async with sessions() as s:
            assert not await one_transaction(s)
        async with write_session(sessions) as s:
            assert await one_transaction(s)
            assert await s.scalar(text("SHOW transaction_isolation")) == "read committed"
        async with sessions() as s:  # the pooled connection is back in autocommit
            assert not await one_transaction(s)
        # A plain session would commit a write statement by statement: refused, nothing kept.
        with pytest.raises(RuntimeError, match="a write outside"):
            async with sessions() as s:
                s.add(Customer(id="plain", name="p", coins=Decimal("1"), default_address=None))
                await s.flush()
        with pytest.raises(RuntimeError, match="a write outside"):
            async with sessions() as s:
                await s.execute(update(Customer).values(coins=Decimal("2")))
        assert await _coins(sessions, "plain") is None


def _key_row(key: str, seed: str) -> dict[str, Any]:
    return {
        "key": key,
        "scope": "test",
        "request_hash": None,
        "result": {"seed": seed},
        "created_at": datetime(2025, 3, 1, tzinfo=UTC),
    }


async def test_insert_if_absent_lets_exactly_one_racer_in_and_keeps_its_row(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    won = await asyncio.gather(
        *(insert_if_absent(sessions, IdempotencyKey, _key_row("k", f"s{i}")) for i in range(12))
    )
    assert sorted(won) == [False] * 11 + [True]
    async with sessions() as s:
        row = await s.get(IdempotencyKey, "k")
    assert row is not None and row.result == {"seed": f"s{won.index(True)}"}
    assert not await insert_if_absent(sessions, IdempotencyKey, _key_row("k", "late"))
    assert await insert_if_absent(sessions, IdempotencyKey, _key_row("other", "o"))


async def test_write_one_applies_its_statement_and_returns_its_rows(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await insert_if_absent(sessions, IdempotencyKey, _key_row("k", "s"))
    rows = await write_one(
        sessions,
        update(IdempotencyKey)
        .where(IdempotencyKey.key == "k")
        .values(status_code=201)
        .returning(IdempotencyKey.key),
    )
    assert [r.key for r in rows] == ["k"]
    assert await write_one(sessions, update(IdempotencyKey).values(scope="all")) == []
    async with sessions() as s:
        row = await s.get(IdempotencyKey, "k")
    assert row is not None and (row.status_code, row.scope) == (201, "all")


async def test_postgres_write_one_sends_no_begin_and_commit(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # asyncpg sends BEGIN when it starts a Transaction: count them. A write session sends one
    # (which shows the count works); write_one's single statement runs in autocommit.
    begun: list[object] = []
    start = asyncpg.transaction.Transaction.start

    async def counted(self: asyncpg.transaction.Transaction) -> None:
        begun.append(self)
        await start(self)

    monkeypatch.setattr(asyncpg.transaction.Transaction, "start", counted)
    async with empty_read_model("postgres", request, tmp_path) as sessions:
        begun.clear()  # creating the tables
        async with write_session(sessions) as s:
            s.add(IdempotencyKey(**_key_row("in-session", "s")))
        assert len(begun) == 1  # no pre-ping's BEGIN on checkout either
        assert await insert_if_absent(sessions, IdempotencyKey, _key_row("k", "s"))
        await write_one(sessions, update(IdempotencyKey).values(status_code=200))
        assert len(begun) == 1
        async with sessions() as s:
            codes = await s.scalars(select(IdempotencyKey.status_code))
            assert list(codes) == [200, 200]


async def test_postgres_pool_recovers_from_dropped_connections_on_the_next_attempt(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    # The pool does not pre-ping. When the server drops its connections (a restart, a
    # failover), the next statement on a pooled one fails once, SQLAlchemy invalidates the
    # pool, and the caller's retry (503 + Retry-After in the API, Temporal's for an activity)
    # runs on a fresh connection.
    async with empty_read_model("postgres", request, tmp_path) as sessions:
        held = [sessions() for _ in range(3)]  # three pooled connections
        for s in held:
            await s.scalar(text("SELECT 1"))
        for s in held:
            await s.close()
        async with sessions() as s:
            killer = await s.scalar(text("SELECT pg_backend_pid()"))
            await s.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        with pytest.raises(DBAPIError) as failed:
            async with sessions() as s:
                assert await s.scalar(text("SELECT pg_backend_pid()")) != killer
                await s.scalar(text("SELECT 1"))
                await s.scalar(text("SELECT 1"))
        assert failed.value.connection_invalidated
        for _ in range(3):  # every connection after the failure is a fresh, working one
            assert await insert_if_absent(sessions, IdempotencyKey, _key_row(f"k{_}", "s"))


async def test_appended_rows_go_in_at_commit_after_their_parents_or_not_at_all(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    at = datetime(2025, 3, 1, tzinfo=UTC)

    def entry(order_no: str, action: str) -> dict[str, Any]:
        return {
            "order_no": order_no,
            "supplier_order_id": None,
            "actor": "system",
            "actor_id": "",
            "action": action,
            "detail": {"n": action},
            "at": at,
        }

    def order(order_no: str) -> dict[str, Any]:
        money = {k: Decimal("1") for k in ("subtotal", "payable")}
        return {
            "order_no": order_no,
            "customer_id": "c1",
            "status": "PENDING_PAYMENT",
            **money,
            "postage": Decimal("0"),
            "coins": Decimal("0"),
            "pay_deadline": at,
            "created_at": at,
            "plan": {"order_no": order_no},
        }

    async with write_session(sessions) as s:
        # Appended child-first within the session, but tables go in the order of their first
        # row (the order first), and each table's rows keep their order.
        append_row(s, Order, order("o1"))
        append_row(s, OrderLog, entry("o1", "first"))
        append_row(s, OrderLog, entry("o1", "second"))
        append_row(s, Order, order("o2"))
        append_row(s, OrderLog, entry("o2", "third"))
        assert await s.scalar(select(func.count()).select_from(OrderLog)) == 0
    with pytest.raises(RuntimeError, match="boom"):
        async with write_session(sessions) as s:
            append_row(s, OrderLog, entry("o1", "lost"))
            raise RuntimeError("boom")
    async with sessions() as s:
        rows = (await s.execute(select(OrderLog).order_by(OrderLog.id))).scalars().all()
    assert [(r.order_no, r.action, r.detail, r.at) for r in rows] == [
        ("o1", "first", {"n": "first"}, at),
        ("o1", "second", {"n": "second"}, at),
        ("o2", "third", {"n": "third"}, at),
    ]
