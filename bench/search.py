"""Admin search and CSV export at scale: 1,000,000 supplier orders in PostgreSQL.

    .venv/bin/python -m bench.search [--rows 1000000] [--samples 50] [--depth 50] [--limit 20]
                                     [--pg-url URL] [--export-batch 500]

One run starts a throwaway PostgreSQL (tests/support/postgres.py; `--pg-url` puts a fresh
database on an existing server instead), migrates it (`alembic upgrade head`) and seeds
`--rows` supplier orders with their orders, one sub-order and one item each and a payment per
paid order, by COPY in batches (not through the API), then VACUUM ANALYZE. The shape: 1 to 3
supplier orders per order (1.4 on average), a year of orders, customers and suppliers skewed
(a few with thousands of orders, most with a handful), statuses by age (the last minutes
unpaid, the last three weeks in flight, older ones finished or closed), order types 90 %
self, 7 % friend_pay, 3 % activity.

Then, calling the API's own search in-process (starter.api.routers.admin.search: the keyset
query, the page's details and the order views, as GET /admin/orders answers them, minus
HTTP), for each filter of GET /admin/orders: the time of a first page, and of a deep page (its
next_cursor followed `--depth` pages down, or as deep as the filter goes), `--samples` times
each, the filter's value varying from sample to sample (every status in turn, customers and
suppliers drawn by how many orders they have, the three order types, random 7-day windows),
p50 / p99 / max. Targets: page p99 <= 50 ms.

Last, the export: `GET /admin/orders/export.csv`'s generator (starter.api.routers.admin.
export_csv) run to the end without filters (every row) in a fresh process of its own, so its
peak RSS is the export's alone: rows/s (target >= 20,000) and the peak RSS before and after
(flat memory: the difference is the export's whole footprint).

Printed with the machine's load average (figures taken on a busy machine are not
comparable); the last line is JSON with all of it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import queries
from db.migrate import upgrade_async
from db.queries import OrderSearch
from db.session import make_engine, make_session_factory
from settings import Settings
from starter.api.routers import admin
from tests.support.postgres import create_database, drop_database, start_postgres

FILTERS = ("none", "status", "customer_id", "supplier_id", "order_type", "created")
PAGE_TARGET_MS = 50.0
EXPORT_TARGET = 20_000.0
CHUNK_ORDERS = 20_000  # orders generated and copied at a time
YEAR = timedelta(days=365)


# --- seeding --------------------------------------------------------------------------------


@dataclass
class Seeded:
    """What was written, and the filter values worth asking for."""

    orders: int = 0
    supplier_orders: int = 0
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    end: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    customers: Counter[str] = field(default_factory=Counter)
    suppliers: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql", query={}).render_as_string(False)


def _status(age: timedelta, r: float) -> tuple[str, list[str]]:
    """The order's status and a chooser of its supplier orders' by age."""
    if age < timedelta(minutes=15):
        if r < 0.6:
            return "PENDING_PAYMENT", ["PENDING_PAYMENT"]
        if r < 0.7:
            return "CLOSED", ["CLOSED"]
        return "PAID", ["PENDING_SHIPMENT"]
    if age < timedelta(days=20):
        if r < 0.55:
            return "PAID", ["PENDING_SHIPMENT", "PENDING_RECEIPT", "PENDING_REVIEW", "COMPLETED"]
        if r < 0.85:
            return "FINISHED", ["COMPLETED"]
        return "CLOSED", ["CLOSED"]
    if r < 0.85:
        return "FINISHED", ["COMPLETED"]
    return "CLOSED", ["CLOSED"]


ORDER_COLUMNS = [
    "order_no",
    "customer_id",
    "status",
    "close_reason",
    "subtotal",
    "postage",
    "coins",
    "payable",
    "paid",
    "refunded",
    "coins_refunded",
    "payment_method",
    "pay_deadline",
    "created_at",
    "paid_at",
    "closed_at",
    "plan",
    "order_type",
    "payer_id",
]
SO_COLUMNS = [
    "id",
    "order_no",
    "supplier_id",
    "customer_id",
    "status",
    "close_reason",
    "needs_address",
    "remark",
    "subtotal",
    "postage",
    "coin_share",
    "payable",
    "created_at",
    "paid_at",
    "closed_at",
    "received_at",
    "completed_at",
    "extended",
]
SUB_COLUMNS = ["id", "supplier_order_id", "product_type"]
ITEM_COLUMNS = [
    "id",
    "order_no",
    "supplier_order_id",
    "sub_order_id",
    "sku",
    "name",
    "product_type",
    "kind",
    "price",
    "qty",
    "shipped_qty",
    "refunded_qty",
    "line_total",
    "coin_share",
    "status",
    "source",
]
PAYMENT_COLUMNS = [
    "event_id",
    "order_no",
    "status",
    "amount",
    "method",
    "outcome",
    "at",
    "payer_id",
]


def _chunks(
    rows: int, rng: random.Random, end: datetime
) -> Iterator[dict[str, list[tuple[Any, ...]]]]:
    """The rows to copy, CHUNK_ORDERS orders at a time, `rows` supplier orders in all."""
    n_customers = max(10, rows // 20)
    n_suppliers = max(5, rows // 5000)
    expected_orders = max(1, int(rows / 1.4))
    start = end - YEAR
    step = YEAR / expected_orders
    zero = Decimal("0.00")
    made = 0
    i = 0
    while made < rows:
        out: dict[str, list[tuple[Any, ...]]] = {
            "orders": [],
            "supplier_orders": [],
            "sub_orders": [],
            "order_items": [],
            "payments": [],
        }
        for _ in range(CHUNK_ORDERS):
            if made >= rows:
                break
            r = rng.random()
            parts = min(1 if r < 0.65 else 2 if r < 0.95 else 3, rows - made)
            created = min(start + step * i + timedelta(milliseconds=rng.randrange(1000)), end)
            age = end - created
            status, so_statuses = _status(age, rng.random())
            customer = f"cust-{int(n_customers * rng.random() ** 3):06d}"
            no = f"{100_000_000_000 + i:015d}"
            order_type = rng.choices(("self", "friend_pay", "activity"), (90, 7, 3))[0]
            paid_at = created + timedelta(minutes=2) if status in ("PAID", "FINISHED") else None
            closed = status == "CLOSED"
            closed_at = created + timedelta(minutes=15) if closed else None
            reason = "PAYMENT_TIMEOUT" if closed else None
            suppliers: list[str] = []
            while len(suppliers) < parts:
                sid = f"sup-{int(n_suppliers * rng.random() ** 2):04d}"
                if sid not in suppliers:
                    suppliers.append(sid)
            prices = [Decimal(rng.randrange(500, 50_000)) / 100 for _ in suppliers]
            postage = [Decimal("6.00") if p < 99 else zero for p in prices]
            payable = sum(prices, zero) + sum(postage, zero)
            paid = payable if paid_at else zero
            out["orders"].append(
                (
                    no,
                    customer,
                    status,
                    reason,
                    sum(prices, zero),
                    sum(postage, zero),
                    zero,
                    payable,
                    paid,
                    zero,
                    zero,
                    "card" if paid_at else None,
                    created + timedelta(minutes=15),
                    created,
                    paid_at,
                    closed_at,
                    "{}",
                    order_type,
                    customer if paid_at else None,
                )
            )
            if paid_at:
                out["payments"].append(
                    (f"pay-{no}", no, "succeeded", payable, "card", "applied", paid_at, customer)
                )
            for k, (sid, price, post) in enumerate(zip(suppliers, prices, postage, strict=True)):
                so_id = f"{no}-{sid}"  # domain.split.supplier_order_id
                so_status = rng.choice(so_statuses)
                done = so_status == "COMPLETED"
                out["supplier_orders"].append(
                    (
                        so_id,
                        no,
                        sid,
                        customer,
                        so_status,
                        reason,
                        True,
                        "",
                        price,
                        post,
                        zero,
                        price + post,
                        created,
                        paid_at,
                        closed_at,
                        created + timedelta(days=3) if done else None,
                        created + timedelta(days=4) if done else None,
                        False,
                    )
                )
                out["sub_orders"].append((f"{so_id}-goods", so_id, "goods"))
                shipped = (
                    1 if so_status in ("PENDING_RECEIPT", "PENDING_REVIEW", "COMPLETED") else 0
                )
                out["order_items"].append(
                    (
                        f"{so_id}-i1",
                        no,
                        so_id,
                        f"{so_id}-goods",
                        f"sku-{sid}-{k}",
                        "Goods",
                        "goods",
                        "physical",
                        price,
                        1,
                        shipped,
                        0,
                        price,
                        zero,
                        "SHIPPED" if shipped else "CLOSED" if closed else "PENDING_SHIPMENT",
                        "normal",
                    )
                )
                made += 1
            i += 1
        yield out


async def seed(url: str, rows: int, rng: random.Random, say: Callable[[str], None]) -> Seeded:
    started = time.perf_counter()
    end = datetime.now(UTC).replace(microsecond=0)
    seeded = Seeded(start=end - YEAR, end=end)
    columns = {
        "orders": ORDER_COLUMNS,
        "supplier_orders": SO_COLUMNS,
        "sub_orders": SUB_COLUMNS,
        "order_items": ITEM_COLUMNS,
        "payments": PAYMENT_COLUMNS,
    }
    conn = await asyncpg.connect(_dsn(url), ssl=False)
    try:
        for chunk in _chunks(rows, rng, end):
            for table, records in chunk.items():
                if records:
                    await conn.copy_records_to_table(table, records=records, columns=columns[table])
            seeded.orders += len(chunk["orders"])
            seeded.supplier_orders += len(chunk["supplier_orders"])
            seeded.customers.update(o[1] for o in chunk["orders"])
            # An order has each of its suppliers once: supplier orders per supplier = orders.
            seeded.suppliers.update(so[2] for so in chunk["supplier_orders"])
            say(f"  seeded {seeded.supplier_orders:,} / {rows:,} supplier orders")
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    seeded.seconds = time.perf_counter() - started
    return seeded


# --- page timings -------------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


KINDS = ("query_first", "query_deep", "page_first", "page_deep")


@dataclass
class Timing:
    """Milliseconds per kind: the keyset query alone (db.queries.search_orders, in a session
    of its own) and the whole page (admin.search: query, details, views), first and deep."""

    ms: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    depths: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        def stats(v: list[float]) -> dict[str, float]:
            return {
                "p50": round(statistics.median(v), 2),
                "p99": round(pct(v, 99), 2),
                "max": round(max(v), 2),
                "n": len(v),
            }

        return {
            **{kind: stats(v) for kind, v in self.ms.items()},
            "deep_pages_min": min(self.depths),
            "deep_pages_max": max(self.depths),
        }


class Values:
    """The value each sample of a filter asks for."""

    def __init__(self, seeded: Seeded, rng: random.Random, limit: int, depth: int) -> None:
        self.seeded = seeded
        self.rng = rng
        self.turn = 0
        enough = limit * (depth + 1)
        self.customers = list(seeded.customers)
        self.customer_weights = list(itertools.accumulate(seeded.customers.values()))
        self.deep_customers = [c for c, n in seeded.customers.items() if n >= enough]
        self.suppliers = list(seeded.suppliers)
        self.supplier_weights = list(itertools.accumulate(seeded.suppliers.values()))
        self.deep_suppliers = [s for s, n in seeded.suppliers.items() if n >= enough]

    def __call__(self, name: str, deep: bool) -> OrderSearch:
        self.turn += 1
        rng = self.rng
        if name == "status":
            return OrderSearch(status=admin.STATUSES[self.turn % len(admin.STATUSES)])
        if name == "customer_id":
            if deep and self.deep_customers:
                return OrderSearch(customer_id=rng.choice(self.deep_customers))
            return OrderSearch(
                customer_id=rng.choices(self.customers, cum_weights=self.customer_weights)[0]
            )
        if name == "supplier_id":
            if deep and self.deep_suppliers:
                return OrderSearch(supplier_id=rng.choice(self.deep_suppliers))
            return OrderSearch(
                supplier_id=rng.choices(self.suppliers, cum_weights=self.supplier_weights)[0]
            )
        if name == "order_type":
            return OrderSearch(order_type=admin.ORDER_TYPES[self.turn % len(admin.ORDER_TYPES)])
        if name == "created":
            span = (self.seeded.end - self.seeded.start - timedelta(days=7)).total_seconds()
            start = self.seeded.start + timedelta(seconds=rng.uniform(0, max(span, 0)))
            return OrderSearch(created_from=start, created_before=start + timedelta(days=7))
        return OrderSearch()


async def deep_key(
    sessions: async_sessionmaker[AsyncSession], f: OrderSearch, limit: int, depth: int
) -> tuple[queries.OrderKey | None, int]:
    """`next_cursor` followed `depth` pages down (or to the last page): the key, pages."""
    after = None
    pages = 0
    async with sessions() as s:
        while pages < depth:
            _, nxt = await queries.search_orders(s, f, limit, after)
            if nxt is None:
                break
            after, pages = nxt, pages + 1
    return after, pages


async def time_pages(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    values: Values,
    samples: int,
    limit: int,
    depth: int,
) -> dict[str, Timing]:
    results = {name: Timing() for name in FILTERS}

    async def timed(call: Awaitable[Any]) -> float:
        t0 = time.perf_counter()
        await call
        return (time.perf_counter() - t0) * 1000

    async def query(f: OrderSearch, after: queries.OrderKey | None) -> None:
        async with sessions() as s:
            await queries.search_orders(s, f, limit, after)

    async def page(f: OrderSearch, after: queries.OrderKey | None) -> None:
        cursor = admin.encode_cursor(after) if after is not None else None
        await admin.search(sessions, settings, f, limit, cursor)

    # Warm up: the pool's connections, the statement caches.
    for name in FILTERS:
        await page(values(name, False), None)
    for _ in range(samples):
        for name in FILTERS:  # interleaved, so a burst of load spreads over every filter
            ms = results[name].ms
            f = values(name, False)
            ms["query_first"].append(await timed(query(f, None)))
            ms["page_first"].append(await timed(page(f, None)))
            f = values(name, True)
            after, pages = await deep_key(sessions, f, limit, depth)
            results[name].depths.append(pages)
            ms["query_deep"].append(await timed(query(f, after)))
            ms["page_deep"].append(await timed(page(f, after)))
    return results


# --- export -----------------------------------------------------------------------------------


def _memory_kb(field: str) -> int:
    """VmRSS (now) or VmHWM (peak) of this process. Not getrusage's ru_maxrss: Linux carries
    that over exec from the parent, whose peak (seeding) would hide the export's."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return 0


async def export_child(url: str, batch: int) -> dict[str, Any]:
    """In the export's own process: run the export to the end, count, measure memory."""
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    try:
        async with sessions() as s:  # connect before measuring
            await queries.search_orders(s, OrderSearch(), 1)
        peak_before = _memory_kb("VmHWM")
        rss_before = _memory_kb("VmRSS")
        rss_max = rss_before
        rows = chunks = size = 0
        t0 = time.perf_counter()
        async for chunk in admin.export_csv(sessions, OrderSearch(), batch):
            rows += chunk.count("\r\n")
            size += len(chunk.encode())
            chunks += 1
            if chunks % 50 == 0:
                rss_max = max(rss_max, _memory_kb("VmRSS"))
        seconds = time.perf_counter() - t0
    finally:
        await engine.dispose()
    return {
        "rows": rows - 1,  # the header
        "bytes": size,
        "chunks": chunks,
        "seconds": round(seconds, 3),
        "rows_per_s": round((rows - 1) / seconds, 1) if seconds else 0.0,
        "peak_rss_before_mb": round(peak_before / 1024, 1),
        "peak_rss_after_mb": round(_memory_kb("VmHWM") / 1024, 1),
        "rss_before_mb": round(rss_before / 1024, 1),
        "rss_max_sampled_mb": round(rss_max / 1024, 1),
    }


async def run_export(url: str, batch: int) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.search",
        "--export-only",
        url,
        "--export-batch",
        str(batch),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"export process failed ({proc.returncode}):\n{err.decode()[-4000:]}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


# --- main -----------------------------------------------------------------------------------------


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.search", description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000, help="supplier orders to seed")
    p.add_argument("--samples", type=int, default=50, help="timed pages per filter and depth")
    p.add_argument("--depth", type=int, default=50, help="pages followed for the deep page")
    p.add_argument("--limit", type=int, default=20, help="page size")
    p.add_argument("--export-batch", type=int, default=admin.EXPORT_BATCH)
    p.add_argument("--pg-url", help="an existing server: a fresh database is made on it")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--keep", action="store_true", help="with --pg-url: keep the seeded database (its URL)"
    )
    p.add_argument("--export-only", metavar="URL", help=argparse.SUPPRESS)
    return p.parse_args(argv)


@contextlib.contextmanager
def _server(pg_url: str | None) -> Iterator[str]:
    if pg_url:
        yield pg_url
    else:
        with start_postgres() as url:
            yield url


async def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    if args.export_only:
        print(json.dumps(await export_child(args.export_only, args.export_batch)))
        return 0

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    load_start = os.getloadavg()
    rng = random.Random(args.seed)
    with _server(args.pg_url) as server:
        name = f"bench_search_{uuid.uuid4().hex[:8]}"
        url = await create_database(server, name)
        try:
            say(f"migrating {make_url(url).render_as_string()}")
            await upgrade_async(url)
            say(f"seeding {args.rows:,} supplier orders")
            seeded = await seed(url, args.rows, rng, say)
            say(f"seeded in {seeded.seconds:.1f}s; timing pages")
            engine = make_engine(url)
            try:
                timings = await time_pages(
                    make_session_factory(engine),
                    Settings(),
                    Values(seeded, rng, args.limit, args.depth),
                    args.samples,
                    args.limit,
                    args.depth,
                )
            finally:
                await engine.dispose()
            load_pages = os.getloadavg()
            say("exporting")
            exported = await run_export(url, args.export_batch)
        finally:
            if args.keep and args.pg_url:
                say(f"kept {url}")
            else:
                await drop_database(server, name)
    load_end = os.getloadavg()

    pages = {name: t.summary() for name, t in timings.items()}
    worst_query = max(p[k]["p99"] for p in pages.values() for k in ("query_first", "query_deep"))
    worst = max(p[k]["p99"] for p in pages.values() for k in ("page_first", "page_deep"))
    report = {
        "rows": seeded.supplier_orders,
        "orders": seeded.orders,
        "seed_seconds": round(seeded.seconds, 1),
        "limit": args.limit,
        "depth": args.depth,
        "samples": args.samples,
        "pages_ms": pages,
        "query_p99_worst_ms": worst_query,
        "page_p99_worst_ms": worst,
        "page_target_ms": PAGE_TARGET_MS,
        "export": exported,
        "export_target_rows_per_s": EXPORT_TARGET,
        "cpus": os.cpu_count(),
        "loadavg_start": [round(x, 2) for x in load_start],
        "loadavg_after_pages": [round(x, 2) for x in load_pages],
        "loadavg_end": [round(x, 2) for x in load_end],
    }
    print(
        f"admin search on {seeded.supplier_orders:,} supplier orders ({seeded.orders:,} orders), "
        f"PostgreSQL, page size {args.limit}, deep = {args.depth} pages down, "
        f"{args.samples} samples each, ms p50/p99"
    )
    print(
        f"{'':<12} {'keyset query':^27} {'page (query, details, views)':^29}\n"
        f"{'filter':<12} {'first':>13} {'deep':>13}   {'first':>13} {'deep':>13}  deep pages"
    )
    for name, p in pages.items():
        depth = (
            str(p["deep_pages_max"])
            if p["deep_pages_min"] == p["deep_pages_max"]
            else f"{p['deep_pages_min']}-{p['deep_pages_max']}"
        )
        cells = [f"{p[k]['p50']:>6.1f}/{p[k]['p99']:<6.1f}" for k in KINDS]
        print(f"{name:<12} {cells[0]} {cells[1]}   {cells[2]} {cells[3]}  {depth}")
    verdict = "ok" if worst <= PAGE_TARGET_MS else "OVER"
    print(
        f"worst p99: keyset query {worst_query:.1f} ms, whole page {worst:.1f} ms "
        f"(target <= {PAGE_TARGET_MS:.0f}: {verdict})"
    )
    e = exported
    verdict = "ok" if e["rows_per_s"] >= EXPORT_TARGET else "UNDER"
    print(
        f"export: {e['rows']:,} rows ({e['bytes'] / 1e6:.1f} MB, {e['chunks']:,} chunks) in "
        f"{e['seconds']:.1f}s = {e['rows_per_s']:,.0f} rows/s (target >= {EXPORT_TARGET:,.0f}: "
        f"{verdict}); peak RSS {e['peak_rss_before_mb']} MB before, {e['peak_rss_after_mb']} MB "
        f"after (RSS {e['rss_before_mb']} → max {e['rss_max_sampled_mb']} MB)"
    )
    la = [f"{x:.2f}" for x in (*load_start, *load_end)]
    print(
        f"load average (1/5/15 min) {' '.join(la[:3])} at start, {' '.join(la[3:])} at end, "
        f"on {os.cpu_count()} cores"
    )
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
