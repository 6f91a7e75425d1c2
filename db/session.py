"""Async engine and session factory for SQLite (default) and PostgreSQL.

Writers go through `write_session`. SQLite allows one writer at a time; on its own it makes
waiting writers poll with sleeps of up to 100 ms (the busy handler), and a transaction holds the
lock across every await of its statements. Under load that turned a 1 ms transaction into a
180 ms wait (measured by bench/lifecycle.py). So the writers of one process queue on an asyncio
lock first and are woken the moment the previous one commits; only writers of *other* processes
(API and worker share the file) still find it locked, and wait for it with asyncio. SQLite's
statements run on the event loop's thread (db/inline_sqlite.py), not on aiosqlite's. Readers
take a plain deferred BEGIN, a WAL snapshot that never waits for writers. On PostgreSQL readers
run in autocommit and writers in a READ COMMITTED transaction (`make_session_factory`); a write
that is one statement (`write_one`, `insert_if_absent`) runs in autocommit, atomic on its own.
"""

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from sqlalchemy import Engine, Executable, Row, Table, event, insert, make_url
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import ORMExecuteState, Session

from db.inline_sqlite import connector
from db.tables import Base


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    if url.startswith("sqlite"):
        database = make_url(url).database or ":memory:"
        engine = create_async_engine(url, async_creator=connector(database), **kwargs)
        _tune_sqlite(engine)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    # No pre-ping on checkout: with asyncpg it is three round trips (BEGIN, a ping, ROLLBACK)
    # before every short session (py-spy under bench.api_load). A connection the server
    # dropped fails its statement instead, SQLAlchemy then invalidates the whole pool, and the
    # caller's retry (the API answers 503 + Retry-After; an activity is retried by Temporal)
    # gets a fresh one. pool_recycle retires connections before idle timeouts.
    kwargs.setdefault("pool_pre_ping", False)
    kwargs.setdefault("pool_recycle", 1800)
    return create_async_engine(url, **kwargs)


def _tune_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transactions into our own hands (pysqlite's implicit BEGIN is deferred).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # No busy handler: it would sleep on the event loop's thread (db/inline_sqlite.py
        # waits for a lock with asyncio instead).
        cur.execute("PRAGMA busy_timeout=0")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front: a deferred transaction that
        # reads then writes can fail with SQLITE_BUSY without waiting.
        write = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


_WRITE = "orders_write"
_PG_WRITES = "READ COMMITTED"  # PostgreSQL's default, asked for explicitly by write_session
_gates: weakref.WeakKeyDictionary[Engine, dict[asyncio.AbstractEventLoop, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def _gate(engine: Engine) -> asyncio.Lock | None:
    """The in-process writer queue of a SQLite engine (one per event loop); None elsewhere."""
    if engine.dialect.name != "sqlite":
        return None
    per_loop = _gates.setdefault(engine, {})
    loop = asyncio.get_running_loop()
    lock = per_loop.get(loop)
    if lock is None:
        lock = per_loop[loop] = asyncio.Lock()
    return lock


@asynccontextmanager
async def write_session(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session in a write transaction: committed on exit, rolled back on error."""
    bind = _engine_of(sessions)
    gate = _gate(bind.sync_engine)
    options: dict[str, Any] = {_WRITE: True}
    if bind.dialect.name == "postgresql":
        options["isolation_level"] = _PG_WRITES  # the factory's reads run without one
    async with _held(gate), sessions() as session, session.begin():
        session.info[_WRITE] = True
        await session.connection(execution_options=options)
        yield session
        await session.flush()
        await _insert_appended(session)


async def write_one(
    sessions: async_sessionmaker[AsyncSession], statement: Executable
) -> list[Row[Any]]:
    """Run one write statement as a transaction of its own; the rows it returns, if any.

    On PostgreSQL a single statement in autocommit is atomic on its own, so it goes without
    the BEGIN and COMMIT that `write_session` sends: one round trip instead of three (the
    API's idempotency keys write twice per command, bench/README.md). On SQLite it queues for
    the write lock like any other writer.
    """
    bind = _engine_of(sessions)
    if bind.dialect.name != "postgresql":
        async with write_session(sessions) as s:
            return await _rows(await s.connection(), statement)
    async with bind.connect() as conn:  # the factory's engine: AUTOCOMMIT
        return await _rows(conn, statement)


async def _rows(conn: AsyncConnection, statement: Executable) -> list[Row[Any]]:
    result = await conn.execute(statement)
    return list(result.all()) if result.returns_rows else []


async def insert_if_absent(
    sessions: async_sessionmaker[AsyncSession], model: type[Base], row: dict[str, Any]
) -> bool:
    """Insert `row` unless its primary key is taken; whether this call inserted it.

    One statement (INSERT … ON CONFLICT DO NOTHING RETURNING), so a caller that races another
    for the same key learns who won without reading first or catching an integrity error.
    """
    table = cast(Table, model.__table__)
    key = list(table.primary_key.columns)
    insert_ = dialect_insert(_engine_of(sessions).dialect.name, table)
    statement = insert_.values(row).on_conflict_do_nothing().returning(*key)
    return bool(await write_one(sessions, statement))


def dialect_insert(dialect: str, table: Any) -> postgresql.Insert | sqlite.Insert:
    """An INSERT of `dialect` (the name of an engine's or a session's bind), for its ON
    CONFLICT clauses, which both read models support and plain `insert` does not offer."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"the read model runs on SQLite or PostgreSQL, not {dialect!r}")


def _engine_of(sessions: async_sessionmaker[AsyncSession]) -> AsyncEngine:
    bind = sessions.kw.get("bind")
    if not isinstance(bind, AsyncEngine):
        raise TypeError("the read model's writers need a session factory bound to an AsyncEngine")
    return bind


_APPENDED = "orders.appended_rows"


def append_row(session: AsyncSession, model: type[Base], row: dict[str, Any]) -> None:
    """Insert `row` into `model`'s table when the write session commits.

    For new rows nothing reads back in the same transaction (the order log, notifications,
    idempotency keys, a new order's rows): they skip the ORM's identity map and unit of work.
    The rows of one table go in one statement, in the order they were appended; tables go in
    the order of their first row, after everything the session flushed, so a row appended
    after the rows it refers to finds them. Every row of a table needs the same keys. As ORM
    objects these rows were a fifth of the worker's database CPU (bench/README.md).
    """
    pending: dict[Table, list[dict[str, Any]]] = session.info.setdefault(_APPENDED, {})
    pending.setdefault(cast(Table, model.__table__), []).append(row)


async def _insert_appended(session: AsyncSession) -> None:
    pending: dict[Table, list[dict[str, Any]]] = session.info.pop(_APPENDED, {})
    if not pending:
        return
    conn = await session.connection()
    for table, rows in pending.items():
        await conn.execute(insert(table), rows)


@asynccontextmanager
async def _held(lock: asyncio.Lock | None) -> AsyncIterator[None]:
    if lock is None:
        yield
        return
    async with lock:
        yield


class _ReadsInAutocommit(Session):
    """A session of the PostgreSQL factory: it reads in autocommit, where a write would be
    committed statement by statement, so it writes only inside `write_session`."""


def _refuse_outside_write_session(session: Session) -> None:
    if not session.info.get(_WRITE):
        raise RuntimeError(
            "a write outside db.session.write_session: this session reads in autocommit"
        )


@event.listens_for(_ReadsInAutocommit, "before_flush")
def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    _refuse_outside_write_session(session)


@event.listens_for(_ReadsInAutocommit, "do_orm_execute")
def _before_execute(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        _refuse_outside_write_session(state.session)


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for `engine`; on PostgreSQL a plain session reads in autocommit.

    A read session in a transaction costs a BEGIN and a ROLLBACK, two more round trips than its
    queries, and a tenth of the API's CPU went to them (bench/README.md). At PostgreSQL's READ
    COMMITTED every statement of a transaction takes a snapshot of its own anyway, so a read sees
    nothing different without one. Writes ask for READ COMMITTED in `write_session` and stay one
    transaction; a plain session that writes is refused (it would commit statement by statement).
    SQLite keeps its transactions: there a read transaction is one WAL snapshot across all its
    statements.
    """
    if engine.dialect.name == "postgresql":
        return async_sessionmaker(
            engine.execution_options(isolation_level="AUTOCOMMIT"),
            expire_on_commit=False,
            sync_session_class=_ReadsInAutocommit,
        )
    return async_sessionmaker(engine, expire_on_commit=False)


async def create_all(engine: AsyncEngine) -> None:
    """Create tables directly (tests); deployments run Alembic migrations."""
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
