"""The printed report: the machine's load, a summary table per phase, the targets, and the JSON
line last."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.api_load.gc import describe
from bench.api_load.phases import TARGET_STEPS, LoadPhase
from bench.api_load.report import Report
from bench.lifecycle.repo import code_version
from bench.lifecycle.stats import quantile

CORES = ("server", "workers", "apis", "postgres", "driver", "other")


def _ms(xs: list[float] | None) -> str:
    if not xs:
        return "-"
    return f"{1000 * quantile(xs, 0.5):.0f}/{1000 * quantile(xs, 0.99):.0f}"


def _phase_row(lp: LoadPhase) -> list[str]:
    p, run = lp.phase, lp.phase.run
    t = lp.tally
    return [
        f"({p.name})",
        f"{run.done}/{len(run.errors)}",
        f"{run.rate:.2f}",
        *(_ms(run.steps_s.get(s)) for s in TARGET_STEPS),
        _ms(t.accepted_s.get("command")),
        _ms(t.accepted_s.get("read")),
        f"{sum(len(v) for v in t.accepted_s.values())}/{t.shed}/{t.timeouts}",
    ]


def print_report(report: Report, args: argparse.Namespace) -> dict[str, Any]:
    console = Console(width=160, highlight=False)
    cpus = os.cpu_count()
    la = report.loadavg_start
    console.print()
    console.print(
        f"Through the HTTP API: Temporal dev server ({'in-memory' if args.in_memory else 'SQLite'}"
        f" file), PostgreSQL read model, 1 x python -m worker, {args.apis} x python -m starter.api"
        f" {report.api_env or ''}; code {code_version()}"
    )
    console.print(
        f"machine: {cpus} CPUs, load average at start {la[0]:.2f} {la[1]:.2f} {la[2]:.2f} "
        "(1/5/15 min)"
        + (
            " — WARNING: busy before the run started, not representative"
            if la[0] > (cpus or 1) * 0.5
            else ""
        )
    )
    console.print(
        f"clients wait by reading their order, GET /orders/{{no}}"
        f"{'?live=false' if args.poll_no_live else ''}, at most every {args.poll_s:g} s; "
        f"one attempt times out after {args.request_timeout:g} s"
    )
    if report.empty is not None:
        e = report.empty
        server, py, other = e.cores()
        console.print(
            f"(a) empty workflows on the idle server: {e.done} in {e.elapsed_s:.1f}s = "
            f"{e.rate:.1f}/s ({len(e.errors)} errors); cores: server {server:.2f}, "
            f"worker+driver {py:.2f}, other {other:.2f}"
        )
    table = Table(
        title="lifecycles through the HTTP API (client-side ms p50/p99, retries included)"
    )
    for col in (
        "phase",
        "done/err",
        "per s",
        *TARGET_STEPS,
        "cmd attempt",
        "GET attempt",
        "acc/shed/t.o.",
    ):
        table.add_column(col)
    for lp in (report.steady, report.overload):
        if lp is not None:
            table.add_row(*_phase_row(lp))
    console.print(table)
    for lp in (report.steady, report.overload):
        if lp is None:
            continue
        p = lp.phase
        console.print(
            f"({p.name}) {lp.load}: load average (1 min) {p.loadavg[0][0]:.2f} → "
            f"{p.loadavg[1][0]:.2f}; cores used: "
            + ", ".join(f"{k} {p.cores.get(k, 0.0):.2f}" for k in CORES)
        )
        steps = lp.phase.run.steps_s
        console.print(
            f"({lp.phase.name}) every step p50/p99 ms: "
            + ", ".join(f"{s} {_ms(xs)}" for s, xs in steps.items())
            + f"; lifecycle {_ms(lp.phase.run.latencies_s)}; {lp.polls} polls;"
            f" answers {dict(sorted(lp.tally.status.items()))}"
        )
        console.print(
            f"({lp.phase.name}) accepted attempts by route, n p50/p99 ms: "
            + ", ".join(
                f"{r} {len(xs)} {_ms(xs)}" for r, xs in sorted(lp.tally.accepted_by_route_s.items())
            )
        )
    ratio = report.ratio_pct
    if ratio is not None:
        console.print(f"ratio (b)/(a): {ratio:.1f} % (target >= 10 %)")
    targets = Table(title="issue 13, targets 1 and 2")
    for col in ("target", "measured", "met"):
        targets.add_column(col)
    for target, measured, ok in report.targets():
        targets.add_row(target, measured, "-" if ok is None else ("yes" if ok else "NO"))
    console.print(targets)
    if report.errors:
        console.print("errors: " + "; ".join(report.errors))
    if report.api_gc:
        console.print(f"API garbage collection from (a) to the end: {describe(report.api_gc)}")
    console.print(f"where the run's time went (s): {report.timings}")
    result = report.to_json(args)
    print(json.dumps(result), flush=True)
    return result
