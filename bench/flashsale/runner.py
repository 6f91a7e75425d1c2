"""One run: PostgreSQL and the dev server, one `python -m worker` and one `python -m starter.api`
(bench.scaleout's processes), the warm-up, the flash sale, the wait until every order closed,
the histories, then the checks; returns the run's record."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import func, select, text
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from bench.flashsale.histories import closes
from bench.flashsale.report import Report, Window
from bench.flashsale.sampler import Sample, Sampler
from bench.flashsale.submit import Submits
from bench.lifecycle.cpu import machine_busy_s, process_cpu_s
from bench.lifecycle.shop import Shop, connect_shop
from bench.scaleout.apis import Apis
from bench.scaleout.checks import check_clients
from bench.scaleout.config import service_env
from bench.scaleout.database import read_model_database
from bench.scaleout.logs import pg_log_and_pids, worker_log_problems
from bench.scaleout.readiness import poll_until, start_ready
from bench.scaleout.service import Service
from bench.server import DevServer, free_port
from db.tables import Customer, Order, Product
from domain.states import CloseReason, OrderStatus
from settings import Settings
from tests.support.invariants import check_invariants

SEED_COINS = Decimal("1000000.00")  # bench.lifecycle.Shop.seed


def _kv(pairs: Sequence[str]) -> dict[str, str]:
    out = {}
    for p in pairs:
        k, sep, v = p.partition("=")
        if not sep:
            raise SystemExit(f"expected K=V, got {p!r}")
        out[k] = v
    return out


async def run(args: argparse.Namespace) -> Report:
    report = Report(
        orders=args.orders,
        clients=args.clients,
        payment_timeout_s=args.payment_timeout,
        cache_max=args.cache
        if args.cache is not None
        else int(Settings.model_fields["worker_max_cached_workflows"].default),
        loadavg_start=os.getloadavg(),
    )
    t_start = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="bench-flashsale-"))
    print(f"work dir {tmp} (logs of every process)", flush=True)
    ok = False
    try:
        async with read_model_database(args.pg_url, "flashsale") as url:
            report.database_url = url
            report.lap("database")
            async with DevServer(
                in_memory=args.in_memory, dynamic_config=args.dynamic_config, workdir=tmp
            ) as server:
                report.lap("temporal")
                await _run_on(server, url, tmp, args, report)
        ok = not report.failed
    finally:
        if args.keep or not ok:
            print(f"kept {tmp}", flush=True)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    report.elapsed_s = time.monotonic() - t_start
    return report


class Cores:
    """Cores used by each side over a window, and the load average at its ends."""

    def __init__(self, pids: dict[str, int], pg_pids: Callable[[], list[int]]) -> None:
        self.pids, self.pg_pids = pids, pg_pids

    def _now(self) -> dict[str, float]:
        cpu = {k: process_cpu_s([pid]) for k, pid in self.pids.items()}
        cpu |= {"postgres": process_cpu_s(self.pg_pids()), "driver": time.process_time()}
        return cpu | {"machine": machine_busy_s(), "t": time.monotonic()}

    @contextlib.asynccontextmanager
    async def window(self, report: Report, name: str) -> AsyncIterator[None]:
        before, la0 = self._now(), os.getloadavg()
        yield
        after, la1 = self._now(), os.getloadavg()
        wall = max(after.pop("t") - before.pop("t"), 1e-9)
        used = {k: max(after[k] - before[k], 0.0) / wall for k in before}
        machine = used.pop("machine")
        used["other"] = max(machine - sum(used.values()), 0.0)
        w: Window = {
            "seconds": round(wall, 1),
            "loadavg_start": [round(x, 2) for x in la0],
            "loadavg_end": [round(x, 2) for x in la1],
            "cores": {k: round(v, 2) for k, v in used.items()},
        }
        report.windows[name] = w


async def _run_on(
    server: DevServer, url: str, tmp: Path, args: argparse.Namespace, report: Report
) -> None:
    client = await Client.connect(server.address, data_converter=pydantic_data_converter)
    shop = connect_shop(url, "f")
    await shop.seed()
    prefix = f"{shop.tag}-c"
    async with shop.engine.connect() as conn:
        data_dir = str(await conn.scalar(text("SHOW data_directory")))
    _, pg_pids = pg_log_and_pids(data_dir)
    report.lap("seed")

    task_queue = f"flashsale-{shop.tag}"
    metrics_port = free_port()
    extra = {"ORDERS_PAYMENT_TIMEOUT": f"{args.payment_timeout:g}"} | _kv(args.env)
    if args.cache is not None:
        extra["ORDERS_WORKER_MAX_CACHED_WORKFLOWS"] = str(args.cache)
    worker = Service(
        "worker",
        "worker",
        service_env(server.address, url, task_queue)
        | extra
        | {"ORDERS_WORKER_METRICS_PORT": str(metrics_port)},
        tmp,
    )
    port = free_port()
    api = Service(
        "api", "api", service_env(server.address, url, task_queue, port) | extra, tmp, port=port
    )
    submits: Submits | None = None
    try:
        await start_ready([worker, api], client, task_queue)
        report.lap("start")
        assert server.proc is not None
        pids = {"worker": worker.pid, "api": api.pid, "server": server.proc.pid}
        apis = Apis([api], report.tally)
        submits = Submits(apis, shop, f"{shop.tag}-o")
        await _sale(
            args,
            report,
            shop,
            submits,
            Sampler(
                pids,
                metrics_port,
                shop.reads,
                prefix,
                lambda: len(submits.orders),
            ),
            Cores(pids, pg_pids),
            client,
        )
        await apis.aclose()
    finally:
        for svc in (worker, api):
            if svc.proc is not None:
                try:
                    report.exits[svc.name] = await svc.stop(signal.SIGTERM, timeout=60)
                except RuntimeError:
                    report.exits[svc.name] = -999
        report.worker_problems = worker_log_problems([worker])
        report.lap("stop")
    if submits is not None:
        report.checks += await _check_read_model(shop, submits, prefix)
        report.lap("checks")
    await shop.dispose()
    report.checks += check_clients(report.tally, [api])
    report.checks.append(
        (
            all(code == 0 for code in report.exits.values()),
            f"every process exits 0 on SIGTERM at the end: {report.exits}",
        )
    )


async def _sale(
    args: argparse.Namespace,
    report: Report,
    shop: Shop,
    submits: Submits,
    sampler: Sampler,
    cores: Cores,
    client: Client,
) -> None:
    total = args.warmup + args.orders
    with Progress(
        TextColumn("{task.description:>10s}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        disable=args.no_progress,
    ) as progress:
        bar_sub = progress.add_task("submitted", total=total, info="")
        bar_closed = progress.add_task("closed", total=total, info="")

        def shown(s: Sample) -> None:
            rss = " ".join(f"{k} {v:.0f}" for k, v in s.rss_mb.items())
            progress.update(bar_closed, completed=s.closed, info=f"RSS MB {rss}; cached {s.cached}")

        submits.on_submit = lambda: progress.update(bar_sub, completed=len(submits.orders))
        sampler.on_sample = shown
        if args.warmup:
            await submits.run(1_000_000, args.warmup, min(args.clients, args.warmup), False)
        report.lap("warm-up")
        report.base = await sampler.sample()
        async with sampler.running():
            async with cores.window(report, "submit"):
                await submits.run(0, args.orders, args.clients)
            report.submits_ended = datetime.now(UTC)
            report.all_open = await sampler.sample()
            report.lap("submit")
            report.submit_rate = submits.rate
            report.submit_s = [s.latency_s for s in submits.measured]
            report.submit_errors = submits.errors
            if submits.orders:
                first_deadline = min(s.deadline for s in submits.orders)
                report.first_deadline_during_submits = first_deadline < datetime.now(UTC)
            last = max((s.deadline for s in submits.orders), default=datetime.now(UTC))
            wait = max((last - datetime.now(UTC)).total_seconds(), 0) + args.drain_timeout

            async def all_closed() -> bool:
                return (await sampler.closed()) >= len(submits.orders)

            async with cores.window(report, "drain"):
                try:
                    await poll_until(all_closed, wait, "every order CLOSED", tick=1.0)
                except RuntimeError as err:
                    report.checks.append((False, str(err)))
            await sampler.sample()
        report.peaks_mb = sampler.peaks_mb()
        report.samples = sampler.samples
        report.lap("drain")
    print(f"reading {len(submits.orders)} histories ...", flush=True)
    report.closes = await closes(client, submits.orders)
    report.lap("histories")
    found = [c for c in report.closes if c.closed is not None]
    if found:
        report.drain_s = (
            max(c.closed for c in found if c.closed) - max(c.deadline for c in found)
        ).total_seconds()
    bad = [c for c in report.closes if c.error]
    report.checks.append(
        (
            not bad,
            f"close time read from the history of {len(found)} of {len(report.closes)} orders"
            + (f" (e.g. {[(c.order_no, c.error) for c in bad[:3]]})" if bad else ""),
        )
    )


async def _check_read_model(shop: Shop, submits: Submits, prefix: str) -> list[tuple[bool, str]]:
    out: list[tuple[bool, str]] = []
    want = len(submits.orders) + len(submits.errors)
    out.append(
        (
            not submits.errors,
            f"submits: {len(submits.orders)} of {want} answered 201"
            + (f" (e.g. {submits.errors[:3]})" if submits.errors else ""),
        )
    )
    async with shop.reads() as s:
        rows = (
            await s.execute(
                select(Order.status, Order.close_reason, func.count())
                .where(Order.customer_id.like(f"{prefix}%"))
                .group_by(Order.status, Order.close_reason)
            )
        ).all()
        by = {f"{st}/{reason}": int(n) for st, reason, n in rows}
        good = by.get(f"{OrderStatus.CLOSED.value}/{CloseReason.PAYMENT_TIMEOUT.value}", 0)
        out.append(
            (
                good == len(submits.orders) and len(by) == 1,
                f"orders: {good} of {len(submits.orders)} CLOSED with PAYMENT_TIMEOUT "
                f"(read model by status/reason: {by})",
            )
        )
        reserved = int(
            await s.scalar(
                select(func.coalesce(func.sum(Product.reserved), 0)).where(
                    Product.sku.like(f"{shop.tag}-%")
                )
            )
            or 0
        )
        out.append((reserved == 0, f"stock back: {reserved} units still reserved"))
        short = (
            await s.execute(
                select(Customer.id, Customer.coins).where(
                    Customer.id.like(f"{prefix}%"), Customer.coins != SEED_COINS
                )
            )
        ).all()
        out.append(
            (
                not short,
                f"coins back: {len(short)} customers not at their seeded {SEED_COINS}"
                + (f" (e.g. {short[:3]})" if short else ""),
            )
        )
    try:
        await check_invariants(shop.sessions)
        out.append((True, "read-model invariants: stock, coins, money, inbox, operation log"))
    except AssertionError as err:
        out.append((False, f"read-model invariants: {str(err)[:500]}"))
    return out
