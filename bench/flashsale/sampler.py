"""Once a second during the run: the RSS of the worker, the API and the Temporal server, the
worker's workflow cache size (its SDK metrics), and how many of the run's orders the read model
shows CLOSED."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.tables import Order
from domain.states import OrderStatus

_CACHE = re.compile(r"^temporal_sticky_cache_size(?:\{[^}]*\})?\s+(\S+)$", re.M)


def status_kb(pid: int, key: str) -> int:
    """A `kB` line of /proc/<pid>/status (VmRSS, VmHWM), 0 when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def cache_size(metrics_port: int) -> int | None:
    try:
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=2) as resp:
            m = _CACHE.search(resp.read().decode())
    except OSError:
        return None
    return int(float(m.group(1))) if m else None


@dataclass
class Sample:
    t: float  # time.monotonic()
    submitted: int  # orders answered 201 so far (warm-up included): their workflows are open
    closed: int  # of the run's orders, CLOSED in the read model
    cached: int | None  # workflows in the worker's cache
    rss_mb: dict[str, float]  # worker, api, server


@dataclass
class Sampler:
    pids: dict[str, int]  # worker, api, server
    metrics_port: int
    reads: async_sessionmaker[AsyncSession]
    customer_prefix: str
    submitted: Callable[[], int]
    samples: list[Sample] = field(default_factory=list)
    on_sample: Callable[[Sample], None] = lambda s: None
    interval_s: float = 1.0

    async def closed(self) -> int:
        async with self.reads() as s:
            n = await s.scalar(
                select(func.count())
                .select_from(Order)
                .where(
                    Order.customer_id.like(f"{self.customer_prefix}%"),
                    Order.status == OrderStatus.CLOSED.value,
                )
            )
        return int(n or 0)

    async def sample(self) -> Sample:
        cached = await asyncio.to_thread(cache_size, self.metrics_port)
        s = Sample(
            t=time.monotonic(),
            submitted=self.submitted(),
            closed=await self.closed(),
            cached=cached,
            rss_mb={k: status_kb(pid, "VmRSS") / 1024 for k, pid in self.pids.items()},
        )
        self.samples.append(s)
        self.on_sample(s)
        return s

    def peaks_mb(self) -> dict[str, float]:
        """VmHWM: the most each process ever held resident."""
        return {k: status_kb(pid, "VmHWM") / 1024 for k, pid in self.pids.items()}

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Sampler]:
        async def loop() -> None:
            while True:
                await self.sample()
                await asyncio.sleep(self.interval_s)

        task = asyncio.create_task(loop())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
