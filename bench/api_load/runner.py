"""One run: PostgreSQL and the dev server, one `python -m worker` and N `python -m starter.api`
processes (bench.scaleout's Service), the three phases, then everything stopped."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import text
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from bench.api_load.gc import Pauses, gc_pauses, since
from bench.api_load.phases import closed_phase, empty_rate, overload_phase
from bench.api_load.report import Report
from bench.lifecycle.shop import connect_shop
from bench.lifecycle.watch import ReadModelWatch
from bench.scaleout.apis import Apis, Tally
from bench.scaleout.config import service_env
from bench.scaleout.database import read_model_database
from bench.scaleout.logs import pg_log_and_pids
from bench.scaleout.phases import warm_up
from bench.scaleout.readiness import start_ready
from bench.scaleout.service import Service
from bench.scaleout.stack import Stack
from bench.server import DevServer, free_port


def _env_pairs(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--api-env / --worker-env take KEY=VALUE, got {pair!r}")
        out[key] = value
    return out


async def run(args: argparse.Namespace) -> Report:
    report = Report(loadavg_start=os.getloadavg())
    t_start = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="bench-api-"))
    print(f"work dir {tmp} (logs of every process)", flush=True)
    try:
        async with read_model_database(args.pg_url, "apiload") as url:
            report.lap("database")
            async with DevServer(in_memory=args.in_memory, workdir=tmp) as server:
                report.lap("temporal")
                await _run_on(server, url, tmp, args, report)
    finally:
        if args.keep or report.errors:
            print(f"kept {tmp}", flush=True)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    report.elapsed_s = time.monotonic() - t_start
    return report


async def _run_on(
    server: DevServer, url: str, tmp: Path, args: argparse.Namespace, report: Report
) -> None:
    client = await Client.connect(server.address, data_converter=pydantic_data_converter)
    shop = connect_shop(url, "a")
    await shop.seed()
    async with shop.engine.connect() as conn:
        data_dir = str(await conn.scalar(text("SHOW data_directory")))
    _, pg_pids = pg_log_and_pids(data_dir)
    report.lap("seed")

    task_queue = f"api-load-{shop.tag}"
    worker_env = service_env(server.address, url, task_queue) | _env_pairs(args.worker_env)
    workers = [Service("worker-1", "worker", worker_env, tmp)]
    apis: list[Service] = []
    api_extra = _env_pairs(args.api_env)
    report.api_env = api_extra
    for k in range(1, args.apis + 1):
        port = free_port()
        env = service_env(server.address, url, task_queue, port) | api_extra
        apis.append(Service(f"api-{k}", "api", env, tmp, port=port))
    tally = Tally()
    gc_before: dict[str, Pauses] = {}
    try:
        async with ReadModelWatch(shop.reads) as watch:
            stack = Stack(server, client, shop, task_queue, workers, apis, tally, watch, pg_pids)
            await start_ready([*workers, *apis], client, task_queue)
            report.lap("start")
            gc_before = {api.name: await gc_pauses(api) for api in apis}  # startup's own
            # (a) first, on the idle server (the service's processes are up, idle).
            if args.empty > 0:
                print(f"(a) {args.empty} empty workflows, {args.empty_concurrency} in flight")
                report.empty = await empty_rate(stack, args.empty, args.empty_concurrency)
                report.lap("(a) empty")
            if args.warmup > 0:
                balancer = Apis(apis, Tally(), timeout=args.request_timeout)
                balancer.active = len(apis)
                try:
                    await warm_up(stack, balancer, args.warmup, args.concurrency, "warm")
                finally:
                    await balancer.aclose()
                report.lap("warm-up")
            if args.orders > 0:
                print(f"(b) {args.orders} lifecycles, {args.concurrency} in flight")
                report.steady = await closed_phase(
                    stack,
                    "b",
                    args.orders,
                    args.concurrency,
                    args.request_timeout,
                    args.poll_s,
                    0,
                    live=not args.poll_no_live,
                )
                report.lap("(b) lifecycles")
            if args.overload_seconds > 0 and report.steady is not None:
                measured_rate = report.steady.phase.run.rate
                rate = max(measured_rate, 0.05) * args.overload_factor
                load = (
                    f"open loop {rate:.2f} lifecycles/s for {args.overload_seconds:.0f} s "
                    f"({args.overload_factor:g}x (b)'s {measured_rate:.2f}/s)"
                )
                print(f"(c) {load}")
                report.overload = await overload_phase(
                    stack,
                    "c",
                    rate,
                    args.overload_seconds,
                    args.request_timeout,
                    args.poll_s,
                    1_000_000,
                    load,
                    live=not args.poll_no_live,
                )
                report.lap("(c) overload")
    finally:
        for api in apis:
            if api.proc is not None and api.name in gc_before:
                try:
                    after = await gc_pauses(api)
                except (httpx.HTTPError, ValueError) as e:  # said, and the run goes on
                    print(f"{api.name}: no GC pauses from /metrics ({e!r})")
                    continue
                report.api_gc[api.name] = since(gc_before[api.name], after)
        for svc in [*workers, *apis]:
            if svc.proc is not None:
                try:
                    report.exits[svc.name] = await svc.stop(signal.SIGTERM, timeout=60)
                except RuntimeError:
                    report.exits[svc.name] = -999
        await shop.dispose()
        report.lap("stop")
