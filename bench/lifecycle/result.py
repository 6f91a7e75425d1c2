"""The fields of the run's JSON line."""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bench.lifecycle.cost import cost_per_lifecycle
from bench.lifecycle.repo import code_version
from bench.lifecycle.run import Run
from bench.lifecycle.stats import quantile
from bench.lifecycle.worker_settings import WorkerSettings

TARGET_RATIO_PCT = 12.0


def per_round(a_rounds: Sequence[Run], b_rounds: Sequence[Run]) -> list[dict[str, Any]]:
    """Each round's rates, ratio and other load (A, B)."""
    return [
        {
            "empty_wf_per_s": round(ra.rate, 2),
            "lifecycles_per_s": round(rb.rate, 3),
            "ratio_pct": round(100 * rb.rate / ra.rate, 2) if ra.rate else 0.0,
            "other_cores": [round(ra.cores()[2], 2), round(rb.cores()[2], 2)],
        }
        for ra, rb in zip(a_rounds, b_rounds, strict=True)
    ]


def result(
    args: argparse.Namespace,
    ws: WorkerSettings,
    built: str,
    rounds: list[dict[str, Any]],
    a: Run,
    b: Run,
    ratio: float,
    hist: dict[str, dict[str, int]],
    ua: dict[str, float],
    ub: dict[str, float],
) -> dict[str, Any]:
    """All rounds pooled (a, b), per round, per unit of work."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "code": code_version(),
        "server_storage": "memory" if args.in_memory else "sqlite",
        "read_model": "postgresql" if args.database_url else "sqlite",
        "cpus": os.cpu_count(),
        "orders": args.orders,
        "empty": args.empty,
        "rounds": rounds,
        "concurrency": args.concurrency,
        "eager_start": args.eager_start,
        "dynamic_config": list(args.dynamic_config),
        "sqlite_pragma": list(args.sqlite_pragma),
        "db_pool_size": args.db_pool_size,
        "worker": {"built": built, **dataclasses.asdict(ws)},
        "empty_wf_per_s": round(a.rate, 2),
        "lifecycles_per_s": round(b.rate, 3),
        "ratio_pct": round(ratio, 2),
        "target_pct": TARGET_RATIO_PCT,
        "lifecycle_p50_ms": round(1000 * b.pct(50), 1),
        "lifecycle_p95_ms": round(1000 * b.pct(95), 1),
        "lifecycle_steps_p50_ms": {
            k: round(1000 * quantile(v, 0.5), 1) for k, v in b.steps_s.items()
        },
        "empty_p50_ms": round(1000 * a.pct(50), 1),
        "empty_p95_ms": round(1000 * a.pct(95), 1),
        "history": hist,
        "cost_per_lifecycle": cost_per_lifecycle(hist.get("lifecycle_total", {})),
        "server_per_empty": {k: round(v, 2) for k, v in ua.items()},
        "server_per_lifecycle": {k: round(v, 2) for k, v in ub.items()},
        "other_cores_busy": {"empty": round(a.cores()[2], 2), "lifecycle": round(b.cores()[2], 2)},
        "worker_processes": args.worker_processes,
        "python_cpu_ms_per_empty": round(
            1000 * (a.client_cpu_s + a.worker_cpu_s) / max(a.done, 1), 2
        ),
        "python_cpu_ms_per_lifecycle": round(
            1000 * (b.client_cpu_s + b.worker_cpu_s) / max(b.done, 1), 2
        ),
        "worker_cpu_ms_per_lifecycle": round(1000 * b.worker_cpu_s / max(b.done, 1), 2),
        "driver_cpu_ms_per_lifecycle": round(1000 * b.client_cpu_s / max(b.done, 1), 2),
        "persistence_per_empty": {
            k: round(v / max(a.done, 1), 2) for k, v in a.server.persistence.most_common()
        },
        "persistence_per_lifecycle": {
            k: round(v / max(b.done, 1), 2) for k, v in b.server.persistence.most_common()
        },
        "errors": len(a.errors) + len(b.errors),
    }
