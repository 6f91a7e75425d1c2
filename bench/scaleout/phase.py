"""One measured phase: its run, the load average, and the cores each side used meanwhile."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from bench.lifecycle.cpu import machine_busy_s, process_cpu_s
from bench.lifecycle.run import Run
from bench.lifecycle.stats import quantile
from bench.scaleout.stack import Stack

STEPS = (
    "submit",
    "pay",
    "paid visible",
    "ship",
    "scan",
    "confirm",
    "review",
    "finished visible",
)


@dataclass
class Phase:
    name: str
    workers: int
    apis: int
    run: Run
    loadavg: tuple[tuple[float, float, float], tuple[float, float, float]] = ((0, 0, 0), (0, 0, 0))
    cores: dict[str, float] = field(default_factory=dict)
    order_nos: list[str] = field(default_factory=list)
    dup_paid: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        r = self.run
        return {
            "workers": self.workers,
            "apis": self.apis,
            "lifecycles": r.done,
            "errors": len(r.errors),
            "elapsed_s": round(r.elapsed_s, 2),
            "lifecycles_per_s": round(r.rate, 3),
            "p50_ms": round(1000 * quantile(r.latencies_s, 0.5)),
            "p99_ms": round(1000 * quantile(r.latencies_s, 0.99)),
            "steps_p50_p99_ms": {
                s: [round(1000 * quantile(xs, 0.5)), round(1000 * quantile(xs, 0.99))]
                for s in STEPS
                if (xs := r.steps_s.get(s))
            },
            "loadavg_start": [round(x, 2) for x in self.loadavg[0]],
            "loadavg_end": [round(x, 2) for x in self.loadavg[1]],
            "cores": {k: round(v, 2) for k, v in self.cores.items()},
        }


def _cpu(stack: Stack) -> dict[str, float]:
    return {
        "server": stack.server.cpu_seconds(),
        "workers": process_cpu_s([w.pid for w in stack.workers if w.alive()]),
        "apis": process_cpu_s([a.pid for a in stack.apis if a.alive()]),
        "postgres": process_cpu_s(stack.pg_pids()),
        "driver": time.process_time(),
        "machine": machine_busy_s(),
    }


@contextlib.asynccontextmanager
async def measured(stack: Stack, phase: Phase, per_process: bool = True) -> AsyncIterator[None]:
    """Load average and cores used by each side during the phase. Per process only when no
    process is replaced meanwhile (the CPU of a killed one is gone with it): else the workers
    and APIs are counted in "other"."""
    before, la0 = _cpu(stack), os.getloadavg()
    yield
    after, la1 = _cpu(stack), os.getloadavg()
    wall = max(phase.run.elapsed_s, 1e-9)
    used = {k: max(after[k] - before[k], 0.0) / wall for k in before}
    if not per_process:
        del used["workers"], used["apis"]
    phase.cores = {k: v for k, v in used.items() if k != "machine"}
    phase.cores["other"] = max(used["machine"] - sum(phase.cores.values()), 0.0)
    phase.loadavg = (la0, la1)
