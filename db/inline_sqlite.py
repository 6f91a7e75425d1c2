"""SQLite for the async engine, run on the event loop's own thread instead of aiosqlite's.

aiosqlite gives each connection a thread and sends every call there and back: opening a
cursor, executing, fetching and closing each cost a queue put, a thread wake-up and a
`call_soon_threadsafe` back to the loop. A read-model activity runs about ten statements, so
it paid some forty round trips, and profiling the worker under load put that plumbing among
its largest costs (bench/README.md). SQLite itself answers these statements in microseconds
(WAL, `synchronous=NORMAL`, a local file), so here they run inline.

What must not happen inline is *waiting*: SQLite's busy handler sleeps in the calling thread
until another process's writer commits, and that thread is now the event loop. So these
connections are opened with no busy timeout, and a statement that finds the database locked
(`SQLITE_BUSY`, which leaves the statement unapplied: BEGIN and COMMIT can be retried) is tried
again after an `asyncio.sleep`, up to the same 30 s deadline the busy timeout gave.

The objects below are the small part of aiosqlite's interface that SQLAlchemy's `aiosqlite`
dialect uses (`sqlalchemy.dialects.sqlite.aiosqlite`); the dialect, its type handling and the
pool stay as they are.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

BUSY_DEADLINE_S = 30.0
_FIRST_PAUSE_S = 0.001
_LONGEST_PAUSE_S = 0.05

T = TypeVar("T")

# How many times a statement of this process found the database locked and waited:
# writers of one process queue on db.session's in-process gate, so only another
# process's writer should ever make this grow.
busy_waits = 0


def _busy(err: sqlite3.OperationalError) -> bool:
    """Locked by another connection, so worth trying again: the cases SQLite's busy handler
    would have waited for. Not SQLITE_BUSY_SNAPSHOT: a read transaction whose snapshot is
    stale can never write, and the busy handler does not wait for it either."""
    code = getattr(err, "sqlite_errorcode", None)
    if code is None:
        return "locked" in str(err)
    if code == sqlite3.SQLITE_BUSY_SNAPSHOT:
        return False
    return (code & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


async def _patiently(call: Callable[[], T]) -> T:
    """`call()`, tried again while the database is locked by another connection."""
    global busy_waits
    pause = _FIRST_PAUSE_S
    deadline = time.monotonic() + BUSY_DEADLINE_S
    while True:
        try:
            return call()
        except sqlite3.OperationalError as err:
            if not _busy(err) or time.monotonic() >= deadline:
                raise
        busy_waits += 1
        await asyncio.sleep(pause)
        pause = min(pause * 2, _LONGEST_PAUSE_S)


class InlineCursor:
    """An aiosqlite-shaped cursor whose calls run at once on the caller's thread."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> InlineCursor:
        await _patiently(lambda: self._cursor.execute(sql, parameters or ()))
        return self

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> InlineCursor:
        batch = list(rows)  # a retry must see the rows again
        await _patiently(lambda: self._cursor.executemany(sql, batch))
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class _RunNow:
    """Stands in for aiosqlite's request queue, which the dialect uses to set the
    isolation level: the request is carried out on the spot."""

    def put_nowait(self, request: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = request
        try:
            future.set_result(function())
        except Exception as err:  # handed to the awaiting caller, as aiosqlite does
            future.set_exception(err)


class InlineConnection:
    """An aiosqlite-shaped connection over a plain `sqlite3.Connection`."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._connection: sqlite3.Connection | None = conn
        self._tx = _RunNow()

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ValueError("no active connection")
        return self._connection

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor())

    async def commit(self) -> None:
        await _patiently(self._conn.commit)

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def stop(self) -> None:
        """Forced close (SQLAlchemy's terminate); nothing runs elsewhere to stop."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: Any) -> None:  # sqlite3 checks the value itself
        self._conn.isolation_level = value


def connector(database: str) -> Callable[[], Any]:
    """The `async_creator` for `create_async_engine`: an inline connection to `database`.

    `check_same_thread=False` because the pool may close a connection from the thread that
    garbage-collects it; every statement still runs on the loop that opened it.
    """

    async def connect() -> InlineConnection:
        conn = sqlite3.connect(database, timeout=0, check_same_thread=False)
        return InlineConnection(conn)

    return connect
