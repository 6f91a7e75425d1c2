"""The printed report of a run: rates and their ratio, latencies, history counts, what a unit
costs and how busy the machine was; returns the JSON result (bench.lifecycle.result)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

from bench.lifecycle.cost import BILLABLE, cost_per_lifecycle, per_unit, top
from bench.lifecycle.histories import COUNTED
from bench.lifecycle.repo import code_version
from bench.lifecycle.result import TARGET_RATIO_PCT, per_round, result
from bench.lifecycle.run import Run
from bench.lifecycle.stats import quantile
from bench.lifecycle.worker_settings import WorkerSettings

# Above this many cores used by other processes during a phase, the figures are flagged.
NOISY_OTHER_CORES = 0.2


def report(
    args: argparse.Namespace,
    ws: WorkerSettings,
    built: str,
    a_rounds: Sequence[Run],
    b_rounds: Sequence[Run],
    hist: dict[str, dict[str, int]],
) -> dict[str, Any]:
    a, b = Run.merge("empty", a_rounds), Run.merge("lifecycle", b_rounds)
    ratio = 100 * b.rate / a.rate if a.rate else 0.0
    rounds = per_round(a_rounds, b_rounds)
    print_setup(args, ws, built)
    print_rates(rounds, a, b, ratio)
    print_history(hist)
    print_actions(hist)
    ua, ub = per_unit(a.server, a.done), per_unit(b.server, b.done)
    print_costs(args, a, b, ua, ub)
    return result(args, ws, built, rounds, a, b, ratio, hist, ua, ub)


def print_setup(args: argparse.Namespace, ws: WorkerSettings, built: str) -> None:
    storage = "in-memory" if args.in_memory else "SQLite file"
    db = "PostgreSQL" if args.database_url else "SQLite file"
    print()
    where = (
        "one Python process for worker + driver"
        if args.worker_processes <= 0
        else f"the driver in this process, the worker in {args.worker_processes} of its own"
    )
    print(f"Temporal dev server ({storage}), read model on {db}, {os.cpu_count()} CPUs shared by")
    print(f"the server, the worker and this driver ({where}).")
    print(f"code {code_version()}; worker: {built}; {ws}")
    print()


def print_rates(rounds: Sequence[dict[str, Any]], a: Run, b: Run, ratio: float) -> None:
    if len(rounds) > 1:
        for k, r in enumerate(rounds, 1):
            print(
                f"round {k}: A {r['empty_wf_per_s']:7.2f} wf/s, B {r['lifecycles_per_s']:6.2f} "
                f"lifecycles/s, ratio {r['ratio_pct']:5.1f} % (other load {r['other_cores']})"
            )
        print("all rounds:")
    print(f"A  empty workflows : {a.done:5d} in {a.elapsed_s:6.1f}s = {a.rate:7.2f} wf/s")
    print(f"B  order lifecycles: {b.done:5d} in {b.elapsed_s:6.1f}s = {b.rate:7.2f} lifecycles/s")
    verdict = "meets" if ratio >= TARGET_RATIO_PCT else "misses"
    print(f"   ratio B/A       : {ratio:6.1f} %  (target >= {TARGET_RATIO_PCT:.0f} %: {verdict})")
    print(
        f"   lifecycle latency p50 {1000 * b.pct(50):.0f} ms, p95 {1000 * b.pct(95):.0f} ms, "
        f"max {1000 * max(b.latencies_s, default=0):.0f} ms"
    )
    print(f"   empty latency     p50 {1000 * a.pct(50):.0f} ms, p95 {1000 * a.pct(95):.0f} ms")
    print()


def print_history(hist: dict[str, dict[str, int]]) -> None:
    cols = list(COUNTED)
    print("History of one run, per workflow:")
    print(f"  {'':18s}" + "".join(f"{c[:11]:>12s}" for c in cols))
    for name, counts in hist.items():
        print(f"  {name:18s}" + "".join(f"{counts.get(c, 0):12d}" for c in cols))
    print()


def print_actions(hist: dict[str, dict[str, int]]) -> None:
    """Temporal Cloud billable actions and state transitions of one run of each workflow, from
    its recorded history (how each is counted: bench/lifecycle/cost.py)."""
    cols = [*BILLABLE, "billable_actions", "state_transitions"]
    names = {"billable_actions": "ACTIONS", "state_transitions": "transitions"}
    print("Billable actions (Temporal Cloud) and state transitions, per workflow:")
    print(f"  {'':18s}" + "".join(f"{names.get(c, c)[:11]:>12s}" for c in cols))
    for name, counts in hist.items():
        row = [counts.get(f"action_{c}", counts.get(c, 0)) for c in cols]
        print(f"  {name:18s}" + "".join(f"{v:12d}" for v in row))
    if "lifecycle_total" in hist:
        c = cost_per_lifecycle(hist["lifecycle_total"])
        t = hist["lifecycle_total"]
        print(
            f"  per lifecycle: {c['billable_actions']} billable actions, "
            f"{c['state_transitions']} state transitions ({c['children']} child starts among the "
            f"starts; {t.get('patch_markers', 0)} patch marker(s) not counted, "
            f"{t.get('change_version_upserts', 0)} of the upserts TemporalChangeVersion)"
        )
    print()


def print_costs(
    args: argparse.Namespace, a: Run, b: Run, ua: dict[str, float], ub: dict[str, float]
) -> None:
    print("Server cost per unit (metrics endpoint and /proc):")
    print(
        f"  {'':12s}{'cpu ms':>10s}{'persist':>10s}{'wf writes':>10s}{'visib.':>10s}"
        f"{'frontend':>10s}{'py cpu ms':>11s}"
    )
    for label, u, run in (("empty wf", ua, a), ("lifecycle", ub, b)):
        py = 1000 * (run.client_cpu_s + run.worker_cpu_s) / max(run.done, 1)
        print(
            f"  {label:12s}{u['server_cpu_ms']:10.1f}{u['persistence_requests']:10.1f}"
            f"{u['execution_writes']:10.1f}{u['visibility_requests']:10.1f}"
            f"{u['frontend_requests']:10.1f}{py:11.1f}"
        )
    if a.done and b.done:

        def x(key: str) -> str:
            return f"x{ub[key] / max(ua[key], 1e-9):.1f}"

        print(
            f"  lifecycle/empty: server CPU {x('server_cpu_ms')}, persistence "
            f"{x('persistence_requests')}, workflow writes {x('execution_writes')}, "
            f"visibility {x('visibility_requests')}"
        )

    for label, run in (("A", a), ("B", b)):
        srv, py, other = run.cores()
        split = ""
        if args.worker_processes > 0:
            wall = max(run.elapsed_s, 1e-9)
            split = f" (driver {run.client_cpu_s / wall:.2f}, worker {run.worker_cpu_s / wall:.2f})"
        print(
            f"  cores busy in {label}: server {srv:.2f} + python {py:.2f}{split} + other "
            f"processes {other:.2f} of {os.cpu_count()}"
        )
    noisy = max(a.cores()[2], b.cores()[2])
    if noisy > NOISY_OTHER_CORES:
        print(
            f"  WARNING: other processes used up to {noisy:.2f} cores during the phases; "
            "these figures are not comparable with a quiet machine's"
        )
    print(f"  persistence ops per lifecycle: {top(b.server.persistence, b.done)}")
    print(f"  frontend calls per lifecycle : {top(b.server.api, b.done)}")
    print(
        f"  driver: {b.not_found_retries} not-found retries, {b.submit_retries} submit retries,"
        f" {b.db_polls} read-model polls"
    )
    if b.steps_s:
        print(
            "  lifecycle steps, p50/p95 ms: "
            + ", ".join(
                f"{step} {quantile(xs, 0.5) * 1000:.0f}/{quantile(xs, 0.95) * 1000:.0f}"
                for step, xs in b.steps_s.items()
            )
        )
    for run in (a, b):
        for err in run.errors[:5]:
            print(f"  ERROR {run.name}: {err}")
