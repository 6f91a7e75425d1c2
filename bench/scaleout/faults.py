"""The faults of the fault phase: worker 1 SIGKILLed and restarted, API 2 SIGTERMed (it drains)
and restarted, while lifecycles are in flight."""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass, field
from typing import Any

from bench.lifecycle.driver import UNIT_TIMEOUT_S
from bench.scaleout.lifecycles import Lifecycles
from bench.scaleout.readiness import ready
from bench.scaleout.stack import Stack


@dataclass
class Faults:
    worker: dict[str, Any] = field(default_factory=dict)
    api: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


async def inject_faults(stack: Stack, lc: Lifecycles, n: int, faults: Faults) -> None:
    """SIGKILL worker 1 with lifecycles in flight and start it again; then SIGTERM API 2 (it
    drains: /readyz 503, requests in flight answered) and start it again on the same port."""

    async def submits(k: int) -> None:
        while lc.submitted < k:
            lc.progress.clear()
            await asyncio.wait_for(lc.progress.wait(), UNIT_TIMEOUT_S)

    w = stack.workers[0]
    await submits(max(1, n // 4))
    old = w.pid
    faults.worker = {"name": w.name, "pid": old, "at_submit": lc.submitted}
    t_kill = time.monotonic()
    faults.worker["exit"] = await w.stop(signal.SIGKILL, timeout=30)
    await w.start()

    async def worker_back() -> None:
        await ready(w, stack.client, stack.task_queue)
        faults.worker |= {"new_pid": w.pid, "back_after_s": round(time.monotonic() - t_kill, 2)}

    back = asyncio.create_task(worker_back())  # meanwhile the load goes on, on worker 2
    try:
        a = stack.apis[1]
        await submits(max(2, n // 2))
        faults.api = {"name": a.name, "pid": a.pid, "at_submit": lc.submitted}
        t_term = time.monotonic()
        faults.api["exit"] = await a.stop(signal.SIGTERM, timeout=90)
        faults.api["drained_in_s"] = round(time.monotonic() - t_term, 2)
        await a.start()
        await ready(a, stack.client, stack.task_queue)
        faults.api |= {
            "new_pid": a.pid,
            "generation": a.generation,
            "back_after_s": round(time.monotonic() - t_term, 2),
        }
    finally:
        await back
