"""The three measured phases of one run: (a) empty workflows on the idle server, (b) full
lifecycles through HTTP with a closed loop of clients, (c) an open-loop arrival rate twice (b)'s
measured rate, where the API has to shed what it cannot take."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from bench.api_load.arrivals import open_loop
from bench.api_load.polling import PolledLifecycles
from bench.api_load.progress import progress
from bench.lifecycle.driver import drive
from bench.lifecycle.phases import phase_empty
from bench.lifecycle.run import Run
from bench.lifecycle.stats import quantile
from bench.lifecycle.worker_processes import Topology
from bench.lifecycle.worker_settings import WorkerSettings
from bench.scaleout.apis import Apis, Tally
from bench.scaleout.phase import Phase, measured
from bench.scaleout.phases import all_closed
from bench.scaleout.stack import Stack

# Steps whose latency the targets name (bench.scaleout.phase.STEPS has them all).
TARGET_STEPS = ("submit", "pay", "ship", "confirm", "review")


@dataclass
class LoadPhase:
    """A lifecycle phase through HTTP and what its clients' requests met."""

    phase: Phase
    load: str  # what was offered, in words
    tally: Tally = field(default_factory=Tally)
    polls: int = 0
    arrivals: int = 0
    rate_offered: float = 0.0  # lifecycles/s offered (open loop), 0 for a closed loop
    finished: int = 0  # of its orders, FINISHED in the read model at the end

    def requests(self) -> dict[str, Any]:
        """Attempts by outcome, and the accepted ones' latency by kind (ms p50/p99)."""
        t = self.tally
        accepted = {k: len(v) for k, v in t.accepted_s.items()}
        return {
            "accepted": accepted,
            "shed": t.shed,
            "timed_out": t.timeouts,
            "other_errors": {k: v for k, v in t.server_errors.items() if not k.startswith("503")},
            "transport_errors": dict(t.transport_errors),
            "status": dict(sorted(t.status.items())),
            "accepted_p50_p99_ms": {
                k: [round(1000 * quantile(v, 0.5)), round(1000 * quantile(v, 0.99))]
                for k, v in sorted(t.accepted_s.items())
            },
            "accepted_by_route_n_p50_p99_ms": {
                k: [len(v), round(1000 * quantile(v, 0.5)), round(1000 * quantile(v, 0.99))]
                for k, v in sorted(t.accepted_by_route_s.items())
            },
        }


async def empty_rate(stack: Stack, n: int, concurrency: int) -> Run:
    """(a) `make bench`'s phase A on this server: a worker process of its own, same settings."""
    topo = Topology(processes=1, address=stack.server.address, ws=WorkerSettings())
    with_bar = Run("empty")
    async with progress("(a) empty workflows", n, lambda: with_bar.done):
        run, _ = await phase_empty(stack.client, stack.server, n, concurrency, topo)
        with_bar.done = run.done
    return run


def _lifecycles(stack: Stack, apis: Apis, tag: str, poll_s: float, live: bool) -> PolledLifecycles:
    return PolledLifecycles(
        apis=apis,
        shop=stack.shop,
        watch=stack.watch,
        prefix=f"{stack.shop.tag}-{tag}",
        poll_s=poll_s,
        live=live,
    )


def _apis(stack: Stack, timeout: float) -> Apis:
    apis = Apis(stack.apis, Tally(), timeout=timeout)
    apis.active = len(stack.apis)
    return apis


async def closed_phase(
    stack: Stack,
    name: str,
    n: int,
    concurrency: int,
    timeout: float,
    poll_s: float,
    base: int,
    live: bool = True,
) -> LoadPhase:
    """(b) `n` lifecycles, `concurrency` in flight, each client polling its order at most once
    a second while it waits; the closing of the last workflows is inside the measured time."""
    apis = _apis(stack, timeout)
    lp = LoadPhase(
        Phase(name, 1, len(stack.apis), Run(name)), f"{concurrency} in flight", apis.tally
    )
    lc = _lifecycles(stack, apis, name, poll_s, live)
    run = lp.phase.run
    try:
        async with (
            measured(stack, lp.phase),
            progress(f"({name}) {concurrency} in flight", n, lambda: run.done + len(run.errors)),
        ):
            await drive(n, concurrency, lambda i: lc.one(base + i), run)
            t0 = time.perf_counter()
            await all_closed(stack, run)
            run.elapsed_s += time.perf_counter() - t0
    finally:
        await apis.aclose()
    return await _done(stack, lp, lc)


async def overload_phase(
    stack: Stack,
    name: str,
    rate: float,
    seconds: float,
    timeout: float,
    poll_s: float,
    base: int,
    load: str,
    live: bool = True,
) -> LoadPhase:
    """(c) lifecycles arriving at `rate` a second for `seconds`, whatever the service does with
    the ones before; a shed request is retried after its Retry-After, with the same key."""
    apis = _apis(stack, timeout)
    lp = LoadPhase(Phase(name, 1, len(stack.apis), Run(name)), load, apis.tally, rate_offered=rate)
    lc = _lifecycles(stack, apis, name, poll_s, live)
    run = lp.phase.run
    total = max(1, round(rate * seconds))
    try:
        async with (
            measured(stack, lp.phase),
            progress(f"({name}) {rate:.2f}/s open loop", total, lambda: run.done + len(run.errors)),
        ):
            lp.arrivals = await open_loop(rate, seconds, lambda i: lc.one(base + i), run)
    finally:
        await apis.aclose()
    return await _done(stack, lp, lc)


async def _done(stack: Stack, lp: LoadPhase, lc: PolledLifecycles) -> LoadPhase:
    lp.phase.run.steps_s = lc.steps_s
    lp.phase.order_nos = lc.order_nos
    lp.polls = lc.polls
    lp.finished = await stack.shop.finished(lc.order_nos)
    return lp
