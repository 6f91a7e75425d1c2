"""Business metrics derived from the read model at scrape time (DESIGN.md §10).

Every counter is an aggregate over rows the activities commit exactly once (each write
carries an idempotency key, so a retried activity finds its result and adds no row). So
the numbers are the same whichever API process is scraped, however many workers and API
processes run, and across activity retries and worker crashes; a restarted API process
does not reset them either. Counters only count facts that never change once written
(an order row exists, a payment time, a terminal status, a package, a log entry), so they
never go down.

- `orders_submitted_total`: order rows (a refused submit rolls back and leaves none);
- `orders_paid_total`: orders with a payment time;
- `orders_closed_total{reason}`: orders CLOSED, by close reason;
- `orders_payment_wait_seconds`: histogram of paid_at - created_at over paid orders;
- `shipments_total`: packages recorded (virtual deliveries included);
- `receipts_confirmed_total{by}`: supplier orders received, by the customer or
  automatically at the deadline (the `receipt_confirmed` / `receipt_auto_confirmed` log);
- `reviews_total{by}`: supplier orders whose review is complete, `auto` when the platform
  wrote (part of) it at the deadline;
- `refunds_total{reason}`, `refunds_amount_total`: refunds decided (refund rows, written in
  the transaction of the cancellation, closure or after-sales decision), and their money;
- `after_sales_total{status}`: after-sales requests that reached each status (the
  REQUESTED count is every request opened), from the operation log;
- `orders_by_status{status}` (a gauge): orders in each status now.

The queries are a handful of aggregates; `ReadModelCollector.refresh` keeps a result for
ORDERS_METRICS_CACHE_SECONDS and lets concurrent scrapes share one refresh.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import ColumnElement, Float, case, cast, distinct, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.tables import Order, OrderLog, Package, Refund, Review, SupplierOrder
from domain.states import AfterSaleStatus, CloseReason, OrderStatus

log = logging.getLogger(__name__)

# Seconds from submit to payment; the default payment window is 30 minutes.
PAYMENT_WAIT_BUCKETS: tuple[float, ...] = (
    5.0,
    15.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    900.0,
    1200.0,
    1800.0,
    3600.0,
    7200.0,
)

RECEIPT_ACTIONS = {"receipt_confirmed": "customer", "receipt_auto_confirmed": "auto"}
AFTER_SALE_ACTIONS = {f"after_sale_{s.lower()}": s.value for s in AfterSaleStatus}
BY = ("customer", "auto")


@dataclass
class Snapshot:
    submitted: int = 0
    paid: int = 0
    closed: dict[str, int] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)
    # cumulative counts per PAYMENT_WAIT_BUCKETS bound, then the sum of waits
    wait_buckets: list[int] = field(default_factory=lambda: [0] * len(PAYMENT_WAIT_BUCKETS))
    wait_sum: float = 0.0
    shipments: int = 0
    receipts: dict[str, int] = field(default_factory=dict)
    reviews: dict[str, int] = field(default_factory=dict)
    refunds: dict[str, int] = field(default_factory=dict)
    refunds_amount: Decimal = Decimal("0")
    after_sales: dict[str, int] = field(default_factory=dict)


def _payment_wait(dialect: str) -> ColumnElement[float]:
    """paid_at - created_at in seconds, in the database's own date arithmetic."""
    if dialect == "postgresql":
        return cast(func.extract("epoch", Order.paid_at - Order.created_at), Float)
    # SQLite keeps timestamps as ISO text; julian days are doubles good to ~40 µs, so the
    # difference is rounded to the millisecond.
    days = func.julianday(Order.paid_at) - func.julianday(Order.created_at)
    return cast(func.round(days * literal(86400.0), 3), Float)


async def read_snapshot(session: AsyncSession) -> Snapshot:
    """The business counters as of one read transaction of the read model."""
    snap = Snapshot()
    dialect = session.get_bind().dialect.name
    wait = _payment_wait(dialect)
    paid = Order.paid_at.is_not(None)
    row = (
        await session.execute(
            select(
                func.count(),
                func.count(Order.paid_at),
                func.sum(case((paid, wait), else_=None)),
                *(
                    func.sum(case((paid & (wait <= bound), 1), else_=0))
                    for bound in PAYMENT_WAIT_BUCKETS
                ),
            ).select_from(Order)
        )
    ).one()
    snap.submitted, snap.paid = int(row[0]), int(row[1])
    snap.wait_sum = float(row[2] or 0.0)
    snap.wait_buckets = [int(v or 0) for v in row[3:]]

    snap.closed = {reason.value: 0 for reason in CloseReason}
    for reason, n in await session.execute(
        select(Order.close_reason, func.count())
        .where(Order.status == OrderStatus.CLOSED)
        .group_by(Order.close_reason)
    ):
        snap.closed[reason or "UNKNOWN"] = int(n)

    snap.by_status = {status.value: 0 for status in OrderStatus}
    for status, n in await session.execute(
        select(Order.status, func.count()).group_by(Order.status)
    ):
        snap.by_status[status] = int(n)

    snap.shipments = int(await session.scalar(select(func.count()).select_from(Package)) or 0)

    snap.receipts = dict.fromkeys(BY, 0)
    for action, n in await session.execute(
        select(OrderLog.action, func.count(distinct(OrderLog.supplier_order_id)))
        .where(OrderLog.action.in_(RECEIPT_ACTIONS))
        .group_by(OrderLog.action)
    ):
        snap.receipts[RECEIPT_ACTIONS[action]] += int(n)

    # One row per supplier order whose review is complete: auto when any line was auto-reviewed.
    per_order = (
        select(
            Review.supplier_order_id.label("so_id"),
            func.max(case((Review.auto, 1), else_=0)).label("auto"),
        )
        .group_by(Review.supplier_order_id)
        .subquery()
    )
    snap.reviews = dict.fromkeys(BY, 0)
    for auto, n in await session.execute(
        select(per_order.c.auto, func.count())
        .join(SupplierOrder, SupplierOrder.id == per_order.c.so_id)
        .where(SupplierOrder.completed_at.is_not(None))
        .group_by(per_order.c.auto)
    ):
        snap.reviews["auto" if auto else "customer"] += int(n)

    for reason, n, amount in await session.execute(
        select(Refund.reason, func.count(), func.sum(Refund.amount)).group_by(Refund.reason)
    ):
        snap.refunds[reason] = int(n)
        snap.refunds_amount += Decimal(amount or 0)

    snap.after_sales = dict.fromkeys(AFTER_SALE_ACTIONS.values(), 0)
    for action, n in await session.execute(
        select(OrderLog.action, func.count())
        .where(OrderLog.action.in_(AFTER_SALE_ACTIONS))
        .group_by(OrderLog.action)
    ):
        snap.after_sales[AFTER_SALE_ACTIONS[action]] += int(n)
    return snap


def families(snap: Snapshot) -> Iterable[Metric]:
    """The Prometheus metric families of one snapshot."""
    yield CounterMetricFamily("orders_submitted", "Orders submitted (placed)", snap.submitted)
    yield CounterMetricFamily("orders_paid", "Orders paid", snap.paid)
    closed = CounterMetricFamily("orders_closed", "Orders closed, by reason", labels=["reason"])
    for reason, n in sorted(snap.closed.items()):
        closed.add_metric([reason], n)
    yield closed
    by_status = GaugeMetricFamily(
        "orders_by_status", "Orders in each status now", labels=["status"]
    )
    for status, n in snap.by_status.items():
        by_status.add_metric([status], n)
    yield by_status
    buckets: list[tuple[str, float]] = [
        (_bound(b), n) for b, n in zip(PAYMENT_WAIT_BUCKETS, snap.wait_buckets, strict=True)
    ]
    buckets.append(("+Inf", snap.paid))
    yield HistogramMetricFamily(
        "orders_payment_wait_seconds",
        "Time from submit to payment of paid orders",
        buckets=buckets,
        sum_value=snap.wait_sum,
    )
    yield CounterMetricFamily(
        "shipments", "Packages shipped (or virtual deliveries)", snap.shipments
    )
    receipts = CounterMetricFamily(
        "receipts_confirmed", "Supplier orders received, by who confirmed", labels=["by"]
    )
    for by, n in snap.receipts.items():
        receipts.add_metric([by], n)
    yield receipts
    reviews = CounterMetricFamily(
        "reviews", "Supplier orders reviewed, by customer or automatically", labels=["by"]
    )
    for by, n in snap.reviews.items():
        reviews.add_metric([by], n)
    yield reviews
    refunds = CounterMetricFamily("refunds", "Refunds decided, by reason", labels=["reason"])
    for reason, n in sorted(snap.refunds.items()):
        refunds.add_metric([reason], n)
    yield refunds
    yield CounterMetricFamily(
        "refunds_amount", "Money of the refunds decided", float(snap.refunds_amount)
    )
    after_sales = CounterMetricFamily(
        "after_sales", "After-sales requests that reached each status", labels=["status"]
    )
    for status, n in snap.after_sales.items():
        after_sales.add_metric([status], n)
    yield after_sales


def _bound(b: float) -> str:
    return repr(float(b))


class ReadModelCollector(Collector):
    """Serves the last snapshot; `refresh` (awaited by GET /metrics) renews it when stale."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._snapshot: Snapshot | None = None
        self._taken: float | None = None
        self._lock = asyncio.Lock()
        self.queries = 0  # refreshes that reached the database (tests watch the cache)

    def _fresh(self) -> bool:
        return self._taken is not None and time.monotonic() - self._taken < self.ttl

    async def refresh(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        if self._fresh():
            return
        async with self._lock:
            if self._fresh():  # another scrape refreshed it while this one waited
                return
            self.queries += 1
            try:
                async with sessions() as session:
                    self._snapshot = await read_snapshot(session)
            except Exception:
                # A failure is cached too: a scrape storm must not hammer a struggling DB.
                log.exception("metrics: reading the read model failed")
                self._snapshot = None
            self._taken = time.monotonic()

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily(
            "orders_metrics_read_model_up",
            "1 when the business metrics below were read from the read model",
            1 if self._snapshot is not None else 0,
        )
        if self._snapshot is not None:
            yield from families(self._snapshot)
