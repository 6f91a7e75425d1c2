"""The load driver: units of work with bounded concurrency, warm-ups, step timing, and the wait
until every workflow of a task queue has closed."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from temporalio.client import Client

from bench.lifecycle.run import Run

# A unit that takes longer than this is counted as an error instead of stalling the run (a
# worker that keeps failing workflow tasks, e.g. after workflow code changed on disk mid-run,
# otherwise leaves the benchmark waiting for ever).
UNIT_TIMEOUT_S = 180.0


async def drive(
    n: int,
    concurrency: int,
    one: Callable[[int], Awaitable[None]],
    run: Run,
    keep_going: Callable[[], bool] | None = None,
) -> None:
    """Run `one(i)` for i in 0..n-1 with at most `concurrency` in flight; time it into `run`.

    With `keep_going`, `concurrency` lanes go on past n for as long as it answers true.
    """
    counter = itertools.count()

    async def lane() -> None:
        while (i := next(counter)) < n or (keep_going is not None and keep_going()):
            t0 = time.perf_counter()
            try:
                await asyncio.wait_for(one(i), UNIT_TIMEOUT_S)
            except Exception as err:
                run.errors.append(f"#{i}: {type(err).__name__}: {err}")
                continue
            run.latencies_s.append(time.perf_counter() - t0)
            run.done += 1

    lanes = concurrency if keep_going is not None else min(concurrency, n)
    t0 = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(max(1, lanes))))
    run.elapsed_s = time.perf_counter() - t0


async def warm_up(
    n: int, concurrency: int, one: Callable[[int], Awaitable[None]], what: str
) -> None:
    """Drive `n` units before the measured ones (imports, caches); the first error fails the run."""
    warm = Run("warmup")
    await drive(n, concurrency, one, warm)
    if warm.errors:
        raise RuntimeError(f"{what} failed: {warm.errors[0]}")


@dataclass
class StepTimes:
    """Time per named step of a unit of work: where its latency goes."""

    steps_s: dict[str, list[float]] = field(default_factory=dict, kw_only=True)

    @contextlib.asynccontextmanager
    async def step(self, name: str) -> AsyncIterator[None]:
        """Time one step of a lifecycle: where its latency goes."""
        t0 = time.perf_counter()
        yield
        self.steps_s.setdefault(name, []).append(time.perf_counter() - t0)


async def wait_all_closed(client: Client, task_queue: str, poll_s: float = 0.1) -> None:
    """Until no workflow of the task queue runs any more (one visibility count per poll).

    A lifecycle is done for its user when the read model says so; the parent workflow closes a
    workflow task later. Waiting here keeps that last task inside the measured window.
    """
    query = f'TaskQueue="{task_queue}" AND ExecutionStatus="Running"'
    deadline = time.monotonic() + UNIT_TIMEOUT_S
    while True:
        running = (await client.count_workflows(query)).count
        if running == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{running} workflows still running {UNIT_TIMEOUT_S:.0f} s after the last lifecycle"
            )
        await asyncio.sleep(poll_s)
