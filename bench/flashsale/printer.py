"""The printed report of a run (a summary table, the load, every check) and its JSON line."""

from __future__ import annotations

import argparse
import json
import os
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.flashsale.report import Report, pct
from bench.lifecycle.repo import code_version

LATENESS_P99_TARGET_S = 5.0
RSS_TARGET_MB = {"worker": 500.0, "api": 250.0}


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def summary(report: Report, args: argparse.Namespace) -> dict[str, Any]:
    late = report.lateness()
    mem = report.memory()
    targets = {
        "lateness_p99_le_5s": late["orders"] > 0
        and late["total_s"]["p99"] <= LATENESS_P99_TARGET_S,
        **{
            f"{k}_rss_le_{int(v)}mb": bool(report.peaks_mb) and report.peaks_mb.get(k, 0) <= v
            for k, v in RSS_TARGET_MB.items()
        },
    }
    t = report.tally
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "code": code_version(),
        "cpus": os.cpu_count(),
        "loadavg_start": [round(x, 2) for x in report.loadavg_start],
        "server_storage": "memory" if args.in_memory else "sqlite",
        "orders": report.orders,
        "warmup": args.warmup,
        "clients": report.clients,
        "payment_timeout_s": report.payment_timeout_s,
        "deadlines_fell_during_submits": report.first_deadline_during_submits,
        "submit": {
            "rate_per_s": round(report.submit_rate, 2),
            "latency_s": pct(report.submit_s),
            "errors": len(report.submit_errors),
        },
        "lateness": late,
        "drain_s": None if report.drain_s is None else round(report.drain_s, 2),
        "memory": mem,
        "windows": report.windows,
        "targets": targets,
        "client": {
            "status": dict(t.status),
            "server_errors": dict(t.server_errors),
            "transport_errors": dict(t.transport_errors),
            "retries": t.retries,
        },
        "exits": report.exits,
        "checks": {"passed": [m for ok, m in report.checks if ok], "failed": report.failed},
        "elapsed_s": round(report.elapsed_s, 1),
        "timings_s": report.timings,
        "worker_problems": report.worker_problems,
    }


def print_report(report: Report, args: argparse.Namespace) -> dict[str, Any]:
    r = summary(report, args)
    console = Console(width=120, highlight=False)
    la = r["loadavg_start"]
    print()
    print(
        f"Flash sale: {r['orders']} unpaid orders (+{r['warmup']} warm-up) through the HTTP API, "
        f"{r['clients']} clients, ORDERS_PAYMENT_TIMEOUT={r['payment_timeout_s']:g}s, "
        f"workflow cache {report.cache_max}; Temporal dev server ({r['server_storage']}), "
        f"PostgreSQL read model, python -m worker + python -m starter.api; code {r['code']}"
    )
    print(
        f"machine: {r['cpus']} CPUs, load average at start {la[0]:.2f} {la[1]:.2f} {la[2]:.2f} "
        "(1/5/15 min)"
    )
    table = Table(title="flash sale", show_lines=False)
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("target")
    sub, late, mem = r["submit"], r["lateness"], r["memory"]

    def three(d: dict[str, float], unit: str = "s") -> str:
        return f"{d['p50']:.2f} / {d['p99']:.2f} / {d['max']:.2f} {unit}"

    table.add_row("submit rate", f"{sub['rate_per_s']:.1f} orders/s", "")
    table.add_row("submit p50 / p99 / max", three(sub["latency_s"]), "")
    table.add_row(
        "auto-cancel lateness p50 / p99 / max",
        three(late["total_s"]),
        f"p99 <= {LATENESS_P99_TARGET_S:g} s: {_verdict(r['targets']['lateness_p99_le_5s'])}",
    )
    for k, what in (("during_submits", "while submits arrive"), ("after_submits", "after")):
        d = late[k]
        table.add_row(
            f"  deadlines {what}",
            f"{d['p50']:.2f} / {d['p99']:.2f} / {d['max']:.2f} s",
            f"{d['orders']} orders",
        )
    table.add_row("  deadline → timer fired", three(late["timer_s"]), "server timer queue")
    table.add_row("  fired → task started", three(late["queue_s"]), "waiting for a poller")
    table.add_row("  started → closed", three(late["worker_s"]), "worker (replay, close)")
    table.add_row(
        "  closes later than 5 s",
        f"{late['over_5s']} of {late['orders']}",
        f"workflow task timeouts {late['task_timeouts']}",
    )
    table.add_row(
        "drain after the last deadline",
        "-" if r["drain_s"] is None else f"{r['drain_s']:.2f} s",
        "last close - last deadline",
    )
    for k in ("worker", "api", "server"):
        target = RSS_TARGET_MB.get(k)
        verdict = (
            f"peak <= {target:g} MB: {_verdict(r['targets'][f'{k}_rss_le_{int(target)}mb'])}"
            if target
            else ""
        )
        table.add_row(
            f"RSS {k}: base / all open / peak",
            f"{mem['base_mb'].get(k, 0):.0f} / {mem['all_open_mb'].get(k, 0):.0f} / "
            f"{mem['peak_mb'].get(k, 0):.0f} MB",
            verdict,
        )
    table.add_row(
        "open workflows at the last submit",
        f"{mem['all_open_workflows']} ({mem['all_open_cached']} cached)",
        "",
    )
    table.add_row(
        "worker RSS per cached workflow",
        "-" if mem["per_cached_kb"] is None else f"{mem['per_cached_kb']:.1f} kB",
        "while the cache fills",
    )
    table.add_row(
        "worker RSS per open, uncached workflow",
        "-" if mem["per_uncached_open_kb"] is None else f"{mem['per_uncached_open_kb']:.2f} kB",
        "after the cache is full",
    )
    for name, w in r["windows"].items():
        c = w["cores"]
        table.add_row(
            f"cores during {name} ({w['seconds']:.0f} s)",
            " ".join(f"{k} {v:.2f}" for k, v in c.items()),
            f"load 1m {w['loadavg_start'][0]:.2f} → {w['loadavg_end'][0]:.2f}",
        )
    console.print(table)
    t = r["client"]
    print(
        f"clients: answers {dict(sorted(t['status'].items()))}; retries {t['retries']}; "
        f"transport errors {t['transport_errors'] or 'none'}"
    )
    if report.worker_problems:
        print(f"worker logs, errors and failed workflow tasks: {report.worker_problems}")
    print(f"where the run's time went (s): {report.timings}")
    print("checks:")
    for ok, msg in report.checks:
        print(f"  {'ok  ' if ok else 'FAIL'} {msg}")
    print(
        f"{'all checks passed' if not report.failed else f'{len(report.failed)} checks FAILED'}"
        f" in {report.elapsed_s:.0f}s"
    )
    print(json.dumps(r))
    return r
