"""Order-lifecycle throughput against empty-workflow throughput, on one dev server, in one run.

The command line of `python -m bench.lifecycle`: its options, and the run that starts the
server, opens the read model, runs the phases round after round and prints the report.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from bench.lifecycle.histories import breakdown
from bench.lifecycle.measure import METRICS_SETTLE_S
from bench.lifecycle.phases import phase_empty, phase_lifecycle
from bench.lifecycle.report import report
from bench.lifecycle.run import Run
from bench.lifecycle.shop import open_shop
from bench.lifecycle.worker_processes import Topology
from bench.lifecycle.worker_settings import WorkerSettings
from bench.server import DevServer


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.lifecycle", description=__doc__.split("\n")[0]
    )
    p.add_argument("--orders", type=int, default=300, help="lifecycles in phase B (default 300)")
    p.add_argument("--empty", type=int, default=300, help="empty workflows in phase A (300)")
    p.add_argument("--concurrency", type=int, default=50, help="in flight, both phases (50)")
    p.add_argument("--in-memory", action="store_true", help="server without --db-filename")
    p.add_argument("--database-url", help="read model URL (default: SQLite file in a temp dir)")
    p.add_argument("--wft-slots", type=int, default=100, help="max_concurrent_workflow_tasks")
    p.add_argument("--activity-slots", type=int, default=100, help="max_concurrent_activities")
    p.add_argument("--wft-pollers", type=int, help="workflow task pollers (SDK default 5)")
    p.add_argument("--activity-pollers", type=int, help="activity task pollers (SDK default 5)")
    p.add_argument("--cache", type=int, help="max_cached_workflows (SDK default 1000)")
    p.add_argument("--sticky-ratio", type=float, help="nonsticky_to_sticky_poll_ratio (0.2)")
    p.add_argument(
        "--autoscale-pollers",
        action="store_true",
        help="workflow-task pollers scale on the server's hints (up to --wft-pollers or 100)",
    )
    p.add_argument(
        "--workflow-threads",
        type=int,
        help="threads running workflow activations (SDK default: one per workflow-task slot)",
    )
    p.add_argument(
        "--eager-start",
        action="store_true",
        help="experiment: eager workflow start (phase B: start + placement update, not UwS)",
    )
    p.add_argument(
        "--dynamic-config",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="passed to the server as --dynamic-config-value (repeatable)",
    )
    p.add_argument(
        "--sqlite-pragma",
        action="append",
        default=[],
        metavar="PRAGMA=VALUE",
        help="experiment: passed to the server as --sqlite-pragma (repeatable)",
    )
    p.add_argument(
        "--db-pool-size",
        type=int,
        help="experiment: read-model pool size for the worker (default: the app's engine)",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="repeat A then B this many times on the same server; rates pool all rounds (1)",
    )
    p.add_argument(
        "--settle",
        type=float,
        default=METRICS_SETTLE_S,
        help="seconds to let the server publish its metrics around each phase (1.5)",
    )
    p.add_argument(
        "--worker-processes",
        type=int,
        default=1,
        metavar="N",
        help="run the worker in N processes of its own, as deployed (1); 0 = in this process",
    )
    p.add_argument("--skip-empty", action="store_true", help="phase B only (ratio reads 0)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (server db, logs)")
    return p.parse_args(argv)


async def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    ws = WorkerSettings(
        max_concurrent_workflow_tasks=args.wft_slots,
        max_concurrent_activities=args.activity_slots,
        workflow_task_pollers=args.wft_pollers,
        activity_task_pollers=args.activity_pollers,
        max_cached_workflows=args.cache,
        nonsticky_to_sticky_poll_ratio=args.sticky_ratio,
        workflow_threads=args.workflow_threads,
        autoscale_pollers=args.autoscale_pollers,
    )
    tmp = Path(tempfile.mkdtemp(prefix="bench-lifecycle-"))
    try:
        async with DevServer(
            in_memory=args.in_memory,
            dynamic_config=args.dynamic_config,
            extra_args=[a for kv in args.sqlite_pragma for a in ("--sqlite-pragma", kv)],
            workdir=tmp,
        ) as server:
            print(
                f"server {server.address} ({'in-memory' if args.in_memory else tmp / 'bench.db'})"
            )
            client = await Client.connect(server.address, data_converter=pydantic_data_converter)
            shop = await open_shop(args.database_url, tmp, args.db_pool_size)
            topo = Topology(
                processes=args.worker_processes,
                address=server.address,
                ws=ws,
                database_url=shop.url,
                db_pool_size=args.db_pool_size,
            )
            a_rounds: list[Run] = []
            b_rounds: list[Run] = []
            try:
                for k in range(1, args.rounds + 1):
                    if args.skip_empty:
                        a, empty_id = Run("empty"), ""
                    else:
                        print(f"{k}/A: {args.empty} empty workflows, {args.concurrency} in flight")
                        a, empty_id = await phase_empty(
                            client,
                            server,
                            args.empty,
                            args.concurrency,
                            topo,
                            eager=args.eager_start,
                            settle_s=args.settle,
                        )
                    print(f"{k}/B: {args.orders} lifecycles, {args.concurrency} in flight")
                    b, built, sample = await phase_lifecycle(
                        client,
                        server,
                        shop,
                        args.orders,
                        args.concurrency,
                        topo,
                        eager=args.eager_start,
                        settle_s=args.settle,
                    )
                    a_rounds.append(a)
                    b_rounds.append(b)
                hist = await breakdown(client, empty_id, sample, shop)
            finally:
                await shop.dispose()
        out = report(args, ws, built, a_rounds, b_rounds, hist)
        print(json.dumps(out, sort_keys=True))
        return 1 if out["errors"] else 0
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
