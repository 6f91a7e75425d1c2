"""Lifecycles through the HTTP API against the empty-workflow rate, and load shedding beyond.

The command line of `python -m bench.api_load`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from bench.api_load.printer import print_report
from bench.api_load.runner import run
from bench.scaleout.cli import add_stack_flags


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.api_load", description=__doc__.split("\n")[0])
    p.add_argument("--empty", type=int, default=300, help="(a) empty workflows (300; 0: skip)")
    p.add_argument(
        "--empty-concurrency", type=int, default=50, help="(a) in flight (50, as make bench)"
    )
    p.add_argument("--orders", type=int, default=200, help="(b) lifecycles (200; 0: skip b, c)")
    p.add_argument("--concurrency", type=int, default=16, help="(b) lifecycles in flight (16)")
    p.add_argument("--warmup", type=int, default=8, help="lifecycles before (b) (8)")
    p.add_argument(
        "--overload-seconds",
        type=float,
        default=30.0,
        help="(c) how long lifecycles arrive (30; 0: skip)",
    )
    p.add_argument(
        "--overload-factor",
        type=float,
        default=2.0,
        help="(c) arrival rate as a multiple of (b)'s measured lifecycles/s (2)",
    )
    p.add_argument(
        "--poll-s", type=float, default=1.0, help="a client reads its order at most this often (1)"
    )
    p.add_argument(
        "--poll-no-live",
        action="store_true",
        help="poll GET /orders/{no}?live=false (deadlines from the read model, no workflow "
        "queries) instead of the API's default",
    )
    p.add_argument(
        "--request-timeout",
        type=float,
        default=10.0,
        help="the client's timeout for one attempt, counted as timed out (10 s)",
    )
    p.add_argument("--apis", type=int, default=1, help="python -m starter.api processes (1)")
    p.add_argument(
        "--api-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting for the API processes, e.g. ORDERS_API_MAX_INFLIGHT=16 (repeatable)",
    )
    p.add_argument(
        "--worker-env", action="append", default=[], metavar="KEY=VALUE", help="for the worker"
    )
    add_stack_flags(p)
    return p.parse_args(argv)


async def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report = await run(args)
    print_report(report, args)
    return 1 if report.errors else 0
