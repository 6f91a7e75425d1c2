"""One run: PostgreSQL and the dev server started, the service's processes on one task queue,
the phases, then every check; returns the run's record."""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

from sqlalchemy import text
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from bench.lifecycle.shop import connect_shop
from bench.lifecycle.watch import ReadModelWatch
from bench.scaleout.apis import Apis
from bench.scaleout.checks import check_clients, check_faults, check_workflows
from bench.scaleout.config import service_env
from bench.scaleout.database import read_model_database
from bench.scaleout.logs import pg_log_and_pids, pg_log_conflicts, worker_log_problems
from bench.scaleout.phases import clean_phase, fault_phase, warm_up
from bench.scaleout.read_model_checks import check_read_model, wait_refunds_settled
from bench.scaleout.readiness import start_ready
from bench.scaleout.report import Report
from bench.scaleout.service import Service
from bench.scaleout.stack import Stack
from bench.server import DevServer, free_port


async def run(args: argparse.Namespace) -> Report:
    report = Report(loadavg_start=os.getloadavg())
    t_start = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="bench-scaleout-"))
    print(f"work dir {tmp} (logs of every process)", flush=True)
    ok = False
    try:
        async with read_model_database(args.pg_url, "scaleout") as url:
            report.database_url = url
            report.lap("database")
            async with DevServer(in_memory=args.in_memory, workdir=tmp) as server:
                report.lap("temporal")
                await _run_on(server, url, tmp, args, report)
        ok = not report.failed
    finally:
        if args.keep or not ok:  # a failed run keeps its logs for the post-mortem
            print(f"kept {tmp}", flush=True)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    report.elapsed_s = time.monotonic() - t_start
    return report


async def _run_on(
    server: DevServer, url: str, tmp: Path, args: argparse.Namespace, report: Report
) -> None:
    client = await Client.connect(server.address, data_converter=pydantic_data_converter)
    shop = connect_shop(url, "s")
    await shop.seed()
    report.lap("seed")
    report.customer_prefix = f"{shop.tag}-c"
    async with shop.engine.connect() as conn:
        report.isolation = str(await conn.scalar(text("SHOW default_transaction_isolation")))
        data_dir = str(await conn.scalar(text("SHOW data_directory")))
    pg_log, pg_pids = pg_log_and_pids(data_dir)
    conflicts_before, _ = pg_log_conflicts(pg_log)

    task_queue = f"scaleout-{shop.tag}"
    workers = [
        Service(f"worker-{k}", "worker", service_env(server.address, url, task_queue), tmp)
        for k in (1, 2)
    ]
    apis: list[Service] = []
    for k in (1, 2):
        port = free_port()
        env = service_env(server.address, url, task_queue, port)
        apis.append(Service(f"api-{k}", "api", env, tmp, port=port))
    tally = report.tally
    balancer = Apis(apis, tally)
    try:
        async with ReadModelWatch(shop.reads) as watch:
            stack = Stack(server, client, shop, task_queue, workers, apis, tally, watch, pg_pids)
            base = itertools.count(0, 1_000_000)
            warm: list[str] = []
            if args.orders > 0:
                for k, name in ((1, "1+1"), (2, "2+2")):
                    await start_ready([workers[k - 1], apis[k - 1]], client, task_queue)
                    report.lap(f"start {name}")
                    balancer.active = k
                    warm += await warm_up(
                        stack, balancer, args.warmup, args.concurrency, f"warm{k}"
                    )
                    print(f"phase {name} ...", flush=True)
                    report.phases.append(
                        await clean_phase(
                            stack,
                            balancer,
                            name,
                            args.orders,
                            args.concurrency,
                            args.dup_pay_every,
                            next(base),
                        )
                    )
                    report.lap(f"phase {name}")
            else:
                await start_ready([*workers, *apis], client, task_queue)
                report.lap("start 2+2")
                balancer.active = 2
            if args.fault_orders > 0:
                print("phase faults ...", flush=True)
                phase, report.faults = await fault_phase(
                    stack,
                    balancer,
                    args.fault_orders,
                    args.concurrency,
                    args.dup_pay_every,
                    next(base),
                )
                report.phases.append(phase)
                report.lap("phase faults")

            print("checking ...", flush=True)
            report.order_nos += warm
            for p in report.phases:
                report.order_nos += p.order_nos
                report.dup_paid += p.dup_paid
            errors = [e for p in report.phases for e in p.run.errors]
            report.checks.append(
                (
                    not errors,
                    f"lifecycles: {len(errors)} failed" + (f" ({errors[:3]})" if errors else ""),
                )
            )
            try:
                await wait_refunds_settled(shop.sessions, report.order_nos)
            except RuntimeError as err:
                report.checks.append((False, str(err)))  # and the refunds check says which
            report.checks.append(await check_workflows(client, task_queue, len(report.order_nos)))
            report.checks += await check_read_model(
                shop.sessions, report.order_nos, report.dup_paid, report.customer_prefix
            )
            report.lap("checks")
    finally:
        for svc in [*workers, *apis]:
            if svc.proc is not None:
                try:
                    report.exits[svc.name] = await svc.stop(signal.SIGTERM, timeout=60)
                except RuntimeError:
                    report.exits[svc.name] = -999
        await balancer.aclose()
        await shop.dispose()
        report.worker_problems = worker_log_problems(workers)
        report.lap("stop")

    conflicts_after, report.pg_examples = pg_log_conflicts(pg_log)
    report.pg_conflicts = conflicts_after - conflicts_before if pg_log is not None else -1
    report.checks += check_clients(tally, apis)
    if report.faults is not None:
        report.checks += check_faults(report.faults, tally)
    report.checks.append(
        (
            all(code == 0 for code in report.exits.values()),
            f"every process exits 0 on SIGTERM at the end: {report.exits}",
        )
    )


# --- report ---------------------------------------------------------------------------------------
