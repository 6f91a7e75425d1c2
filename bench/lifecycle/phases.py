"""The two measured phases: A, empty workflows; B, full order lifecycles. Same worker settings,
same concurrency, on one server."""

from __future__ import annotations

import time
import uuid

from temporalio.client import Client

from bench.empty import EmptyWorkflow
from bench.lifecycle.driver import drive, wait_all_closed, warm_up
from bench.lifecycle.lifecycles import Lifecycles
from bench.lifecycle.measure import METRICS_SETTLE_S, measured
from bench.lifecycle.run import Run
from bench.lifecycle.shop import Shop
from bench.lifecycle.watch import ReadModelWatch
from bench.lifecycle.worker_processes import Topology, workers
from bench.lifecycle.worker_settings import empty_worker, lifecycle_worker
from bench.server import DevServer


async def phase_empty(
    client: Client,
    server: DevServer,
    n: int,
    concurrency: int,
    topo: Topology,
    warmup: int = 10,
    eager: bool = False,
    settle_s: float = METRICS_SETTLE_S,
) -> tuple[Run, str]:
    """N empty workflows, start to result; returns the run and one workflow id for its history."""
    tag = uuid.uuid4().hex[:8]
    task_queue = f"bench-empty-{tag}"

    async def one(i: int) -> None:
        await client.execute_workflow(
            EmptyWorkflow.run,
            id=f"bench-empty-{tag}-{i}",
            task_queue=task_queue,
            request_eager_start=eager,
        )

    run = Run("empty")
    build = lambda: empty_worker(client, task_queue, topo.ws)  # noqa: E731
    async with workers(topo, "empty", task_queue, build) as pids:
        await warm_up(warmup, concurrency, lambda i: one(-1 - i), "empty warm-up")
        async with measured(server, run, settle_s, pids):
            await drive(n, concurrency, one, run)
    return run, f"bench-empty-{tag}-0"


async def phase_lifecycle(
    client: Client,
    server: DevServer,
    shop: Shop,
    n: int,
    concurrency: int,
    topo: Topology,
    warmup: int = 5,
    eager: bool = False,
    settle_s: float = METRICS_SETTLE_S,
) -> tuple[Run, str, str]:
    """N full lifecycles; returns the run, the worker's provenance and one order number."""
    task_queue = f"bench-orders-{shop.tag}-{uuid.uuid4().hex[:4]}"
    w, built = lifecycle_worker(client, task_queue, shop.sessions, topo.ws)
    if topo.processes > 0:
        built = f"{topo.processes} worker process(es) (bench.worker_proc): {built}"
    run = Run("lifecycle")
    async with (
        workers(topo, "orders", task_queue, lambda: w) as pids,
        ReadModelWatch(shop.reads) as watch,
    ):
        warm_lc = Lifecycles(client, task_queue, shop, watch, eager)
        await warm_up(
            warmup, concurrency, lambda i: warm_lc.one(10_000_000 + i), "lifecycle warm-up"
        )
        await wait_all_closed(client, task_queue)
        lc = Lifecycles(client, task_queue, shop, watch, eager)
        async with measured(server, run, settle_s, pids):
            await drive(n, concurrency, lc.one, run)
            t0 = time.perf_counter()
            await wait_all_closed(client, task_queue)
            run.elapsed_s += time.perf_counter() - t0
        finished = await shop.finished(lc.order_nos)
        if finished != run.done:
            run.errors.append(
                f"read model: {finished} of {run.done} completed orders are FINISHED in orders"
            )
        sample = lc.order_nos[0] if lc.order_nos else ""
        run.not_found_retries = lc.not_found_retries
        run.submit_retries = lc.submit_retries
        run.steps_s = lc.steps_s
        run.db_polls = watch.queries
    return run, built, sample
