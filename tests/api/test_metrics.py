"""GET /metrics: HTTP metrics by route template, and business counters that are exact.

The business counters come from the read model (starter/api/metrics.py), so they must be
exact whichever API process is scraped and however often activities are retried. The
lifecycle test runs its own stack on a fresh database (exact values need one nobody else
writes to) with a worker whose every read-model activity "crashes" once after its commit,
then checks the counters through two API servers in this process and a second API
*process* (`python -m starter.api`) over the same database.
"""

import asyncio
import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
    Worker,
)

from db.session import create_all, make_engine, make_session_factory, write_session
from db.tables import (
    AfterSale,
    Order,
    OrderLog,
    Package,
    Refund,
    Review,
    SupplierOrder,
)
from starter.api.app import create_app
from starter.api.metrics import PAYMENT_WAIT_BUCKETS, ReadModelCollector, read_snapshot
from tests.api.conftest import serve, stack_settings, stop
from tests.api.helpers import Api, Who, eventually
from tests.support.read_model import ENGINES, seeded_read_model
from worker import WORKFLOWS, activities_for, workflow_runner

ROOT = Path(__file__).resolve().parents[2]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


PER_PROCESS = ("http_", "python_gc_")


def business(samples: Samples) -> Samples:
    """The read-model series only (HTTP and garbage-collector metrics differ per process by
    design)."""
    return {k: v for k, v in samples.items() if not k[0].startswith(PER_PROCESS)}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(http: httpx.AsyncClient) -> Samples:
    r = await http.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return parse(r.text)


# --- HTTP metrics ----------------------------------------------------------------------------


async def test_route_label_is_the_template_never_the_id(api: Api) -> None:
    customer = await api.customer()
    supplier = api.supplier()
    sku = await api.product(supplier)
    placed = await api.place(customer, [(sku, 1)])
    order_no = placed["order_no"]
    await api.order(customer, order_no)
    missing = await api.call("GET", "/orders/999999999999", customer)
    assert missing.status_code == 404
    assert (await api.call("GET", f"/no/such/{order_no}")).status_code == 404

    text = (await api.http.get("/metrics")).text
    samples = parse(text)
    assert value(samples, "http_requests_total", method="GET", route="/orders/{no}", status="200")
    assert value(samples, "http_requests_total", method="GET", route="/orders/{no}", status="404")
    assert value(samples, "http_requests_total", method="GET", route="unmatched", status="404")
    assert value(samples, "http_request_duration_seconds_count", method="GET", route="/orders/{no}")
    assert value(samples, "http_requests_total", method="POST", route="/orders", status="201")
    routes = {dict(labels).get("route") for (name, labels) in samples if name.startswith("http_")}
    # Label values, not the whole text: a float such as 3.4929999999999994 holds "999999999999".
    label_values = {v for (_, labels) in samples for (_, v) in labels}
    assert not any(order_no in v or "999999999999" in v for v in label_values), label_values
    assert all(r and (r.startswith("/") or r == "unmatched") for r in routes), routes


# --- the read-model queries, on both engines ------------------------------------------------------


@pytest.fixture(params=ENGINES)
async def read_model(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with seeded_read_model(request, tmp_path) as factory:
        yield factory


def _order(no: str, at: datetime, **kw: Any) -> Order:
    values: dict[str, Any] = {
        "order_no": no,
        "customer_id": "alice",
        "status": "PENDING_PAYMENT",
        "subtotal": Decimal("10"),
        "postage": Decimal("0"),
        "coins": Decimal("0"),
        "payable": Decimal("10"),
        "pay_deadline": at + timedelta(minutes=30),
        "created_at": at,
        "plan": {},
    }
    return Order(**(values | kw))


def _so(so_id: str, order_no: str, at: datetime, **kw: Any) -> SupplierOrder:
    values: dict[str, Any] = {
        "id": so_id,
        "order_no": order_no,
        "supplier_id": "s1",
        "customer_id": "alice",
        "status": "PENDING_SHIPMENT",
        "needs_address": False,
        "subtotal": Decimal("10"),
        "postage": Decimal("0"),
        "coin_share": Decimal("0"),
        "payable": Decimal("10"),
        "created_at": at,
    }
    return SupplierOrder(**(values | kw))


def _log(order_no: str, action: str, so_id: str | None, at: datetime) -> OrderLog:
    return OrderLog(
        order_no=order_no, supplier_order_id=so_id, actor="system", action=action, at=at
    )


async def test_read_model_snapshot_counts_each_fact_once(
    read_model: async_sessionmaker[AsyncSession],
) -> None:
    t0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    waits = [timedelta(seconds=3.5), timedelta(seconds=61.25), timedelta(hours=3)]
    async with write_session(read_model) as s:
        for i, wait in enumerate(waits):
            s.add(_order(f"P{i}", t0, status="PAID", paid_at=t0 + wait))
        s.add(_order("C1", t0, status="CLOSED", close_reason="PAYMENT_TIMEOUT"))
        s.add(_order("C2", t0, status="CLOSED", close_reason="PAYMENT_TIMEOUT"))
        s.add(_order("C3", t0, status="CLOSED", close_reason="USER_CANCELLED"))
        s.add(_order("U1", t0))
        await s.flush()
        s.add(_so("P0-s1", "P0", t0, status="COMPLETED", completed_at=t0))
        s.add(_so("P1-s1", "P1", t0, status="COMPLETED", completed_at=t0))
        s.add(_so("P2-s1", "P2", t0, status="PENDING_REVIEW"))
        await s.flush()
        for so_id in ("P0-s1", "P1-s1", "P2-s1"):
            s.add(
                Package(
                    supplier_order_id=so_id,
                    carrier="sf",
                    tracking_no=so_id,
                    method="x",
                    shipped_at=t0,
                )
            )
        s.add(_log("P0", "receipt_confirmed", "P0-s1", t0))
        s.add(_log("P1", "receipt_auto_confirmed", "P1-s1", t0))
        s.add(_log("P2", "receipt_confirmed", "P2-s1", t0))
        await s.flush()
        await _items_and_reviews(s, t0)
        s.add(_log("P0", "after_sale_requested", "P0-s1", t0))
        s.add(_log("P0", "after_sale_approved", "P0-s1", t0))
        s.add(_log("P0", "after_sale_refunded", "P0-s1", t0))
        s.add(_log("P1", "after_sale_requested", "P1-s1", t0))
        s.add(_log("P1", "after_sale_rejected", "P1-s1", t0))
        s.add(_log("P1", "shipped", "P1-s1", t0))
        for rid, reason, amount in (
            ("r1", "supplier_cancelled", "18.00"),
            ("r2", "after_sale_refund_only", "5.50"),
            ("r3", "supplier_cancelled", "2.25"),
        ):
            s.add(
                Refund(
                    id=rid,
                    order_no="P0",
                    amount=Decimal(amount),
                    method="card",
                    reason=reason,
                    created_at=t0,
                )
            )

    async with read_model() as s:
        snap = await read_snapshot(s)
    assert snap.submitted == 7 and snap.paid == 3
    assert snap.closed == {
        "USER_CANCELLED": 1,
        "SUPPLIER_CANCELLED": 0,
        "PAYMENT_TIMEOUT": 2,
        "PAYMENT_FAILED": 0,
    }
    assert snap.by_status == {"PENDING_PAYMENT": 1, "PAID": 3, "FINISHED": 0, "CLOSED": 3}
    assert snap.wait_sum == pytest.approx(3.5 + 61.25 + 3 * 3600, abs=1e-3)
    expected = [sum(1 for w in waits if w.total_seconds() <= b) for b in PAYMENT_WAIT_BUCKETS]
    assert snap.wait_buckets == expected
    assert snap.shipments == 3
    assert snap.receipts == {"customer": 2, "auto": 1}
    # P0-s1 reviewed by the customer, P1-s1 partly auto; P2-s1 not complete yet.
    assert snap.reviews == {"customer": 1, "auto": 1}
    assert snap.refunds == {"supplier_cancelled": 2, "after_sale_refund_only": 1}
    assert snap.refunds_amount == Decimal("25.75")
    assert snap.after_sales == {
        "REQUESTED": 2,
        "APPROVED": 1,
        "RETURN_SHIPPED": 0,
        "REFUNDED": 1,
        "REJECTED": 1,
        "CANCELLED": 0,
    }


async def _items_and_reviews(s: AsyncSession, t0: datetime) -> None:
    from db.tables import OrderItem, SubOrder

    for so_id, order_no, autos in (
        ("P0-s1", "P0", [False, False]),
        ("P1-s1", "P1", [False, True]),
        ("P2-s1", "P2", [False]),
    ):
        s.add(SubOrder(id=f"{so_id}-tea", supplier_order_id=so_id, product_type="tea"))
        await s.flush()
        for n, auto in enumerate(autos):
            item_id = f"{so_id}-i{n}"
            s.add(
                OrderItem(
                    id=item_id,
                    order_no=order_no,
                    supplier_order_id=so_id,
                    sub_order_id=f"{so_id}-tea",
                    sku="tea-green",
                    name="tea",
                    product_type="tea",
                    kind="physical",
                    price=Decimal("5"),
                    qty=1,
                    line_total=Decimal("5"),
                    coin_share=Decimal("0"),
                    status="SHIPPED",
                )
            )
            await s.flush()
            s.add(
                Review(
                    item_id=item_id,
                    sku="tea-green",
                    supplier_order_id=so_id,
                    rating=5,
                    text="",
                    auto=auto,
                    at=t0,
                )
            )
    await s.flush()


async def test_scrapes_share_one_query_while_the_result_is_fresh(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/m.db")
    await create_all(engine)
    sessions = make_session_factory(engine)
    try:
        cached = ReadModelCollector(ttl=3600)
        await asyncio.gather(*(cached.refresh(sessions) for _ in range(20)))
        assert cached.queries == 1
        async with write_session(sessions) as s:
            s.add(_order("N1", datetime.now(UTC)))
        await cached.refresh(sessions)
        assert cached.queries == 1
        assert cached._snapshot is not None and cached._snapshot.submitted == 0

        live = ReadModelCollector(ttl=0)
        await live.refresh(sessions)
        await live.refresh(sessions)
        assert live.queries == 2
        assert live._snapshot is not None and live._snapshot.submitted == 1

        # No database: the scrape says so (read_model_up 0) instead of failing.
        gone = make_engine("sqlite+aiosqlite:////nonexistent/dir/orders.db")
        broken = ReadModelCollector(ttl=0)
        await broken.refresh(make_session_factory(gone))
        await gone.dispose()
        up = list(broken.collect())
        assert [m.name for m in up] == ["orders_metrics_read_model_up"]
        assert up[0].samples[0].value == 0
    finally:
        await engine.dispose()


# --- exact counters after a scripted lifecycle ------------------------------------------------


class _CrashAfterCommit(Interceptor):
    """The first call of each read-model activity commits, then fails as if the worker died
    before reporting: Temporal retries it, and the retry must change nothing.

    (Only the first of each kind: temporalio's core leaves the failed local-activity attempt's
    start-to-close timer behind, and one that fires after this worker shut down prints a
    harmless "receive half not dropped" panic from a detached native task.)
    """

    def __init__(self) -> None:
        self.retried: set[str] = set()

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _CrashAfterCommitInbound(next, self.retried)


class _CrashAfterCommitInbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, retried: set[str]) -> None:
        super().__init__(next)
        self.retried = retried

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        result = await super().execute_activity(input)
        info = activity.info()
        kind = info.activity_type
        if info.attempt == 1 and kind != "issue_refund" and kind not in self.retried:
            self.retried.add(kind)
            raise RuntimeError("simulated crash after the commit")
        return result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def _api_process(db_url: str, env: WorkflowEnvironment) -> AsyncIterator[str]:
    """`python -m starter.api` on a free port over the same database."""
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "starter.api",
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith(("ORDERS_", "OTEL_"))},
            "DATABASE_URL": db_url,
            "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
            "ORDERS_API_PORT": str(port),
            "ORDERS_METRICS_CACHE_SECONDS": "0",
        },
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        async with asyncio.timeout(30):
            await proc.wait()


async def test_business_counters_are_exact_across_processes_and_retries(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path}/metrics.db"
    engine = make_engine(db_url)
    await create_all(engine)
    sessions = make_session_factory(engine)
    task_queue = f"metrics-{uuid.uuid4().hex[:8]}"
    main = stack_settings(db_url, dev_env, task_queue, ORDERS_METRICS_CACHE_SECONDS="0")
    fast = stack_settings(
        db_url,
        dev_env,
        task_queue,
        ORDERS_METRICS_CACHE_SECONDS="0",
        ORDERS_PAYMENT_TIMEOUT="2",
        ORDERS_AUTO_CONFIRM_AFTER="1",
        ORDERS_AUTO_REVIEW_AFTER="1",
        ORDERS_AFTER_SALES_WINDOW="PT1S",
    )
    crash = _CrashAfterCommit()
    worker = Worker(
        dev_env.client,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        activities=activities_for(sessions),
        workflow_runner=workflow_runner(),
        interceptors=[crash],
    )
    async with worker, _api_process(db_url, dev_env) as other_url:
        servers = [await serve(create_app(main)), await serve(create_app(fast))]
        try:
            async with (
                httpx.AsyncClient(base_url=servers[0].url, timeout=60) as http,
                httpx.AsyncClient(base_url=servers[1].url, timeout=60) as fast_http,
                httpx.AsyncClient(base_url=other_url, timeout=10) as other,
            ):
                api, fast_api = Api(http, main, sessions), Api(fast_http, fast, sessions)
                before = business(await scrape(http))
                assert value(before, "orders_submitted_total") == 0
                expected_refunds = await _lifecycle(api, fast_api)

                mine, theirs = business(await scrape(http)), business(await scrape(fast_http))

                async def other_up() -> Samples | None:
                    try:
                        return business(await scrape(other))
                    except httpx.TransportError:
                        return None

                second_process = await eventually(other_up, 60, "the second API process")
        finally:
            for running in servers:
                await stop(running)
    await engine.dispose()

    assert mine == theirs == second_process
    s = mine
    assert value(s, "orders_metrics_read_model_up") == 1
    assert value(s, "orders_submitted_total") == 6
    assert value(s, "orders_paid_total") == 3
    assert value(s, "orders_by_status", status="FINISHED") == 2
    assert value(s, "orders_by_status", status="CLOSED") == 4
    assert {r: value(s, "orders_closed_total", reason=r) for r in _REASONS} == {
        "USER_CANCELLED": 1,
        "SUPPLIER_CANCELLED": 1,
        "PAYMENT_TIMEOUT": 1,
        "PAYMENT_FAILED": 1,
    }
    assert value(s, "shipments_total") == 2
    assert value(s, "receipts_confirmed_total", by="customer") == 1
    assert value(s, "receipts_confirmed_total", by="auto") == 1
    assert value(s, "reviews_total", by="customer") == 1
    assert value(s, "reviews_total", by="auto") == 1
    assert value(s, "refunds_total", reason="after_sale_refund_only") == 1
    assert value(s, "refunds_total", reason="supplier_cancelled") == 1
    assert value(s, "refunds_amount_total") == pytest.approx(float(expected_refunds))
    assert value(s, "after_sales_total", status="REQUESTED") == 1
    assert value(s, "after_sales_total", status="APPROVED") == 1
    assert value(s, "after_sales_total", status="REFUNDED") == 1
    assert value(s, "after_sales_total", status="REJECTED") == 0
    # The payment wait of each paid order, as the read model recorded it.
    async with make_session_factory(make_engine(db_url))() as session:
        rows = (await session.execute(select(Order.created_at, Order.paid_at))).all()
    waits = [(paid - created).total_seconds() for created, paid in rows if paid is not None]
    assert value(s, "orders_payment_wait_seconds_count") == 3
    assert value(s, "orders_payment_wait_seconds_sum") == pytest.approx(sum(waits), abs=3e-3)
    assert value(s, "orders_payment_wait_seconds_bucket", le="+Inf") == 3
    # Every kind of write went through a retry, and none counted twice.
    assert {
        "place_order",
        "apply_payment",
        "close_order",
        "record_shipment",
        "record_receipt",
        "record_reviews",
        "cancel_supplier_order",
        "open_after_sale",
        "update_after_sale",
        "refund_after_sale",
    } <= crash.retried


_REASONS = ("USER_CANCELLED", "SUPPLIER_CANCELLED", "PAYMENT_TIMEOUT", "PAYMENT_FAILED")


async def _lifecycle(api: Api, fast_api: Api) -> Decimal:
    """Six orders through the API; returns the money refunded."""
    supplier = api.supplier()
    tea = await api.product(supplier, price="10.00", product_type="tea")
    alice = await api.customer(coins="0.00")

    # A: paid, shipped, received and reviewed by the customer; one unit refunded after sale.
    a = await api.paid_order(alice, [(tea, 2)])
    so = a["supplier_orders"][0]
    item_id = so["sub_orders"][0]["items"][0]["item_id"]
    await api.ok(
        "POST",
        f"/supplier/orders/{so['id']}/shipments",
        supplier,
        {
            "carrier": "sf",
            "tracking_no": f"A-{a['order_no']}",
            "items": [{"item_id": item_id, "qty": 2}],
        },
        expect=201,
    )
    await api.ok("POST", f"/supplier-orders/{so['id']}/confirm-receipt", alice)
    asr = await api.ok(
        "POST",
        f"/supplier-orders/{so['id']}/after-sales",
        alice,
        {"item_id": item_id, "qty": 1, "type": "refund_only", "reason": "stale"},
        expect=201,
    )
    await api.ok("POST", f"/after-sales/{asr['id']}/approve", supplier, {"reason": "sorry"})

    async def refunded() -> Any:
        got = await api.ok("GET", f"/after-sales/{asr['id']}", alice)
        return got if got["status"] == "REFUNDED" else None

    after_sale = await eventually(refunded, 30, "after-sales refund")
    await _wait_open_after_sales_closed(api, so["id"])
    done = await api.ok("POST", f"/supplier-orders/{so['id']}/reviews", alice, {"rating": 5})
    assert done["status"] == "COMPLETED", done

    # B: cancelled by the customer before paying.
    b = await api.place(alice, [(tea, 1)])
    await api.ok("POST", f"/orders/{b['order_no']}/cancel", alice)
    # C: paid, then cancelled by the supplier: refunded in full.
    c = await api.paid_order(alice, [(tea, 1)])
    await api.ok(
        "POST",
        f"/supplier/orders/{c['supplier_orders'][0]['id']}/cancel",
        supplier,
        {"reason": "oos"},
    )
    # D: the payment fails.
    d = await api.place(alice, [(tea, 1)])
    await api.ok("POST", f"/orders/{d['order_no']}/pay", alice, {"status": "failed"}, expect=202)
    # E (2 s payment window): never paid.
    e = await fast_api.place(alice, [(tea, 1)])
    # F (1 s windows): shipped, then received and reviewed automatically.
    f = await fast_api.paid_order(alice, [(tea, 1)])
    fso = f["supplier_orders"][0]
    f_item = fso["sub_orders"][0]["items"][0]["item_id"]
    await fast_api.ok(
        "POST",
        f"/supplier/orders/{fso['id']}/shipments",
        supplier,
        {
            "carrier": "sf",
            "tracking_no": f"F-{f['order_no']}",
            "items": [{"item_id": f_item, "qty": 1}],
        },
        expect=201,
    )

    for no, status in (
        (b["order_no"], "CLOSED"),
        (c["order_no"], "CLOSED"),
        (d["order_no"], "CLOSED"),
        (e["order_no"], "CLOSED"),
        (f["order_no"], "FINISHED"),
        (a["order_no"], "FINISHED"),
    ):
        await _wait_status(api, alice, no, status)
    await _wait_refunds_settled(api)
    return Decimal(after_sale["refund_amount"]) + Decimal(c["paid"])


async def _wait_status(api: Api, who: Who, order_no: str, status: str) -> None:
    await api.wait_order(who, order_no, lambda o: o["status"] == status, f"{order_no} {status}", 30)


async def _wait_open_after_sales_closed(api: Api, so_id: str) -> None:
    async def closed() -> bool:
        async with api.sessions() as s:
            rows = (
                await s.scalars(
                    select(AfterSale.status).where(AfterSale.supplier_order_id == so_id)
                )
            ).all()
        return all(r in ("REFUNDED", "REJECTED", "CANCELLED") for r in rows)

    await eventually(closed, 30, "after-sales request closed")


async def _wait_refunds_settled(api: Api) -> None:
    async def settled() -> bool:
        async with api.sessions() as s:
            return set((await s.scalars(select(Refund.status))).all()) <= {"succeeded"}

    await eventually(settled, 30, "refunds settled")
