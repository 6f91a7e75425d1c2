"""Live updates for the pages (DESIGN.md §9): one watcher of `order_log` per app, fanned out.

Every change to an order appends a row to `order_log` (an invariant the tests enforce), so
the log is the change feed. One `LiveHub` per app (per API process) follows it:

- One query per tick, whatever the number of open pages: the log rows after the last id
  seen, oldest first, in batches, joined to `orders` (whose customer) and `supplier_orders`
  (whose supplier, and whether that supplier may see it yet). Rows are then fanned out in
  memory to the subscribers of their topics (`order:<no>`, `customer:<id>`,
  `supplier:<id>`, `admin`).
- On PostgreSQL a trigger on `order_log` does `pg_notify('order_log', id)` (migration
  0003); the hub LISTENs on one connection and runs the same query as soon as a
  notification arrives, polling only every `fallback_interval` in case a notification is
  lost (or while the LISTEN connection is down, every `poll_interval`). On SQLite it polls
  every `poll_interval` (0.5 s).
- PostgreSQL may commit a lower id after a higher one (two concurrent transactions). Ids
  skipped by the cursor are remembered for `gap_timeout` and asked for again, so a late
  commit is still delivered (SQLite has one writer at a time: ids commit in order).
- Each subscriber has a bounded queue; a client that falls behind gets a single `refresh`
  event (its page reloads every live region anyway) instead of a growing backlog.
- A reconnecting page sends the last id it saw (`Last-Event-ID`); the rows after it that it
  may see are read again from the table (at most `replay_limit`) and sent before the live
  ones, each exactly once. A first connection gets nothing old.
- With no subscribers for `idle_after` seconds the hub stops querying; the next subscriber
  starts it again from the newest id.

Who sees what (checked when subscribing, and again for every row): a customer their own
orders; a supplier only its own supplier orders, and only once paid (never a row about an
unpaid order, a row from before the payment, nor another supplier's part of the order); an
admin everything.

uvicorn waits for open responses to end before it runs the app's shutdown, and an event
stream never ends by itself; so the hub finds the uvicorn server serving its app and, when
that server is told to exit, ends every stream at once (`_uvicorn_server_of`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import Request
from sqlalchemy import ColumnElement, Row, Select, and_, exists, false, func, or_, select, true
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased
from sqlalchemy.sql import Subquery

from db.tables import Order, OrderLog, SupplierOrder
from domain.states import SupplierOrderStatus
from starter.api.deps import Sessions
from starter.security import Principal, Role
from starter.web import i18n

log = logging.getLogger(__name__)

CHANNEL = "order_log"  # pg_notify channel of the trigger (migration 0003_order_log_notify)
RETRY_MS = 2000  # how long a browser waits before reconnecting
# Order-level log rows that concern every supplier of the order: the payment that makes
# their supplier orders "paid" (written in the same transaction). Other order-level rows
# (derived order status, refunds of extra payments, buy again...) are the customer's.
FANOUT_TO_SUPPLIERS = ("payment_applied",)
# Customer notices: a package moved.
PACKAGE_NOTICES = {
    "shipped": "Order {no}: a package is on its way",
    "tracking_scanned": "Order {no}: a package has moved",
    "package_delivered": "Order {no}: a package was delivered",
}
SUPPLIER_NOTICES = {"payment_applied": "New paid order {no}"}
TOPIC_KINDS = ("order", "customer", "supplier")
MAX_TOPICS = 32
MAX_TOPIC_VALUE = 100
MAX_GAP_SPAN = 1000  # ids remembered after one jump of the cursor
SHUTDOWN_CHECK = 0.25  # seconds between looks at the server's should_exit


# --- what a row is and who may see it -------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A paid supplier order a row may be told to its supplier about."""

    supplier_id: str
    supplier_order_id: str


@dataclass(frozen=True)
class Change:
    """One `order_log` row, with what the fan-out needs to know about its order."""

    id: int
    order_no: str
    supplier_order_id: str | None
    action: str
    customer_id: str | None
    suppliers: tuple[Target, ...] = ()

    def topics(self) -> set[str]:
        out = {"admin", f"order:{self.order_no}"}
        if self.customer_id:
            out.add(f"customer:{self.customer_id}")
        out.update(f"supplier:{t.supplier_id}" for t in self.suppliers)
        return out


@dataclass(frozen=True)
class Grant:
    """The topics one viewer was allowed to follow (and the language of their notices)."""

    principal: Principal
    topics: frozenset[str]
    locale: str = i18n.DEFAULT_LOCALE

    @property
    def gettext(self) -> Callable[[str], str]:
        return i18n.gettext_for(self.locale)

    def split(self) -> tuple[bool, set[str], set[str], set[str]]:
        """(admin, order numbers, customer ids, supplier ids) of the topics."""
        orders: set[str] = set()
        customers: set[str] = set()
        suppliers: set[str] = set()
        for topic in self.topics:
            kind, _, value = topic.partition(":")
            {"order": orders, "customer": customers, "supplier": suppliers}.get(kind, set()).add(
                value
            )
        return "admin" in self.topics, orders, customers, suppliers


@dataclass(frozen=True)
class Event:
    """One server-sent event (`event: change`)."""

    id: int
    data: dict[str, str | None]
    refresh: bool = False  # stands for events dropped from a full queue

    def encode(self) -> bytes:
        body = json.dumps(self.data, ensure_ascii=False, separators=(",", ":"))
        return f"id: {self.id}\nevent: change\ndata: {body}\n\n".encode()


def event_for(grant: Grant, change: Change) -> Event | None:
    """What this viewer is told about this row; None when it is none of their business."""
    p = grant.principal
    so_id = change.supplier_order_id
    notice: str | None = None
    if p.role is Role.ADMIN:
        pass
    elif p.role is Role.CUSTOMER:
        if change.customer_id != p.sub:
            return None
        template = PACKAGE_NOTICES.get(change.action)
        if template:
            notice = grant.gettext(template).format(no=change.order_no)
    else:
        mine = [t for t in change.suppliers if t.supplier_id == p.supplier_id]
        if not mine:
            return None
        so_id = mine[0].supplier_order_id
        template = SUPPLIER_NOTICES.get(change.action)
        if template:
            notice = grant.gettext(template).format(no=change.order_no)
    data: dict[str, str | None] = {
        "order_no": change.order_no,
        "supplier_order_id": so_id,
        "action": change.action,
    }
    if notice:
        data["notice"] = notice
    return Event(change.id, data)


def parse_topics(raw: str) -> list[str]:
    """Well-formed topics of `?topics=` (space separated), deduplicated, at most MAX_TOPICS."""
    out: list[str] = []
    for topic in raw.split():
        kind, sep, value = topic.partition(":")
        ok = topic == "admin" or (sep and kind in TOPIC_KINDS and 0 < len(value) <= MAX_TOPIC_VALUE)
        if ok and topic not in out:
            out.append(topic)
    return out[:MAX_TOPICS]


async def grant_topics(
    sessions: async_sessionmaker[AsyncSession],
    principal: Principal,
    requested: Iterable[str],
    locale: str = i18n.DEFAULT_LOCALE,
) -> Grant:
    """Keep only the topics `principal` may follow (one query at most).

    customer → own `customer:<sub>`, `order:<no>` of own orders; supplier → own
    `supplier:<id>`, `order:<no>` only when it holds a paid supplier order of theirs;
    admin → anything, `admin` included.
    """
    topics = list(requested)
    if principal.role is Role.ADMIN:
        return Grant(principal, frozenset(topics), locale)
    granted: set[str] = set()
    wanted_orders: set[str] = set()
    own = {"customer": principal.sub} if principal.role is Role.CUSTOMER else {}
    if principal.role is Role.SUPPLIER and principal.supplier_id:
        own = {"supplier": principal.supplier_id}
    for topic in topics:
        kind, _, value = topic.partition(":")
        if kind == "order":
            wanted_orders.add(value)
        elif own.get(kind) == value:
            granted.add(topic)
    if wanted_orders:
        query: Select[str]
        if principal.role is Role.CUSTOMER:
            query = select(Order.order_no).where(
                Order.order_no.in_(wanted_orders), Order.customer_id == principal.sub
            )
        else:
            query = select(SupplierOrder.order_no).where(
                SupplierOrder.order_no.in_(wanted_orders),
                SupplierOrder.supplier_id == principal.supplier_id,
                SupplierOrder.paid_at.is_not(None),
                SupplierOrder.status != SupplierOrderStatus.PENDING_PAYMENT,
            )
        async with sessions() as s:
            granted.update(f"order:{no}" for no in (await s.scalars(query)).all())
    return Grant(principal, frozenset(granted), locale)


# --- the queries ---------------------------------------------------------------------------------


def _batch(
    where: Sequence[ColumnElement[bool]], limit: int, newest_first: bool = False
) -> Subquery:
    return (
        select(
            OrderLog.id,
            OrderLog.order_no,
            OrderLog.supplier_order_id,
            OrderLog.action,
            OrderLog.at,
        )
        .where(*where)
        .order_by(OrderLog.id.desc() if newest_first else OrderLog.id)
        .limit(limit)
        .subquery("batch")
    )


def _changes_query(batch: Subquery) -> Select[Any]:
    """The batch's rows with their customer and the supplier orders they concern.

    A row about a supplier order joins that one (`own`); a payment row joins every supplier
    order of its order (`fanout`, one result row each). Index lookups only: orders and
    supplier_orders by primary key, supplier_orders by order_no.
    """
    own = aliased(SupplierOrder, name="own")
    fan = aliased(SupplierOrder, name="fanout")
    return (
        select(
            batch.c.id,
            batch.c.order_no,
            batch.c.supplier_order_id,
            batch.c.action,
            batch.c.at,
            Order.customer_id,
            own.supplier_id.label("own_supplier_id"),
            own.paid_at.label("own_paid_at"),
            own.status.label("own_status"),
            fan.id.label("fan_id"),
            fan.supplier_id.label("fan_supplier_id"),
            fan.paid_at.label("fan_paid_at"),
            fan.status.label("fan_status"),
        )
        .select_from(batch)
        .outerjoin(Order, Order.order_no == batch.c.order_no)
        .outerjoin(own, own.id == batch.c.supplier_order_id)
        .outerjoin(
            fan,
            and_(
                batch.c.supplier_order_id.is_(None),
                batch.c.action.in_(FANOUT_TO_SUPPLIERS),
                fan.order_no == batch.c.order_no,
            ),
        )
        .order_by(batch.c.id, fan.id)
    )


def _visible_to_supplier(paid_at: datetime | None, status: str | None, at: datetime) -> bool:
    """Paid, and the row is from the payment on (nothing from before it)."""
    return (
        paid_at is not None
        and status is not None
        and status != SupplierOrderStatus.PENDING_PAYMENT
        and at >= paid_at
    )


def _to_changes(rows: Iterable[Row[Any]]) -> list[Change]:
    found: dict[int, tuple[Row[Any], list[Target]]] = {}
    for r in rows:
        _, targets = found.setdefault(r.id, (r, []))
        if r.supplier_order_id is not None and r.own_supplier_id is not None:
            if _visible_to_supplier(r.own_paid_at, r.own_status, r.at):
                targets.append(Target(r.own_supplier_id, r.supplier_order_id))
        elif r.fan_id is not None and _visible_to_supplier(r.fan_paid_at, r.fan_status, r.at):
            targets.append(Target(r.fan_supplier_id, r.fan_id))
    return [
        Change(
            id=r.id,
            order_no=r.order_no,
            supplier_order_id=r.supplier_order_id,
            action=r.action,
            customer_id=r.customer_id,
            suppliers=tuple(targets),
        )
        for r, targets in found.values()
    ]


def _replay_filter(grant: Grant) -> ColumnElement[bool]:
    """SQL for "a row this grant's topics may match" (event_for decides exactly)."""
    admin, orders, customers, suppliers = grant.split()
    if admin:
        return true()
    conds: list[ColumnElement[bool]] = []
    if orders:
        conds.append(OrderLog.order_no.in_(orders))
    if customers:
        conds.append(
            exists().where(Order.order_no == OrderLog.order_no, Order.customer_id.in_(customers))
        )
    if suppliers:
        conds.append(
            exists().where(
                SupplierOrder.supplier_id.in_(suppliers),
                SupplierOrder.paid_at.is_not(None),
                or_(
                    SupplierOrder.id == OrderLog.supplier_order_id,
                    and_(
                        OrderLog.supplier_order_id.is_(None),
                        OrderLog.action.in_(FANOUT_TO_SUPPLIERS),
                        SupplierOrder.order_no == OrderLog.order_no,
                    ),
                ),
            )
        )
    return or_(*conds) if conds else false()


# --- subscribers -----------------------------------------------------------------------------------


class _Closed:
    pass


CLOSED = _Closed()


class Subscription:
    """One open stream: its grant, a bounded queue, and where the watcher stood when it joined."""

    def __init__(self, grant: Grant, maxsize: int, upto: int) -> None:
        self.grant = grant
        self.upto = upto  # rows up to this id are the replay's, later ones come live
        self.maxsize = maxsize
        self.closed = False
        self.dropped = 0
        self._items: deque[Event] = deque()
        self._overflow: int | None = None  # newest id dropped while the queue was full
        self._wake = asyncio.Event()

    def offer(self, event: Event) -> None:
        if self.closed:
            return
        if self._overflow is not None:
            self._overflow = max(self._overflow, event.id)
            self.dropped += 1
        elif len(self._items) >= self.maxsize:
            self.dropped += len(self._items) + 1
            self._overflow = max([event.id, *(e.id for e in self._items)])
            self._items.clear()
        else:
            self._items.append(event)
        self._wake.set()

    def close(self) -> None:
        self.closed = True
        self._wake.set()

    def pending(self) -> int:
        return len(self._items)

    async def next(self, timeout: float) -> Event | _Closed | None:
        """The next event; None after `timeout` s with nothing (time for a heartbeat)."""
        if not self._items and self._overflow is None and not self.closed:
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                return None
        if self._overflow is not None:
            newest, self._overflow = self._overflow, None
            return Event(newest, {"action": "refresh"}, refresh=True)
        if self._items:
            return self._items.popleft()
        return CLOSED if self.closed else None


class HubClosed(Exception):
    pass


# --- the hub -------------------------------------------------------------------------------------


@dataclass
class LiveHub:
    """The one `order_log` watcher of an app, and its subscribers (see the module doc)."""

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
                self._cursor = await self._newest_id()
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
        batch = _batch(
            [OrderLog.id > after, OrderLog.id <= upto, _replay_filter(grant)],
            self.replay_limit,
            newest_first=True,
        )
        self.replays += 1
        async with self.sessions() as s:
            rows = (await s.execute(_changes_query(batch))).all()
        return [e for c in _to_changes(rows) if (e := event_for(grant, c)) is not None]

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
            self._server = _uvicorn_server_of(self.app)
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

    async def _newest_id(self) -> int:
        async with self.sessions() as s:
            newest = await s.scalar(select(func.max(OrderLog.id)))
        return int(newest or 0)

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
                rows = (await s.execute(_changes_query(_batch([where], self.batch)))).all()
            changes = _to_changes(rows)
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


def _uvicorn_server_of(app: object) -> Any:
    """The uvicorn Server serving `app` in this event loop, or None.

    uvicorn runs the app's shutdown only after every response has ended, and tells the app
    nothing before: an event stream would keep it waiting for ever. Its `Server.serve`
    coroutine is a task of this loop (the main one under `uvicorn.run`); its `should_exit`
    says when to end the streams.
    """
    try:
        import uvicorn
    except ImportError:  # pragma: no cover - another ASGI server
        return None
    for task in asyncio.all_tasks():
        frame = getattr(task.get_coro(), "cr_frame", None)
        server = frame.f_locals.get("self") if frame is not None else None
        if isinstance(server, uvicorn.Server) and _serves(server.config, app):
            return server
    return None


def _serves(config: Any, app: object) -> bool:
    for candidate in (getattr(config, "app", None), getattr(config, "loaded_app", None)):
        for _ in range(16):  # through uvicorn's wrapping middleware (.app)
            if candidate is None:
                break
            if candidate is app:
                return True
            candidate = getattr(candidate, "app", None)
    return False


# --- the app's hub and the stream ------------------------------------------------------------------


def hub_for(app: Any) -> LiveHub:
    """The app's hub, created on first use (started by its first subscriber)."""
    hub: LiveHub | None = getattr(app.state, "live_hub", None)
    if hub is None:
        hub = LiveHub(app.state.sessions, app=app)
        app.state.live_hub = hub
    return hub


async def stop_hub(app: Any) -> None:
    """App shutdown: end the streams and the watcher, if there is one."""
    hub: LiveHub | None = getattr(app.state, "live_hub", None)
    if hub is not None:
        await hub.stop()


async def stream(hub: LiveHub, grant: Grant, after: int | None) -> AsyncIterator[bytes]:
    """The body of `GET /ui/live`: retry hint, replay after `after`, then live events."""
    try:
        sub = await hub.subscribe(grant)
    except HubClosed:
        return
    except (SQLAlchemyError, OSError) as err:
        log.warning("live updates: cannot subscribe: %s", err)
        yield f"retry: {RETRY_MS}\n\n".encode()
        return
    try:
        yield f"retry: {RETRY_MS}\n: live\n\n".encode()
        replayed: set[int] = set()
        if after is not None and after < sub.upto:
            try:
                events = await hub.replay(grant, after, sub.upto)
            except (SQLAlchemyError, OSError) as err:
                # End the stream: the browser comes back with the same Last-Event-ID.
                log.warning("live updates: replay failed: %s", err)
                return
            for event in events:
                replayed.add(event.id)
                yield event.encode()
        while True:
            item = await sub.next(hub.heartbeat)
            if isinstance(item, _Closed):
                return
            if item is None:
                yield b": keepalive\n\n"
            elif item.refresh or item.id not in replayed:
                yield item.encode()
    finally:
        hub.unsubscribe(sub)


async def note_position(request: Request, sessions: Sessions) -> None:
    """Router dependency of the live pages: the newest change id BEFORE the page reads.

    The page carries it (`data-live-since`) and its stream starts after it, so a change
    committed between reading the page and connecting the stream is replayed, not lost.
    """
    async with sessions() as s:
        newest = await s.scalar(select(func.max(OrderLog.id)))
    request.state.live_since = int(newest or 0)
