"""The phases: warm-ups, the clean 1+1 and 2+2 phases, and the fault phase."""

from __future__ import annotations

import asyncio
import time

from bench.lifecycle.driver import drive, wait_all_closed
from bench.lifecycle.driver import warm_up as warm_up_units
from bench.lifecycle.run import Run
from bench.scaleout.apis import Apis
from bench.scaleout.faults import Faults, inject_faults
from bench.scaleout.lifecycles import Lifecycles
from bench.scaleout.phase import Phase, measured
from bench.scaleout.stack import Stack


async def all_closed(stack: Stack, run: Run) -> None:
    """Until no workflow of the task queue runs; if some still do after the deadline, that is
    the phase's error (with a few of their ids), and the checks go on."""
    try:
        await wait_all_closed(stack.client, stack.task_queue)
    except RuntimeError as err:
        query = f'TaskQueue="{stack.task_queue}" AND ExecutionStatus="Running"'
        running = [wf.id async for wf in stack.client.list_workflows(query, limit=5)]
        run.errors.append(f"{err}, e.g. {running}")


def lifecycles(stack: Stack, apis: Apis, tag: str, dup_pay_every: int) -> Lifecycles:
    return Lifecycles(apis, stack.shop, stack.watch, f"{stack.shop.tag}-{tag}", dup_pay_every)


async def warm_up(stack: Stack, apis: Apis, n: int, concurrency: int, tag: str) -> list[str]:
    """A few lifecycles first (imports, sandbox, caches); returns their order numbers."""
    if n <= 0:
        return []
    lc = lifecycles(stack, apis, tag, 0)
    await warm_up_units(n, concurrency, lambda i: lc.one(100_000_000 + i), "warm-up")
    await wait_all_closed(stack.client, stack.task_queue)
    return lc.order_nos


async def clean_phase(
    stack: Stack, apis: Apis, name: str, n: int, concurrency: int, dup_pay_every: int, base: int
) -> Phase:
    phase = Phase(name, len([w for w in stack.workers if w.alive()]), apis.active, Run(name))
    lc = lifecycles(stack, apis, name, dup_pay_every)
    async with measured(stack, phase):
        await drive(n, concurrency, lambda i: lc.one(base + i), phase.run)
        t0 = time.perf_counter()
        await all_closed(stack, phase.run)
        phase.run.elapsed_s += time.perf_counter() - t0
    phase.run.steps_s = lc.steps_s
    phase.order_nos, phase.dup_paid = lc.order_nos, lc.dup_paid
    return phase


async def fault_phase(
    stack: Stack, apis: Apis, n: int, concurrency: int, dup_pay_every: int, base: int
) -> tuple[Phase, Faults]:
    """Lifecycles keep coming until `n` have started and both faults are over."""
    phase = Phase("faults", 2, 2, Run("faults"))
    lc = lifecycles(stack, apis, "faults", dup_pay_every)
    faults = Faults()
    over = asyncio.Event()

    async def faulting() -> None:
        try:
            await inject_faults(stack, lc, n, faults)
        except Exception as err:
            faults.error = f"{type(err).__name__}: {err}"
        finally:
            over.set()

    run = phase.run
    async with measured(stack, phase, per_process=False):
        t0 = time.perf_counter()
        fault_task = asyncio.create_task(faulting())
        await drive(
            n, concurrency, lambda i: lc.one(base + i), run, keep_going=lambda: not over.is_set()
        )
        await fault_task
        await all_closed(stack, run)
        run.elapsed_s = time.perf_counter() - t0
    run.steps_s = lc.steps_s
    phase.order_nos, phase.dup_paid = lc.order_nos, lc.dup_paid
    return phase, faults
