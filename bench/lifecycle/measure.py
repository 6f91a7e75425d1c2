"""What a phase costs the server, this process, the worker processes and the machine."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence

from bench.lifecycle.cpu import machine_busy_s, process_cpu_s
from bench.lifecycle.run import Run
from bench.server import DevServer

# The server's Prometheus reporter publishes its counters about once a second: give it time
# before and after a phase so its requests are counted in that phase and no other.
METRICS_SETTLE_S = 1.5


@contextlib.asynccontextmanager
async def measured(
    server: DevServer, run: Run, settle_s: float, worker_pids: Sequence[int] = ()
) -> AsyncIterator[None]:
    await asyncio.sleep(settle_s)
    before, cpu0, busy0 = server.usage(), time.process_time(), machine_busy_s()
    wcpu0 = process_cpu_s(worker_pids)
    yield
    run.client_cpu_s = time.process_time() - cpu0
    run.worker_cpu_s = process_cpu_s(worker_pids) - wcpu0
    run.machine_cpu_s = machine_busy_s() - busy0
    cpu_s = server.cpu_seconds() - before.cpu_s
    await asyncio.sleep(settle_s)
    run.server = server.usage() - before
    run.server.cpu_s = cpu_s  # CPU of the phase itself, without the settling pause
