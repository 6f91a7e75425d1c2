"""Flash-sale expiry and bounded memory: N unpaid orders through the HTTP API, all left to expire.

The command line of `python -m bench.flashsale`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from bench.flashsale.printer import print_report
from bench.flashsale.runner import run
from bench.scaleout.cli import add_stack_flags


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.flashsale", description=__doc__.split("\n")[0]
    )
    p.add_argument("--orders", type=int, default=10_000, help="unpaid orders to submit (10000)")
    p.add_argument("--clients", type=int, default=16, help="concurrent HTTP clients (16)")
    p.add_argument(
        "--payment-timeout",
        type=float,
        default=90.0,
        metavar="S",
        help="ORDERS_PAYMENT_TIMEOUT of the run, seconds (90): deadlines fall while "
        "submissions still arrive",
    )
    p.add_argument("--warmup", type=int, default=16, help="orders before the measured ones (16)")
    p.add_argument(
        "--cache",
        type=int,
        default=None,
        metavar="N",
        help="ORDERS_WORKER_MAX_CACHED_WORKFLOWS of the worker (default: the setting's)",
    )
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="K=V",
        help="an extra setting for the worker and the API (repeatable)",
    )
    p.add_argument(
        "--dynamic-config",
        action="append",
        default=[],
        metavar="K=V",
        help="a dynamic config value of the Temporal dev server (repeatable)",
    )
    p.add_argument(
        "--drain-timeout",
        type=float,
        default=600.0,
        metavar="S",
        help="give up waiting for every order CLOSED this long after the last deadline (600)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs, tests)")
    add_stack_flags(p)
    return p.parse_args(argv)


async def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report = await run(args)
    print_report(report, args)
    return 1 if report.failed else 0
