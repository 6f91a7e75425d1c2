"""Open-loop load: units of work arrive at a fixed rate whatever happens to the ones before (the
overload phase), unlike bench.lifecycle.driver.drive's closed loop of N clients."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from bench.lifecycle.driver import UNIT_TIMEOUT_S
from bench.lifecycle.run import Run


async def open_loop(
    rate: float, seconds: float, one: Callable[[int], Awaitable[None]], run: Run
) -> int:
    """Start `one(i)` every 1/rate s for `seconds` (evenly spaced), then wait for all of them;
    time them into `run` (elapsed: first arrival to last completion). Returns the arrivals."""
    n = max(1, round(rate * seconds))
    tasks: list[asyncio.Task[None]] = []

    async def unit(i: int) -> None:
        t0 = time.perf_counter()
        try:
            await asyncio.wait_for(one(i), UNIT_TIMEOUT_S)
        except Exception as err:
            run.errors.append(f"#{i}: {type(err).__name__}: {err}")
            return
        run.latencies_s.append(time.perf_counter() - t0)
        run.done += 1

    t0 = time.perf_counter()
    for i in range(n):
        await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
        tasks.append(asyncio.create_task(unit(i)))
    await asyncio.gather(*tasks)
    run.elapsed_s = time.perf_counter() - t0
    return n
