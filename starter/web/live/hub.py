"""`LiveHub`: the one `order_log` watcher of an app, and the fan-out to its subscribers.

It follows the change feed (starter.web.live.feed) with one query per tick — woken by
PostgreSQL's LISTEN/NOTIFY, or polling on SQLite and as a fallback — remembers the ids a
late commit may still fill, dispatches each row to the subscribers of its topics, replays
what a reconnecting page missed, goes idle with no subscribers, and ends every stream when
the server exits. The package docstring (starter.web.live) explains the design.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, or_
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from db.tables import OrderLog
from starter.web.live.events import Change, Event, event_for
from starter.web.live.feed import changes_query, log_batch, newest_id, replay_filter, to_changes
from starter.web.live.shutdown import uvicorn_server_of
from starter.web.live.subscription import Subscription
from starter.web.live.topics import Grant

log = logging.getLogger("starter.web.live")  # one logger for the whole package

CHANNEL = "order_log"  # pg_notify channel of the trigger (migration 0003_order_log_notify)
MAX_GAP_SPAN = 1000  # ids remembered after one jump of the cursor
SHUTDOWN_CHECK = 0.25  # seconds between looks at the server's should_exit


class HubClosed(Exception):
    pass


@dataclass
class LiveHub:
    """The one `order_log` watcher of an app, and its subscribers (see the package doc)."""

    sessions: async_sessionmaker[AsyncSession]
    app: object | None = None  # served by uvicorn: streams end when the server exits
    poll_interval: float = 0.5
    fallback_interval: float = 10.0  # PostgreSQL with LISTEN: poll this rarely
    listen: bool = True  # use LISTEN/NOTIFY on PostgreSQL
    heartbeat: float = 15.0
    batch: int = 500
    queue_size: int = 100
    replay_limit: int = 500
    gap_timeout: float = 30.0
    idle_after: float = 30.0
    # counters (tests, diagnostics)
    queries: int = field(default=0, init=False)  # watcher queries: one per tick
    ticks: int = field(default=0, init=False)
    replays: int = field(default=0, init=False)
    notifications: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        bind = self.sessions.kw.get("bind")
        if not isinstance(bind, AsyncEngine):
            raise TypeError("LiveHub needs a session factory bound to an AsyncEngine")
        self._engine: AsyncEngine = bind
        self._subs: set[Subscription] = set()
        self._by_topic: dict[str, set[Subscription]] = {}
        self._cursor: int | None = None  # newest id seen; None while idle
        self._gaps: dict[int, float] = {}  # id skipped by the cursor → give up at (loop time)
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._server: Any = None
        self._listen_conn: AsyncConnection | None = None
        self._listen_driver: Any = None
        self._listening = False

    # -- public ----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def listening(self) -> bool:
        """True while PostgreSQL notifications wake the watcher."""
        return self._listening

    @property
    def cursor(self) -> int | None:
        """The newest id the watcher has read (None while idle)."""
        return self._cursor

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    async def subscribe(self, grant: Grant) -> Subscription:
        if self._closed:
            raise HubClosed("the server is shutting down")
        self._start()
        async with self._lock:
            if self._cursor is None:
                self._cursor = await newest_id(self.sessions)
                self._gaps.clear()
            sub = Subscription(grant, self.queue_size, upto=self._cursor)
            self._subs.add(sub)
            for topic in grant.topics:
                self._by_topic.setdefault(topic, set()).add(sub)
        if self._closed:  # closed while waiting for the lock
            sub.close()
        self._wake.set()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        sub.close()
        self._subs.discard(sub)
        for topic in sub.grant.topics:
            subs = self._by_topic.get(topic)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._by_topic[topic]

    async def replay(self, grant: Grant, after: int, upto: int) -> list[Event]:
        """The events of rows `after < id <= upto` for this grant, oldest first (bounded)."""
        if after >= upto:
            return []
        batch = log_batch(
            [OrderLog.id > after, OrderLog.id <= upto, replay_filter(grant)],
            self.replay_limit,
            newest_first=True,
        )
        self.replays += 1
        async with self.sessions() as s:
            rows = (await s.execute(changes_query(batch))).all()
        return [e for c in to_changes(rows) if (e := event_for(grant, c)) is not None]

    async def stop(self) -> None:
        """End every stream and the watcher (app shutdown)."""
        self._close_streams()
        task, self._task = self._task, None
        if task is not None:
            self._wake.set()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._unlisten()

    # -- the watcher ---------------------------------------------------------------------------

    def _start(self) -> None:
        if self._task is not None:
            return
        if self.app is not None and self._server is None:
            self._server = uvicorn_server_of(self.app)
        self._task = asyncio.create_task(self._watch(), name="live-hub")

    def _close_streams(self) -> None:
        self._closed = True
        for sub in list(self._subs):
            sub.close()

    def _interval(self) -> float:
        return self.fallback_interval if self._listening else self.poll_interval

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        next_listen = loop.time()
        idle_since: float | None = None
        failures = 0
        try:
            while not self._closed:
                if self._server is not None and getattr(self._server, "should_exit", False):
                    log.info("server exiting: closing %d live stream(s)", len(self._subs))
                    self._close_streams()
                    break
                now = loop.time()
                if self._subs:
                    idle_since = None
                elif idle_since is None:
                    idle_since = now
                elif now - idle_since >= self.idle_after and self._cursor is not None:
                    async with self._lock:
                        if not self._subs:
                            self._cursor = None  # the next subscriber starts from the newest id
                            self._gaps.clear()
                if self._want_listen() and not self._listening and now >= next_listen:
                    if await self._listen():
                        self._wake.set()  # catch up on what came before LISTEN
                    else:
                        next_listen = loop.time() + max(self.poll_interval, 5.0)
                if self._cursor is None:
                    self._wake.clear()
                elif self._wake.is_set() or now >= next_tick:
                    self._wake.clear()
                    try:
                        full = await self._tick()
                        failures = 0
                    except (SQLAlchemyError, OSError) as err:
                        failures += 1
                        log.warning("live updates: reading order_log failed: %s", err)
                        full = False
                    backoff = min(self.poll_interval * 2**failures, 10.0) if failures else 0.0
                    next_tick = loop.time() + (0.0 if full else max(self._interval(), backoff))
                wait = min(max(next_tick - loop.time(), 0.0), SHUTDOWN_CHECK)
                if self._cursor is None:
                    wait = SHUTDOWN_CHECK
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
        finally:
            await self._unlisten()

    def _live_gaps(self) -> list[int]:
        now = asyncio.get_running_loop().time()
        for gap in [g for g, until in self._gaps.items() if until < now]:
            del self._gaps[gap]
        return sorted(self._gaps)

    async def _tick(self) -> bool:
        """One query: the rows after the cursor (and late ones below it); fan them out.

        True when the batch was full (more rows are waiting).
        """
        async with self._lock:
            if self._cursor is None:
                return False
            gaps = self._live_gaps()
            newer: ColumnElement[bool] = OrderLog.id > self._cursor
            where = or_(newer, OrderLog.id.in_(gaps)) if gaps else newer
            self.queries += 1
            async with self.sessions() as s:
                rows = (await s.execute(changes_query(log_batch([where], self.batch)))).all()
            changes = to_changes(rows)
            until = asyncio.get_running_loop().time() + self.gap_timeout
            for change in changes:
                if change.id in self._gaps:
                    del self._gaps[change.id]
                elif change.id > self._cursor:
                    for skipped in range(
                        max(self._cursor + 1, change.id - MAX_GAP_SPAN), change.id
                    ):
                        self._gaps[skipped] = until
                    self._cursor = change.id
                else:
                    continue  # an expired gap that turned up after all: already given up
                self._dispatch(change)
            self.ticks += 1
            return len(changes) >= self.batch

    def _dispatch(self, change: Change) -> None:
        told: set[Subscription] = set()
        for topic in change.topics():
            for sub in self._by_topic.get(topic, ()):
                if sub in told:
                    continue
                told.add(sub)
                event = event_for(sub.grant, change)
                if event is not None:
                    sub.offer(event)

    # -- PostgreSQL LISTEN -----------------------------------------------------------------------

    def _want_listen(self) -> bool:
        return self.listen and self._engine.dialect.name == "postgresql"

    def _on_notify(self, *_: object) -> None:
        self.notifications += 1
        self._wake.set()

    def _on_lost(self, *_: object) -> None:
        log.warning("live updates: LISTEN connection lost; polling until it is back")
        self._listening = False
        self._wake.set()

    async def _listen(self) -> bool:
        await self._unlisten()
        try:
            conn = await self._engine.connect()
        except (SQLAlchemyError, OSError) as err:
            log.warning("live updates: cannot LISTEN (%s); polling instead", err)
            return False
        try:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            if driver is None:
                raise RuntimeError("no driver connection")
            await driver.add_listener(CHANNEL, self._on_notify)
            driver.add_termination_listener(self._on_lost)
        except Exception as err:
            log.warning("live updates: cannot LISTEN (%s); polling instead", err)
            with contextlib.suppress(Exception):
                await conn.invalidate()
                await conn.close()
            return False
        self._listen_conn, self._listen_driver = conn, driver
        self._listening = True
        return True

    async def _unlisten(self) -> None:
        conn, driver = self._listen_conn, self._listen_driver
        self._listen_conn = self._listen_driver = None
        self._listening = False
        if conn is None:
            return
        with contextlib.suppress(Exception):
            driver.remove_termination_listener(self._on_lost)
        # A connection that LISTENed never goes back to the pool.
        with contextlib.suppress(Exception):
            await conn.invalidate()
        with contextlib.suppress(Exception):
            await conn.close()
