"""Scale-out and fault proof: 2 worker and 2 API processes on one Temporal dev server.

The command line of `python -m bench.scaleout`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from bench.scaleout.printer import print_report
from bench.scaleout.runner import run


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.scaleout", description=__doc__.split("\n")[0])
    p.add_argument(
        "--orders", type=int, default=100, help="lifecycles in each of 1+1 and 2+2 (100; 0: skip)"
    )
    p.add_argument(
        "--fault-orders",
        type=int,
        default=100,
        help="lifecycles of the fault phase, at least (100; 0: skip)",
    )
    p.add_argument("--concurrency", type=int, default=32, help="lifecycles in flight (32)")
    p.add_argument("--warmup", type=int, default=4, help="lifecycles before each clean phase (4)")
    p.add_argument(
        "--dup-pay-every",
        type=int,
        default=5,
        metavar="K",
        help="every K-th order also gets a second payment, to be refunded once (5; 0: none)",
    )
    add_stack_flags(p)
    return p.parse_args(argv)


def add_stack_flags(p: argparse.ArgumentParser) -> None:
    """--pg-url, --in-memory, --keep: where the stack of a process-level bench runs (scaleout,
    api_load, flashsale)."""
    p.add_argument(
        "--pg-url",
        help="an existing PostgreSQL server (any database URL on it): a fresh database is "
        "created there (default: a throwaway server, as the tests start)",
    )
    p.add_argument("--in-memory", action="store_true", help="Temporal without --db-filename")
    p.add_argument(
        "--keep", action="store_true", help="keep the work dir (logs, server db); failed runs do"
    )


async def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report = await run(args)
    print_report(report, args)
    return 1 if report.failed else 0
