"""Live updates (DESIGN.md §9): GET /ui/live and its order_log hub (starter/web/live/).

Three layers: the hub on a bare SQLite read model (who is told what, full queues, late
commits); the stream over HTTP on a server of the page stack, with real payments, shipments
and carrier scans (events within 5 s, authorization, replay on reconnect, 50 pages on one
watcher, prompt shutdown); and an order page in Chromium that follows the changes without
a reload.
"""

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.session import create_all, make_engine, make_session_factory, write_session
from db.tables import Order, OrderLog, SupplierOrder
from starter.api.app import create_app
from starter.security import TOKEN_COOKIE, Principal, Role, mint_token
from starter.web.live import Event, Grant, LiveHub, Subscription, grant_topics, parse_topics
from tests.api.conftest import Running, serve, stop
from tests.api.helpers import HOME, Who, eventually, uid
from tests.web.conftest import OpenPage, Web, WebStack

DELIVERY = 5.0  # DESIGN.md §9: a change reaches an open page within 5 s


# --- the hub on a bare read model -------------------------------------------------------------


@pytest.fixture
async def bare(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/live.db")
    await create_all(engine)
    try:
        yield make_session_factory(engine)
    finally:
        await engine.dispose()


NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


async def add_order(
    sessions: async_sessionmaker[AsyncSession],
    order_no: str,
    customer: str,
    parts: dict[str, str],  # supplier order id → supplier id
) -> None:
    zero = Decimal("0")
    async with write_session(sessions) as s:
        s.add(
            Order(
                order_no=order_no,
                customer_id=customer,
                status="PENDING_PAYMENT",
                subtotal=zero,
                postage=zero,
                coins=zero,
                payable=zero,
                pay_deadline=NOW + timedelta(minutes=30),
                created_at=NOW,
                plan={},
            )
        )
        await s.flush()
        for so_id, supplier in parts.items():
            s.add(
                SupplierOrder(
                    id=so_id,
                    order_no=order_no,
                    supplier_id=supplier,
                    customer_id=customer,
                    status="PENDING_PAYMENT",
                    needs_address=False,
                    subtotal=zero,
                    postage=zero,
                    coin_share=zero,
                    payable=zero,
                    created_at=NOW,
                )
            )


async def add_log(
    sessions: async_sessionmaker[AsyncSession],
    order_no: str,
    action: str,
    supplier_order_id: str | None = None,
    at: datetime = NOW,
    id: int | None = None,
) -> int:
    async with write_session(sessions) as s:
        row = OrderLog(
            order_no=order_no,
            supplier_order_id=supplier_order_id,
            actor="system",
            action=action,
            detail={},
            at=at,
        )
        if id is not None:
            row.id = id
        s.add(row)
        await s.flush()
        return row.id


async def pay(sessions: async_sessionmaker[AsyncSession], order_no: str, at: datetime) -> int:
    """What the payment activity writes: supplier orders paid, one order-level log row."""
    async with write_session(sessions) as s:
        for so in (
            await s.scalars(select(SupplierOrder).where(SupplierOrder.order_no == order_no))
        ).all():
            so.status, so.paid_at = "PENDING_SHIPMENT", at
        order = await s.get(Order, order_no)
        assert order is not None
        order.status, order.paid_at = "PAID", at
    return await add_log(sessions, order_no, "payment_applied", at=at)


def grant(role: Role, sub: str, *topics: str, supplier_id: str | None = None) -> Grant:
    return Grant(Principal(sub, role, supplier_id), frozenset(topics))


async def drain(sub: Subscription) -> list[Event]:
    """What the subscription holds now, without waiting for more.

    Called after `settle`: the rows committed before it have been dispatched by then (the
    watcher offers each row to its subscribers within the tick that reads it), so the queue
    already holds everything they make; no silence needs to be waited for.
    """
    out: list[Event] = []
    while True:
        item = await sub.next(0)
        if not isinstance(item, Event):
            return out
        out.append(item)


async def settle(hub: LiveHub) -> None:
    """Let the watcher read everything committed so far (two more ticks than now)."""
    ticks = hub.ticks

    async def ticked() -> bool:
        return hub.cursor is None or hub.ticks >= ticks + 2

    await eventually(ticked, 10, "two ticks of the watcher")


async def test_hub_tells_each_viewer_only_their_part(
    bare: async_sessionmaker[AsyncSession],
) -> None:
    hub = LiveHub(bare, poll_interval=0.02)
    await add_order(bare, "A1", "cust-a", {"A1-s1": "s1", "A1-s2": "s2"})
    await add_order(bare, "B1", "cust-b", {"B1-s1": "s1"})
    old = await add_log(bare, "A1", "order_submitted")
    try:
        customer = await hub.subscribe(grant(Role.CUSTOMER, "cust-a", "order:A1"))
        other = await hub.subscribe(grant(Role.CUSTOMER, "cust-b", "customer:cust-b"))
        s1 = await hub.subscribe(grant(Role.SUPPLIER, "u1", "supplier:s1", supplier_id="s1"))
        s2 = await hub.subscribe(grant(Role.SUPPLIER, "u2", "supplier:s2", supplier_id="s2"))
        admin = await hub.subscribe(grant(Role.ADMIN, "root", "admin"))
        assert customer.upto == old  # a first connection starts after what exists

        # Before payment: a supplier-order row of an unpaid order reaches nobody but its
        # customer (and the admin).
        await add_log(bare, "B1", "receiver_changed", "B1-s1", at=NOW + timedelta(minutes=1))
        paid = await pay(bare, "A1", NOW + timedelta(minutes=2))
        shipped = await add_log(bare, "A1", "shipped", "A1-s1", at=NOW + timedelta(minutes=3))
        await settle(hub)

        subs = {"customer": customer, "other": other, "s1": s1, "s2": s2, "admin": admin}
        got = {name: await drain(sub) for name, sub in subs.items()}
        assert [e.data["action"] for e in got["customer"]] == ["payment_applied", "shipped"]
        assert got["customer"][1].data["notice"] == "Order A1: a package is on its way"
        assert [e.data["action"] for e in got["other"]] == ["receiver_changed"]
        assert [(e.id, e.data["supplier_order_id"]) for e in got["s1"]] == [
            (paid, "A1-s1"),  # the order-level payment row, told as their own part
            (shipped, "A1-s1"),
        ]
        assert got["s1"][0].data["notice"] == "New paid order A1"
        assert [(e.id, e.data["supplier_order_id"]) for e in got["s2"]] == [(paid, "A1-s2")]
        assert [e.data["action"] for e in got["admin"]] == [
            "receiver_changed",
            "payment_applied",
            "shipped",
        ]
        assert hub.subscribers == 5

        # Replay never tells a supplier what happened before the payment.
        early = await hub.replay(
            grant(Role.SUPPLIER, "u1", "supplier:s1", supplier_id="s1"), 0, shipped
        )
        assert [e.id for e in early] == [paid, shipped]
    finally:
        await hub.stop()
    assert customer.closed and admin.closed


async def test_grants_keep_only_what_the_viewer_may_see(
    bare: async_sessionmaker[AsyncSession],
) -> None:
    await add_order(bare, "A1", "cust-a", {"A1-s1": "s1"})
    await add_order(bare, "A2", "cust-a", {"A2-s1": "s1"})
    await pay(bare, "A2", NOW)
    asked = parse_topics(
        "order:A1 order:A2 customer:cust-a customer:cust-b supplier:s1 admin bad order:"
    )
    assert asked == [
        "order:A1",
        "order:A2",
        "customer:cust-a",
        "customer:cust-b",
        "supplier:s1",
        "admin",
    ]
    who = {
        "customer": Principal("cust-a", Role.CUSTOMER),
        "stranger": Principal("cust-b", Role.CUSTOMER),
        "supplier": Principal("u1", Role.SUPPLIER, "s1"),
        "other supplier": Principal("u2", Role.SUPPLIER, "s2"),
        "admin": Principal("root", Role.ADMIN),
    }
    granted = {k: set((await grant_topics(bare, p, asked)).topics) for k, p in who.items()}
    assert granted == {
        "customer": {"order:A1", "order:A2", "customer:cust-a"},
        "stranger": {"customer:cust-b"},
        "supplier": {"order:A2", "supplier:s1"},  # A1 is not paid
        "other supplier": set(),
        "admin": set(asked),
    }


async def test_a_slow_subscriber_gets_one_refresh_instead_of_a_backlog(
    bare: async_sessionmaker[AsyncSession],
) -> None:
    hub = LiveHub(bare, poll_interval=0.02, queue_size=3)
    await add_order(bare, "A1", "cust-a", {})
    try:
        sub = await hub.subscribe(grant(Role.ADMIN, "root", "order:A1"))
        ids = [await add_log(bare, "A1", f"step_{i}") for i in range(10)]
        await settle(hub)
        assert sub.pending() == 0 and sub.dropped == 10
        events = await drain(sub)
        assert [(e.id, e.data, e.refresh) for e in events] == [
            (ids[-1], {"action": "refresh"}, True)
        ]
        # And then it is an ordinary subscriber again.
        later = await add_log(bare, "A1", "after")
        await settle(hub)
        assert [e.id for e in await drain(sub)] == [later]
    finally:
        await hub.stop()


async def test_a_row_committed_after_a_newer_one_is_still_delivered(
    bare: async_sessionmaker[AsyncSession],
) -> None:
    """PostgreSQL may commit id n after n+1; the hub asks for skipped ids again."""
    hub = LiveHub(bare, poll_interval=0.02)
    await add_order(bare, "A1", "cust-a", {})
    base = await add_log(bare, "A1", "first")
    try:
        sub = await hub.subscribe(grant(Role.CUSTOMER, "cust-a", "customer:cust-a"))
        await add_log(bare, "A1", "newer", id=base + 2)
        await settle(hub)
        await add_log(bare, "A1", "late", id=base + 1)
        await settle(hub)
        assert [(e.id, e.data["action"]) for e in await drain(sub)] == [
            (base + 2, "newer"),
            (base + 1, "late"),
        ]
    finally:
        await hub.stop()


async def test_an_idle_hub_stops_querying_and_restarts_from_the_newest_row(
    bare: async_sessionmaker[AsyncSession],
) -> None:
    hub = LiveHub(bare, poll_interval=0.02, idle_after=0.1)
    await add_order(bare, "A1", "cust-a", {})
    try:
        sub = await hub.subscribe(grant(Role.ADMIN, "root", "admin"))
        hub.unsubscribe(sub)

        async def idle() -> bool:
            return hub.cursor is None  # the watcher's own mark of going idle

        await eventually(idle, 5, "the hub to go idle")
        queries = hub.queries
        # Nothing later can mark "no query": an idle hub does nothing at all, so the only
        # evidence is a stretch of time without queries. 15 poll intervals: a hub still
        # polling would have queried about 15 times (it cannot fail spuriously: idle, a tick
        # returns before counting a query).
        await asyncio.sleep(15 * hub.poll_interval)
        assert hub.queries == queries  # nobody listens: no queries
        missed = await add_log(bare, "A1", "while_idle")
        again = await hub.subscribe(grant(Role.ADMIN, "root", "admin"))
        assert again.upto == missed
        fresh = await add_log(bare, "A1", "fresh")
        await settle(hub)
        assert [e.id for e in await drain(again)] == [fresh]  # nothing old on a first connect
    finally:
        await hub.stop()


# --- the stream over HTTP --------------------------------------------------------------------------


@dataclass
class Live:
    """Our own API server on the page stack's database and task queue, hub in reach."""

    url: str
    app: FastAPI
    hub: LiveHub
    running: Running
    web: Web


@pytest.fixture(scope="module")
async def live(web_stack: WebStack) -> AsyncIterator[Live]:
    web = web_stack.web
    app = create_app(web.settings)
    hub = LiveHub(web.sessions, app=app)
    app.state.live_hub = hub
    running = await serve(app)
    try:
        yield Live(running.url, app, hub, running, web)
    finally:
        if not running.task.done():
            await stop(running)


def cookie(web: Web, who: Who) -> dict[str, str]:
    token = mint_token(web.settings.jwt_secret, who.sub, who.role, who.supplier_id)
    return {"Cookie": f"{TOKEN_COOKIE}={token}"}


@dataclass
class Stream:
    """One open GET /ui/live, read in the background into `events`."""

    status: int = 0
    retry: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    body: bytes = b""
    opened: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: "asyncio.Task[None] | None" = None

    @property
    def ids(self) -> list[int]:
        return [int(e["id"]) for e in self.events]

    def actions(self, order_no: str | None = None) -> list[str]:
        return [
            e["data"]["action"]
            for e in self.events
            if order_no is None or e["data"].get("order_no") == order_no
        ]

    async def wait_for(
        self, pred: Callable[[dict[str, Any]], bool], what: str, timeout: float = DELIVERY
    ) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for event in self.events:
                if pred(event):
                    return event
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"no event {what} within {timeout}s: {self.events}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)

    async def action(self, order_no: str, action: str, timeout: float = DELIVERY) -> dict[str, Any]:
        return await self.wait_for(
            lambda e: e["data"].get("order_no") == order_no and e["data"]["action"] == action,
            f"{action} of {order_no}",
            timeout,
        )

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


async def _read(
    stream: Stream, http: httpx.AsyncClient, params: dict[str, str], headers: dict[str, str]
) -> None:
    try:
        async with http.stream("GET", "/ui/live", params=params, headers=headers) as r:
            stream.status = r.status_code
            if r.status_code != 200:
                stream.body = await r.aread()
                return
            fields: dict[str, str] = {}
            async for line in r.aiter_lines():
                if line == "":
                    if "retry" in fields:
                        # The first message: the server has subscribed this stream.
                        stream.retry = fields["retry"]
                        stream.opened.set()
                    if "data" in fields:
                        stream.events.append(
                            {
                                "id": fields.get("id"),
                                "event": fields.get("event"),
                                "data": json.loads(fields["data"]),
                            }
                        )
                        stream.changed.set()
                    fields = {}
                elif line.startswith(":"):
                    stream.comments.append(line)
                else:
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")
    finally:
        stream.opened.set()


async def open_stream(
    http: httpx.AsyncClient,
    web: Web,
    who: Who | None,
    topics: str,
    last_event_id: int | None = None,
    params: dict[str, str] | None = None,
) -> Stream:
    headers = cookie(web, who) if who is not None else {}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    stream = Stream()
    query = {"topics": topics, **(params or {})}
    stream.task = asyncio.create_task(_read(stream, http, query, headers))
    await asyncio.wait_for(stream.opened.wait(), 10)
    return stream


@pytest.fixture
async def http(live: Live) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
    timeout = httpx.Timeout(30, read=None)
    async with httpx.AsyncClient(base_url=live.url, timeout=timeout, limits=limits) as client:
        yield client


async def paid_via_webhook(web: Web, who: Who, order_no: str) -> None:
    order = await web.api.order(who, order_no)
    body = {
        "event_id": uid("evt-"),
        "order_no": order_no,
        "status": "succeeded",
        "amount": order["payable"],
        "method": "card",
    }
    r = await web.api.signed("/webhooks/payment", body)
    assert r.status_code == 202, r.text


async def ship(web: Web, supplier: Who, so: dict[str, Any]) -> str:
    tracking_no = uid("SF")
    await web.api.ok(
        "POST",
        f"/supplier/orders/{so['id']}/shipments",
        supplier,
        {
            "carrier": "sf",
            "tracking_no": tracking_no,
            "method": "express",
            "items": [
                {"item_id": i["item_id"], "qty": i["qty"]}
                for sub in so["sub_orders"]
                for i in sub["items"]
            ],
        },
        expect=201,
    )
    return tracking_no


async def scan(web: Web, tracking_no: str, status: str = "in_transit") -> None:
    body = {
        "event_id": uid("scan-"),
        "carrier": "sf",
        "tracking_no": tracking_no,
        "lat": 30.2741 if status == "in_transit" else HOME["lat"],
        "lon": 120.1551 if status == "in_transit" else HOME["lon"],
        "status": status,
        "at": datetime.now(UTC).isoformat(),
    }
    r = await web.api.signed("/webhooks/carrier", body)
    assert r.status_code == 202, r.text


async def log_ids(web: Web, order_no: str, after: int = 0, upto: int | None = None) -> list[int]:
    where = [OrderLog.order_no == order_no, OrderLog.id > after]
    if upto is not None:
        where.append(OrderLog.id <= upto)
    async with web.sessions() as s:
        rows = await s.scalars(select(OrderLog.id).where(*where).order_by(OrderLog.id))
        return list(rows.all())


async def test_payment_and_carrier_scans_reach_the_order_page_within_5s(
    live: Live, http: httpx.AsyncClient
) -> None:
    web = live.web
    supplier = web.api.supplier()
    sku = await web.api.product(supplier)
    customer = await web.api.customer()
    order_no = (await web.api.place(customer, [(sku, 1)]))["order_no"]
    await settle(live.hub)  # the watcher is past the order's first row
    stream = await open_stream(http, web, customer, f"order:{order_no}")
    try:
        assert stream.status == 200 and stream.retry == "2000"

        started = time.monotonic()
        await paid_via_webhook(web, customer, order_no)
        paid = await stream.action(order_no, "payment_applied")
        assert time.monotonic() - started < DELIVERY
        # Nothing old on a first connection: a stream sends its replay (none here), then the
        # rows in log order (the watcher reads them by id and a subscriber's queue is FIFO),
        # so an old row would have come before the payment.
        assert stream.events[0] is paid, stream.events
        assert paid["event"] == "change" and int(paid["id"]) > 0
        assert set(paid["data"]) == {"order_no", "supplier_order_id", "action"}

        so = (await web.api.order(customer, order_no))["supplier_orders"][0]
        tracking_no = await ship(web, supplier, so)
        shipped = await stream.action(order_no, "shipped")
        assert shipped["data"]["supplier_order_id"] == so["id"]
        assert shipped["data"]["notice"] == f"Order {order_no}: a package is on its way"

        started = time.monotonic()
        await scan(web, tracking_no)
        moved = await stream.action(order_no, "tracking_scanned")
        assert time.monotonic() - started < DELIVERY
        assert moved["data"]["notice"] == f"Order {order_no}: a package has moved"
        await scan(web, tracking_no, "delivered")
        await stream.action(order_no, "package_delivered")
        # Every event once, in the log's order.
        assert stream.ids == sorted(set(stream.ids))
    finally:
        await stream.close()


async def test_not_logged_in_or_nothing_allowed_is_refused(
    live: Live, http: httpx.AsyncClient
) -> None:
    web = live.web
    anonymous = await open_stream(http, web, None, "admin")
    assert anonymous.status == 401
    customer = await web.api.customer()
    refused = await open_stream(http, web, customer, "admin supplier:x order:nope customer:y")
    assert refused.status == 403
    assert json.loads(refused.body)["error"]["code"] == "forbidden"


async def test_a_customer_cannot_follow_another_customers_order(
    live: Live, http: httpx.AsyncClient
) -> None:
    web = live.web
    supplier = web.api.supplier()
    sku = await web.api.product(supplier)
    alice, mallory = await web.api.customer(), await web.api.customer()
    alices = (await web.api.place(alice, [(sku, 1)]))["order_no"]
    mallorys = (await web.api.place(mallory, [(sku, 1)]))["order_no"]

    assert (await open_stream(http, web, mallory, f"order:{alices}")).status == 403
    # Asked alongside a topic of her own: the other one is dropped, silently.
    snoop = await open_stream(
        http, web, mallory, f"order:{alices} customer:{alice.sub} order:{mallorys}"
    )
    watch = await open_stream(http, web, alice, f"order:{alices}")
    try:
        assert snoop.status == 200
        await paid_via_webhook(web, alice, alices)
        await watch.action(alices, "payment_applied")
        await paid_via_webhook(web, mallory, mallorys)
        await snoop.action(mallorys, "payment_applied")  # later in the log than Alice's
        assert {e["data"]["order_no"] for e in snoop.events} == {mallorys}
    finally:
        await snoop.close()
        await watch.close()


async def test_a_supplier_follows_only_its_own_paid_supplier_orders(
    live: Live, http: httpx.AsyncClient
) -> None:
    web = live.web
    ours, theirs = web.api.supplier(), web.api.supplier()
    our_sku, their_sku = await web.api.product(ours), await web.api.product(theirs)
    customer = await web.api.customer()
    unpaid = (await web.api.place(customer, [(our_sku, 1)]))["order_no"]
    shared = (await web.api.place(customer, [(our_sku, 1), (their_sku, 1)]))["order_no"]
    # An order not paid yet is not the supplier's to follow.
    assert (await open_stream(http, web, ours, f"order:{shared}")).status == 403

    inbox = await open_stream(http, web, ours, f"supplier:{ours.supplier_id} order:{unpaid}")
    other = await open_stream(http, web, theirs, f"supplier:{theirs.supplier_id}")
    try:
        assert inbox.status == 200  # order:<unpaid> dropped, its own inbox kept
        await paid_via_webhook(web, customer, shared)
        record = await web.api.order(customer, shared)
        parts = {so["supplier_id"]: so for so in record["supplier_orders"]}
        our_so, their_so = parts[ours.supplier_id], parts[theirs.supplier_id]

        arrived = await inbox.action(shared, "payment_applied")
        assert arrived["data"]["supplier_order_id"] == our_so["id"]
        assert arrived["data"]["notice"] == f"New paid order {shared}"
        told = await other.action(shared, "payment_applied")
        assert told["data"]["supplier_order_id"] == their_so["id"]

        # Now the order is theirs to follow too, but only their part of it.
        page = await open_stream(http, web, ours, f"order:{shared}")
        our_parcel = await ship(web, ours, our_so)
        await inbox.action(shared, "shipped")
        await page.action(shared, "shipped")
        their_parcel = await ship(web, theirs, their_so)
        await other.action(shared, "shipped")
        # The order's own status rows and the unpaid order stay the customer's. To know that
        # nothing else is on its way, each stream is sent one more row it must get: a scan of
        # its own parcel, logged after every row above. Rows reach a stream in log order, so
        # once its scan is here, anything it was wrongly told about those rows is here too.
        await scan(web, their_parcel)
        await scan(web, our_parcel)
        for stream in (inbox, page):
            await stream.action(shared, "tracking_scanned")
        await other.action(shared, "tracking_scanned")
        for stream, mine in ((inbox, our_so["id"]), (page, our_so["id"]), (other, their_so["id"])):
            assert {e["data"]["supplier_order_id"] for e in stream.events} == {mine}
            assert {e["data"]["order_no"] for e in stream.events} == {shared}
        await page.close()
    finally:
        await inbox.close()
        await other.close()


async def test_a_reconnect_replays_what_was_missed_exactly_once(
    live: Live, http: httpx.AsyncClient
) -> None:
    web = live.web
    supplier = web.api.supplier()
    sku = await web.api.product(supplier)
    customer = await web.api.customer()
    order_no = (await web.api.place(customer, [(sku, 1)]))["order_no"]
    first = await open_stream(http, web, customer, f"order:{order_no}")
    await paid_via_webhook(web, customer, order_no)
    seen = int((await first.action(order_no, "payment_applied"))["id"])
    await first.close()  # the page loses its connection...

    record = await web.api.order(customer, order_no)
    so = record["supplier_orders"][0]
    tracking_no = await ship(web, supplier, so)  # ...while the parcel leaves
    await scan(web, tracking_no)
    missed = await _logged(web, order_no, seen, {"shipped", "tracking_scanned"})

    again = await open_stream(http, web, customer, f"order:{order_no}", last_event_id=seen)
    try:
        await again.action(order_no, "tracking_scanned")
        assert again.ids[: len(missed)] == missed  # the replay, first and in order
        await scan(web, tracking_no, "delivered")  # and live ones after it
        delivered = int((await again.action(order_no, "package_delivered"))["id"])
        # One more scan, a row logged after all of the above: rows reach a stream in log
        # order, so once it is here, a second copy of any of them would be here too.
        await scan(web, tracking_no)
        last = await again.wait_for(
            lambda e: e["data"]["action"] == "tracking_scanned" and int(e["id"]) > delivered,
            "the scan after the delivery",
        )
        marker = int(last["id"])
        got = [i for i in again.ids if i <= marker]
        assert got == await log_ids(web, order_no, seen, marker)  # each exactly once
        assert again.ids == sorted(set(again.ids))
    finally:
        await again.close()

    # `?last_event_id=` does the same for a page that knows where it stopped.
    page = await open_stream(
        http, web, customer, f"order:{order_no}", params={"last_event_id": str(seen)}
    )
    try:
        await page.wait_for(lambda e: int(e["id"]) == marker, "the replay up to the last scan")
        assert [i for i in page.ids if i <= marker] == got
    finally:
        await page.close()


async def _logged(web: Web, order_no: str, after: int, actions: set[str]) -> list[int]:
    """Wait until `actions` are in the log after `after`; return the ids after `after`."""
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        async with web.sessions() as s:
            rows = (
                await s.execute(
                    select(OrderLog.id, OrderLog.action)
                    .where(OrderLog.order_no == order_no, OrderLog.id > after)
                    .order_by(OrderLog.id)
                )
            ).all()
        if actions <= {r.action for r in rows}:
            return [r.id for r in rows]
        assert asyncio.get_running_loop().time() < deadline, f"not logged: {actions}"
        await asyncio.sleep(0.1)


async def test_fifty_pages_cost_one_query_per_tick(live: Live, http: httpx.AsyncClient) -> None:
    web, hub = live.web, live.hub
    supplier = web.api.supplier()
    sku = await web.api.product(supplier)
    customer = await web.api.customer()
    order_no = (await web.api.place(customer, [(sku, 1)]))["order_no"]
    streams = await asyncio.gather(
        *(
            open_stream(http, web, customer, f"order:{order_no} customer:{customer.sub}")
            for _ in range(50)
        )
    )
    try:
        assert all(s.status == 200 for s in streams)
        assert hub.subscribers >= 50
        queries, ticks, started = hub.queries, hub.ticks, time.monotonic()
        await asyncio.sleep(2.0)
        elapsed = time.monotonic() - started
        # One query per tick (every poll_interval), not one per page.
        assert hub.queries - queries <= elapsed / hub.poll_interval + 2
        assert hub.ticks - ticks >= 2 and hub.queries - hub.ticks <= 1  # (one may be running)

        await paid_via_webhook(web, customer, order_no)
        await asyncio.gather(*(s.action(order_no, "payment_applied") for s in streams))
        # Each page got the payment once; what follows it (the split into supplier orders) may
        # already have arrived too, so each stream is checked against the log, not a fixed list.
        seen = [(s.ids, s.actions()) for s in streams]  # before the log is read: all in it
        logged = set(await _logged(web, order_no, 0, {"payment_applied"}))
        for ids, actions in seen:
            assert actions.count("payment_applied") == 1, actions
            assert ids == sorted(set(ids)) and set(ids) <= logged, (ids, logged)
    finally:
        await asyncio.gather(*(s.close() for s in streams))

    # Closed streams leave the hub.
    async def gone() -> bool:
        return hub.subscribers == 0

    await eventually(gone, 5, "closed streams to leave the hub")


async def test_heartbeat_keeps_an_idle_stream_open(live: Live, http: httpx.AsyncClient) -> None:
    web, hub = live.web, live.hub
    customer = await web.api.customer()
    hub.heartbeat = 0.3
    try:
        stream = await open_stream(http, web, customer, f"customer:{customer.sub}")

        async def beating() -> bool:
            return stream.comments.count(": keepalive") >= 2

        await eventually(beating, 1.0, "two heartbeats within 1 s")  # at 0.3 s and 0.6 s
        await stream.close()
    finally:
        hub.heartbeat = 15.0


async def test_the_server_exits_promptly_with_streams_open(web_stack: WebStack) -> None:
    web = web_stack.web
    app = create_app(web.settings)
    running = await serve(app)
    customer = await web.api.customer()
    async with httpx.AsyncClient(base_url=running.url, timeout=httpx.Timeout(30, read=None)) as own:
        streams = [
            await open_stream(own, web, customer, f"customer:{customer.sub}") for _ in range(3)
        ]
        assert all(s.status == 200 for s in streams)
        started = time.monotonic()
        await stop(running)  # should_exit, then at most 10 s
        assert time.monotonic() - started < 3
        for s in streams:
            assert s.task is not None
            await asyncio.wait_for(s.task, 5)  # each stream ended cleanly


# --- a page in the browser ----------------------------------------------------------------------------


async def test_an_open_order_page_follows_payment_and_parcel_without_reload(
    live: Live, open_page: OpenPage
) -> None:
    web = live.web
    supplier = web.api.supplier()
    sku = await web.api.product(supplier)
    customer = await web.api.customer()
    order_no = (await web.api.place(customer, [(sku, 1)]))["order_no"]
    page = await open_page(live_web(live), (customer.sub, "customer", None))
    await page.goto(f"/ui/orders/{order_no}")
    status = page.get_by_test_id("order-status")
    assert await status.get_attribute("data-status") == "PENDING_PAYMENT"
    await page.evaluate("window.__stillTheSamePage = true")

    await paid_via_webhook(web, customer, order_no)
    await page.wait_for_selector(
        '[data-testid="order-status"][data-status="PAID"]', timeout=DELIVERY * 1000
    )
    so = (await web.api.order(customer, order_no))["supplier_orders"][0]
    tracking_no = await ship(web, supplier, so)
    package = page.locator(f'[data-testid="package"][data-tracking-no="{tracking_no}"]')
    await package.wait_for(timeout=DELIVERY * 1000)
    await scan(web, tracking_no, "delivered")
    await page.wait_for_selector(
        f'[data-testid="package"][data-tracking-no="{tracking_no}"][data-status="delivered"]',
        timeout=DELIVERY * 1000,
    )
    await page.locator("#toast").filter(has_text=order_no).wait_for(timeout=DELIVERY * 1000)
    assert await page.evaluate("window.__stillTheSamePage") is True  # never reloaded


def live_web(live: Live) -> Web:
    """The page stack's Web, pointed at our server."""
    return Web(live.url, live.web.settings, live.web.sessions, live.web.api)
