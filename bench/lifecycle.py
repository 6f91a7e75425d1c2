"""Order-lifecycle throughput against empty-workflow throughput, on one dev server, in one run.

    .venv/bin/python -m bench.lifecycle [--orders 300] [--concurrency 50] [--empty 300]
                                        [--in-memory] [--database-url URL] ...

Phase A runs N empty workflows; phase B runs N full two-supplier order lifecycles (submit by
update-with-start, payment signal, ship / confirm receipt / review updates on both supplier
orders, the order's result) with the real worker and a real read model. Both phases use the same
worker settings and the same bounded concurrency. Printed: both rates, their ratio against the
target, lifecycle latency, what one lifecycle costs the server (history events per workflow,
persistence requests, server CPU), and a JSON line with all of it.

The server, the worker and this client share the machine: on 2 cores the Python process (worker +
driver) and the Temporal server compete for CPU, which the report shows (CPU seconds per unit of
work for each side).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import dataclasses
import inspect
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import PollerBehaviorAutoscaling, PollerBehaviorSimpleMaximum, Worker

import worker as order_worker
from bench.empty import EmptyWorkflow
from bench.server import DevServer, Usage, _die_with_parent
from db.session import create_all, make_engine, make_session_factory, write_session
from db.tables import CoinLedger, Customer, Order, Product, SupplierOrder
from domain.ids import new_order_no
from domain.messages import (
    ConfirmReceipt,
    GetPlacement,
    OrderInput,
    OrderResult,
    PaymentEvent,
    Placement,
    ShipItems,
    ShipLine,
    SubmitReview,
    SupplierOrderResult,
)
from domain.models import Address, OrderLine, SubmitOrder, SupplierOrderPlan
from domain.policy import Policy
from domain.states import OrderStatus, SupplierOrderStatus
from workflows.common import CUSTOMER_ID, ORDER_NO, ORDER_STATUS
from workflows.order import OrderWorkflow, supplier_order_workflow_id
from workflows.supplier_order import SupplierOrderWorkflow

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO_PCT = 12.0
SUPPLIERS = ("bs1", "bs2")
PRODUCTS_PER_SUPPLIER = 8
CUSTOMERS = 64
HOME = Address(
    name="Bench Customer",
    phone="13800000000",
    region="Shanghai",
    address="1 Century Ave",
    lat=31.2304,
    lon=121.4737,
)
T = TypeVar("T")


# --- worker settings -------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerSettings:
    """The knobs tuned by the benchmark; the same values drive both phases."""

    max_concurrent_workflow_tasks: int = 100
    max_concurrent_activities: int = 100
    workflow_task_pollers: int | None = None  # SDK default: 5
    activity_task_pollers: int | None = None  # SDK default: 5
    max_cached_workflows: int | None = None  # SDK default: 1000 (the sticky cache)
    nonsticky_to_sticky_poll_ratio: float | None = None  # SDK default: 0.2
    workflow_threads: int | None = None  # SDK default: max_concurrent_workflow_tasks threads
    autoscale_pollers: bool = False  # workflow-task pollers scaled on the server's hints

    def extras(self) -> dict[str, Any]:
        """Worker options that `worker.build_worker` does not (yet) take."""
        out: dict[str, Any] = {}
        if self.autoscale_pollers:
            out["workflow_task_poller_behavior"] = PollerBehaviorAutoscaling(
                maximum=self.workflow_task_pollers or 100
            )
        elif self.workflow_task_pollers is not None:
            out["workflow_task_poller_behavior"] = PollerBehaviorSimpleMaximum(
                self.workflow_task_pollers
            )
        if self.activity_task_pollers is not None:
            out["activity_task_poller_behavior"] = PollerBehaviorSimpleMaximum(
                self.activity_task_pollers
            )
        if self.max_cached_workflows is not None:
            out["max_cached_workflows"] = self.max_cached_workflows
        if self.nonsticky_to_sticky_poll_ratio is not None:
            out["nonsticky_to_sticky_poll_ratio"] = self.nonsticky_to_sticky_poll_ratio
        if self.workflow_threads is not None:
            # Lives as long as the worker's process (the bench never reuses a worker).
            out["workflow_task_executor"] = concurrent.futures.ThreadPoolExecutor(
                max_workers=self.workflow_threads, thread_name_prefix="bench_workflow_"
            )
        return out


def empty_worker(client: Client, task_queue: str, ws: WorkerSettings) -> Worker:
    """Phase A's worker: the production workflow runner and the same settings as phase B."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[EmptyWorkflow],
        workflow_runner=order_worker.workflow_runner(),
        max_concurrent_workflow_tasks=ws.max_concurrent_workflow_tasks,
        **ws.extras(),
    )


def lifecycle_worker(
    client: Client,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    ws: WorkerSettings,
) -> tuple[Worker, str]:
    """Phase B's worker: `worker.build_worker`, unless a knob it does not take is set.

    Then the same parts (WORKFLOWS, activities_for, workflow_runner) are assembled here with the
    extra options; the second value says which way the worker was built.
    """
    extras = ws.extras()
    params = inspect.signature(order_worker.build_worker).parameters
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if takes_kwargs or set(extras) <= set(params):
        w = order_worker.build_worker(
            client,
            task_queue,
            sessions,
            max_concurrent_workflow_tasks=ws.max_concurrent_workflow_tasks,
            max_concurrent_activities=ws.max_concurrent_activities,
            **extras,
        )
        return w, "worker.build_worker"
    w = Worker(
        client,
        task_queue=task_queue,
        workflows=list(order_worker.WORKFLOWS),
        activities=order_worker.activities_for(sessions),
        workflow_runner=order_worker.workflow_runner(),
        max_concurrent_workflow_tasks=ws.max_concurrent_workflow_tasks,
        max_concurrent_activities=ws.max_concurrent_activities,
        max_concurrent_local_activities=ws.max_concurrent_activities,
        **extras,
    )
    return w, "build_worker parts + " + ",".join(sorted(extras))


# --- load driver ------------------------------------------------------------------------


@dataclass
class Run:
    """What one phase measured."""

    name: str
    done: int = 0
    elapsed_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    server: Usage = field(default_factory=Usage)
    client_cpu_s: float = 0.0  # this process: the driver, and the worker unless in processes
    worker_cpu_s: float = 0.0  # worker processes (--worker-processes N)
    machine_cpu_s: float = 0.0  # every process on the machine, ours included
    not_found_retries: int = 0  # phase B: ship updates sent before the child existed
    db_polls: int = 0  # phase B: read-model queries of the paid-watch
    steps_s: dict[str, list[float]] = field(default_factory=dict)  # phase B: time per step

    @property
    def rate(self) -> float:
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def cores(self) -> tuple[float, float, float]:
        """Average cores used during the phase by the server, our Python processes, the rest."""
        wall = max(self.elapsed_s, 1e-9)
        py = self.client_cpu_s + self.worker_cpu_s
        other = max(self.machine_cpu_s - self.server.cpu_s - py, 0.0)
        return self.server.cpu_s / wall, py / wall, other / wall

    @staticmethod
    def merge(name: str, runs: Sequence[Run]) -> Run:
        """Several rounds as one: rate = all completed / all measured time."""
        out = Run(name)
        for r in runs:
            out.done += r.done
            out.elapsed_s += r.elapsed_s
            out.latencies_s += r.latencies_s
            out.errors += r.errors
            out.server = out.server + r.server
            out.client_cpu_s += r.client_cpu_s
            out.worker_cpu_s += r.worker_cpu_s
            out.machine_cpu_s += r.machine_cpu_s
            out.not_found_retries += r.not_found_retries
            out.db_polls += r.db_polls
            for step, xs in r.steps_s.items():
                out.steps_s.setdefault(step, []).extend(xs)
        return out

    def pct(self, q: float) -> float:
        if not self.latencies_s:
            return 0.0
        xs = sorted(self.latencies_s)
        return xs[min(len(xs) - 1, max(0, math.ceil(q / 100 * len(xs)) - 1))]


# A unit that takes longer than this is counted as an error instead of stalling the run (a
# worker that keeps failing workflow tasks, e.g. after workflow code changed on disk mid-run,
# otherwise leaves the benchmark waiting for ever).
UNIT_TIMEOUT_S = 180.0


async def drive(n: int, concurrency: int, one: Callable[[int], Awaitable[None]], run: Run) -> None:
    """Run `one(i)` for i in 0..n-1 with at most `concurrency` in flight; time it into `run`."""
    counter = itertools.count()

    async def lane() -> None:
        while (i := next(counter)) < n:
            t0 = time.perf_counter()
            try:
                await asyncio.wait_for(one(i), UNIT_TIMEOUT_S)
            except Exception as err:
                run.errors.append(f"#{i}: {type(err).__name__}: {err}")
                continue
            run.latencies_s.append(time.perf_counter() - t0)
            run.done += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(max(1, min(concurrency, n)))))
    run.elapsed_s = time.perf_counter() - t0


# The server's Prometheus reporter publishes its counters about once a second: give it time
# before and after a phase so its requests are counted in that phase and no other.
METRICS_SETTLE_S = 1.5


def machine_busy_s() -> float:
    """CPU seconds all processes of the machine have used so far (Linux /proc/stat)."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return 0.0
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def process_cpu_s(pids: Sequence[int]) -> float:
    """User + system CPU seconds of these processes so far (Linux /proc)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


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


@dataclass(frozen=True)
class Topology:
    """Where the worker runs: in this process (0) or in N worker processes of its own."""

    processes: int
    address: str
    ws: WorkerSettings
    database_url: str = ""
    db_pool_size: int | None = None


@contextlib.asynccontextmanager
async def worker_processes(
    topo: Topology, kind: str, task_queue: str, timeout_s: float = 60.0
) -> AsyncIterator[list[int]]:
    """Start `topo.processes` bench.worker_proc processes, yield their pids once all poll."""
    cmd = [
        sys.executable,
        "-m",
        "bench.worker_proc",
        "--address",
        topo.address,
        "--task-queue",
        task_queue,
        "--kind",
        kind,
        "--settings",
        json.dumps(dataclasses.asdict(topo.ws)),
    ]
    if kind == "orders":
        cmd += ["--database-url", topo.database_url]
        if topo.db_pool_size is not None:
            cmd += ["--db-pool-size", str(topo.db_pool_size)]
    root = str(ROOT)
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    procs: list[asyncio.subprocess.Process] = []
    try:
        for _ in range(topo.processes):
            procs.append(
                await asyncio.create_subprocess_exec(
                    *cmd,
                    cwd=root,
                    env=env,
                    stdout=asyncio.subprocess.PIPE,
                    preexec_fn=_die_with_parent,
                )
            )
        for proc in procs:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), timeout_s)
            if line.strip() != b"ready":
                raise RuntimeError(
                    f"worker process {proc.pid} did not start (exit {proc.returncode})"
                )
        yield [p.pid for p in procs]
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.terminate()
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()


@contextlib.asynccontextmanager
async def workers(
    topo: Topology, kind: str, task_queue: str, build: Callable[[], Worker]
) -> AsyncIterator[list[int]]:
    """The phase's worker: built in this process, or started as worker processes."""
    if topo.processes <= 0:
        async with build():
            yield []
        return
    async with worker_processes(topo, kind, task_queue) as pids:
        yield pids


# --- phase A: empty workflows ----------------------------------------------------------------


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
        warm = Run("warmup")
        await drive(warmup, concurrency, lambda i: one(-1 - i), warm)
        if warm.errors:
            raise RuntimeError(f"empty warm-up failed: {warm.errors[0]}")
        async with measured(server, run, settle_s, pids):
            await drive(n, concurrency, one, run)
    return run, f"bench-empty-{tag}-0"


# --- phase B: order lifecycles ------------------------------------------------------------


@dataclass
class Shop:
    """The read model the lifecycles run against, and the ids that were seeded into it.

    `sessions` is the application's (db.session.make_engine), used by an in-process worker and
    for seeding. The driver reads through `reads`, a small engine of its own on the same URL, so
    its polling never takes a connection the activities are waiting for.
    """

    url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    reader: AsyncEngine
    reads: async_sessionmaker[AsyncSession]
    tag: str

    def sku(self, supplier: str, k: int) -> str:
        return f"{self.tag}-{supplier}-{k}"

    def customer(self, k: int) -> str:
        return f"{self.tag}-c{k}"

    async def seed(self) -> None:
        """Two suppliers' products with stock that never runs out, customers with coins."""
        at = datetime.now(UTC)
        async with write_session(self.sessions) as s:
            for supplier in SUPPLIERS:
                for k in range(PRODUCTS_PER_SUPPLIER):
                    s.add(
                        Product(
                            sku=self.sku(supplier, k),
                            name=f"Bench product {supplier}/{k}",
                            supplier_id=supplier,
                            product_type=("tea", "cups")[k % 2],
                            kind="physical",
                            price=Decimal("20.00") + k,
                            on_hand=1_000_000_000,
                            reserved=0,
                            active=True,
                        )
                    )
            for k in range(CUSTOMERS):
                cid = self.customer(k)
                coins = Decimal("1000000.00")
                s.add(
                    Customer(
                        id=cid, name=cid, coins=coins, default_address=HOME.model_dump(mode="json")
                    )
                )
                s.add(CoinLedger(customer_id=cid, delta=coins, reason="seed", order_no=None, at=at))

    def request(self, i: int) -> SubmitOrder:
        """Order i: one product of each supplier (rotating), a few coins, default address."""
        return SubmitOrder(
            customer_id=self.customer(i % CUSTOMERS),
            lines=[
                OrderLine(sku=self.sku(sup, (i + j) % PRODUCTS_PER_SUPPLIER), qty=1 + i % 2)
                for j, sup in enumerate(SUPPLIERS)
            ],
            coins=Decimal("1.00"),
        )

    async def finished(self, order_nos: Sequence[str]) -> int:
        n = 0
        for chunk in range(0, len(order_nos), 500):
            async with self.sessions() as s:
                n += int(
                    await s.scalar(
                        select(func.count())
                        .select_from(Order)
                        .where(
                            Order.order_no.in_(order_nos[chunk : chunk + 500]),
                            Order.status == OrderStatus.FINISHED.value,
                        )
                    )
                    or 0
                )
        return n


class ReadModelWatch:
    """Resolves "supplier order X is paid" and "order Y is settled" from the read model.

    The driver, like the API and its users, learns from the read model, not by asking Temporal:
    a `describe()` or `result()` per workflow would itself be server load the product does not
    cause. One query per tick answers every waiting lifecycle.
    """

    # One tick every 100 ms: a lifecycle waits on the read model twice, so this adds ~0.1 s to
    # a ~10 s lifecycle, while a 20 ms tick spent ~25 ms of driver CPU per lifecycle polling
    # (py-spy) on the two cores the server and the worker need.
    def __init__(self, sessions: async_sessionmaker[AsyncSession], tick_s: float = 0.1) -> None:
        self.sessions = sessions
        self.tick_s = tick_s
        self.paid_waits: dict[str, asyncio.Future[None]] = {}
        self.settled_waits: dict[str, asyncio.Future[str]] = {}
        self.queries = 0
        self._task: asyncio.Task[None] | None = None

    async def paid(self, supplier_order_id: str) -> None:
        """Until the supplier order has left PENDING_PAYMENT."""
        fut = self.paid_waits.setdefault(
            supplier_order_id, asyncio.get_running_loop().create_future()
        )
        await fut

    async def settled(self, order_no: str) -> str:
        """Until the order is FINISHED or CLOSED in the read model; returns which."""
        fut = self.settled_waits.setdefault(order_no, asyncio.get_running_loop().create_future())
        return await fut

    async def __aenter__(self) -> ReadModelWatch:
        self._task = asyncio.create_task(self._loop())
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            so_ids = list(self.paid_waits)
            order_nos = list(self.settled_waits)
            if not so_ids and not order_nos:
                continue
            self.queries += 1
            try:
                async with self.sessions() as s:
                    paid = (
                        (
                            await s.scalars(
                                select(SupplierOrder.id).where(
                                    SupplierOrder.id.in_(so_ids),
                                    SupplierOrder.status
                                    != SupplierOrderStatus.PENDING_PAYMENT.value,
                                )
                            )
                        ).all()
                        if so_ids
                        else []
                    )
                    settled = (
                        (
                            await s.execute(
                                select(Order.order_no, Order.status).where(
                                    Order.order_no.in_(order_nos),
                                    Order.status.in_(
                                        [OrderStatus.FINISHED.value, OrderStatus.CLOSED.value]
                                    ),
                                )
                            )
                        ).all()
                        if order_nos
                        else []
                    )
            except Exception as err:  # a busy read model: try again next tick
                print(f"  (read-model watch query failed: {err})", file=sys.stderr)
                continue
            # A waiter that gave up (a unit timed out) cancelled its future: skip it, or the
            # watch itself would die of InvalidStateError and every later wait hang.
            for so_id in paid:
                if not (fut := self.paid_waits.pop(so_id)).done():
                    fut.set_result(None)
            for order_no, status in settled:
                if not (done := self.settled_waits.pop(order_no)).done():
                    done.set_result(str(status))


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


@dataclass
class Lifecycles:
    client: Client
    task_queue: str
    shop: Shop
    watch: ReadModelWatch
    eager: bool = False
    order_nos: list[str] = field(default_factory=list)
    not_found_retries: int = 0
    steps_s: dict[str, list[float]] = field(default_factory=dict)

    @contextlib.asynccontextmanager
    async def step(self, name: str) -> AsyncIterator[None]:
        """Time one step of a lifecycle: where its latency goes."""
        t0 = time.perf_counter()
        yield
        self.steps_s.setdefault(name, []).append(time.perf_counter() - t0)

    async def submit(self, order_no: str, req: SubmitOrder) -> Placement:
        inp = OrderInput(
            order_no=order_no, request=req, policy=Policy(after_sales_window=timedelta(0))
        )
        wf_id = f"order-{order_no}"
        attrs = TypedSearchAttributes(
            [
                SearchAttributePair(ORDER_NO, order_no),
                SearchAttributePair(CUSTOMER_ID, req.customer_id),
                SearchAttributePair(ORDER_STATUS, OrderStatus.PENDING_PAYMENT.value),
            ]
        )
        if self.eager:
            # Experiment: eager start (the first workflow task comes back in the start
            # response) followed by the placement update as a second call.
            handle = await self.client.start_workflow(
                OrderWorkflow.run,
                inp,
                id=wf_id,
                task_queue=self.task_queue,
                search_attributes=attrs,
                request_eager_start=True,
            )
            return await handle.execute_update(OrderWorkflow.placement, GetPlacement())
        result: Placement = await self.client.execute_update_with_start_workflow(
            OrderWorkflow.placement,
            GetPlacement(),
            start_workflow_operation=WithStartWorkflowOperation(
                OrderWorkflow.run,
                inp,
                id=wf_id,
                task_queue=self.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                search_attributes=attrs,
            ),
        )
        return result

    async def supplier_side(self, so: SupplierOrderPlan) -> None:
        async with self.step("paid visible"):
            await self.watch.paid(so.id)
        handle: WorkflowHandle[SupplierOrderWorkflow, SupplierOrderResult] = (
            self.client.get_workflow_handle_for(
                SupplierOrderWorkflow.run, supplier_order_workflow_id(so.id)
            )
        )
        ship = ShipItems(
            carrier="sf",
            tracking_no=f"T{so.id}",
            items=[ShipLine(item_id=i.item_id, qty=i.qty) for i in so.items],
        )
        # The row turns paid inside the parent's workflow task; the child is started when that
        # task completes, a few milliseconds later.
        async with self.step("ship"):
            await self._retry_not_found(
                lambda: handle.execute_update(SupplierOrderWorkflow.ship, ship)
            )
        async with self.step("confirm"):
            await handle.execute_update(SupplierOrderWorkflow.confirm_receipt, ConfirmReceipt())
        async with self.step("review"):
            await handle.execute_update(
                SupplierOrderWorkflow.review, SubmitReview(rating=5, text="Arrived well packed.")
            )

    async def _retry_not_found(self, call: Callable[[], Awaitable[T]], tries: int = 100) -> T:
        """Retry while the workflow does not exist yet, backing off (each miss is a server call)."""
        delay = 0.02
        for attempt in itertools.count():
            try:
                return await call()
            except RPCError as err:
                if err.status is not RPCStatusCode.NOT_FOUND or attempt >= tries:
                    raise
                self.not_found_retries += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.2)
        raise AssertionError("unreachable")

    async def one(self, i: int) -> None:
        order_no = new_order_no()
        self.order_nos.append(order_no)
        async with self.step("submit"):
            placement = await self.submit(order_no, self.shop.request(i))
        handle: WorkflowHandle[OrderWorkflow, OrderResult] = self.client.get_workflow_handle_for(
            OrderWorkflow.run, f"order-{order_no}"
        )
        async with self.step("pay signal"):
            await handle.signal(
                OrderWorkflow.payment,
                PaymentEvent(
                    event_id=f"pay-{order_no}", status="succeeded", amount=placement.plan.payable
                ),
            )
        await asyncio.gather(*(self.supplier_side(so) for so in placement.plan.supplier_orders))
        async with self.step("finished visible"):
            status = await self.watch.settled(order_no)
        if status != OrderStatus.FINISHED.value:
            raise RuntimeError(f"order {order_no} ended {status} in the read model")


async def open_shop(database_url: str | None, workdir: Path, pool_size: int | None = None) -> Shop:
    url = database_url or f"sqlite+aiosqlite:///{workdir / 'orders.db'}"
    pool: dict[str, Any] = {} if pool_size is None else {"pool_size": pool_size, "max_overflow": 0}
    engine = make_engine(url, **pool)
    await create_all(engine)
    reader = create_async_engine(url, pool_size=2, max_overflow=0)
    shop = Shop(
        url,
        engine,
        make_session_factory(engine),
        reader,
        make_session_factory(reader),
        tag=f"b{uuid.uuid4().hex[:6]}",
    )
    await shop.seed()
    return shop


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
        warm = Run("warmup")
        await drive(warmup, concurrency, lambda i: warm_lc.one(10_000_000 + i), warm)
        if warm.errors:
            raise RuntimeError(f"lifecycle warm-up failed: {warm.errors[0]}")
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
        run.steps_s = lc.steps_s
        run.db_polls = watch.queries
    return run, built, sample


def _q(xs: Sequence[float], q: float) -> float:
    ys = sorted(xs)
    return ys[min(len(ys) - 1, int(q * len(ys)))] if ys else 0.0


# --- history breakdown ----------------------------------------------------------------------

COUNTED = {
    "events": None,
    "workflow_tasks": EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
    "activities": EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
    "local_activities": EventType.EVENT_TYPE_MARKER_RECORDED,
    "timers": EventType.EVENT_TYPE_TIMER_STARTED,
    "timers_cancelled": EventType.EVENT_TYPE_TIMER_CANCELED,
    "children": EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED,
    "updates": EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
    "signals": EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
    "search_attr_upserts": EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
    "properties_modified": EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED,
}


async def history_counts(client: Client, workflow_id: str) -> dict[str, int]:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    kinds = Counter(e.event_type for e in history.events)
    out = {"events": len(history.events)}
    for name, kind in COUNTED.items():
        if kind is not None:
            out[name] = kinds.get(kind, 0)
    return out


async def breakdown(
    client: Client, empty_id: str, order_no: str, shop: Shop
) -> dict[str, dict[str, int]]:
    """Event counts of one empty workflow and of one lifecycle's three workflows."""
    rows: dict[str, dict[str, int]] = {}
    if empty_id:
        rows["empty"] = await history_counts(client, empty_id)
    if not order_no:
        return rows
    rows["order"] = await history_counts(client, f"order-{order_no}")
    async with shop.sessions() as s:
        so_ids = list(
            (
                await s.scalars(
                    select(SupplierOrder.id)
                    .where(SupplierOrder.order_no == order_no)
                    .order_by(SupplierOrder.id)
                )
            ).all()
        )
    for k, so_id in enumerate(so_ids, 1):
        rows[f"supplier_order_{k}"] = await history_counts(
            client, supplier_order_workflow_id(so_id)
        )
    total: Counter[str] = Counter()
    for name, counts in rows.items():
        if name != "empty":
            total.update(counts)
    rows["lifecycle_total"] = dict(total)
    return rows


# --- report ------------------------------------------------------------------------------


# Persistence operations that write a workflow's state (each is one database transaction).
EXECUTION_WRITES = (
    "CreateWorkflowExecution",
    "UpdateWorkflowExecution",
    "ConflictResolveWorkflowExecution",
    "SetWorkflowExecution",
)


def per_unit(u: Usage, n: int) -> dict[str, float]:
    n = max(n, 1)
    return {
        "server_cpu_ms": 1000 * u.cpu_s / n,
        "persistence_requests": u.persistence_total / n,
        "execution_writes": sum(u.persistence[k] for k in EXECUTION_WRITES) / n,
        "visibility_requests": sum(u.visibility.values()) / n,
        "frontend_requests": sum(u.api.values()) / n,
    }


def top(c: Counter[str], n: int, k: int = 8) -> str:
    return ", ".join(f"{op} {v / max(n, 1):.1f}" for op, v in c.most_common(k))


# Above this many cores used by other processes during a phase, the figures are flagged.
NOISY_OTHER_CORES = 0.2


def report(
    args: argparse.Namespace,
    ws: WorkerSettings,
    built: str,
    a_rounds: Sequence[Run],
    b_rounds: Sequence[Run],
    hist: dict[str, dict[str, int]],
) -> dict[str, Any]:
    a, b = Run.merge("empty", a_rounds), Run.merge("lifecycle", b_rounds)
    ratio = 100 * b.rate / a.rate if a.rate else 0.0
    rounds = [
        {
            "empty_wf_per_s": round(ra.rate, 2),
            "lifecycles_per_s": round(rb.rate, 3),
            "ratio_pct": round(100 * rb.rate / ra.rate, 2) if ra.rate else 0.0,
            "other_cores": [round(ra.cores()[2], 2), round(rb.cores()[2], 2)],
        }
        for ra, rb in zip(a_rounds, b_rounds, strict=True)
    ]
    storage = "in-memory" if args.in_memory else "SQLite file"
    db = "PostgreSQL" if args.database_url else "SQLite file"
    print()
    where = (
        "one Python process for worker + driver"
        if args.worker_processes <= 0
        else f"the driver in this process, the worker in {args.worker_processes} of its own"
    )
    print(f"Temporal dev server ({storage}), read model on {db}, {os.cpu_count()} CPUs shared by")
    print(f"the server, the worker and this driver ({where}).")
    print(f"code {code_version()}; worker: {built}; {ws}")
    print()
    if len(rounds) > 1:
        for k, r in enumerate(rounds, 1):
            print(
                f"round {k}: A {r['empty_wf_per_s']:7.2f} wf/s, B {r['lifecycles_per_s']:6.2f} "
                f"lifecycles/s, ratio {r['ratio_pct']:5.1f} % (other load {r['other_cores']})"
            )
        print("all rounds:")
    print(f"A  empty workflows : {a.done:5d} in {a.elapsed_s:6.1f}s = {a.rate:7.2f} wf/s")
    print(f"B  order lifecycles: {b.done:5d} in {b.elapsed_s:6.1f}s = {b.rate:7.2f} lifecycles/s")
    verdict = "meets" if ratio >= TARGET_RATIO_PCT else "misses"
    print(f"   ratio B/A       : {ratio:6.1f} %  (target >= {TARGET_RATIO_PCT:.0f} %: {verdict})")
    print(
        f"   lifecycle latency p50 {1000 * b.pct(50):.0f} ms, p95 {1000 * b.pct(95):.0f} ms, "
        f"max {1000 * max(b.latencies_s, default=0):.0f} ms"
    )
    print(f"   empty latency     p50 {1000 * a.pct(50):.0f} ms, p95 {1000 * a.pct(95):.0f} ms")
    print()
    cols = list(COUNTED)
    print("History of one run, per workflow:")
    print(f"  {'':18s}" + "".join(f"{c[:11]:>12s}" for c in cols))
    for name, counts in hist.items():
        print(f"  {name:18s}" + "".join(f"{counts.get(c, 0):12d}" for c in cols))
    print()
    ua, ub = per_unit(a.server, a.done), per_unit(b.server, b.done)
    print("Server cost per unit (metrics endpoint and /proc):")
    print(
        f"  {'':12s}{'cpu ms':>10s}{'persist':>10s}{'wf writes':>10s}{'visib.':>10s}"
        f"{'frontend':>10s}{'py cpu ms':>11s}"
    )
    for label, u, run in (("empty wf", ua, a), ("lifecycle", ub, b)):
        py = 1000 * (run.client_cpu_s + run.worker_cpu_s) / max(run.done, 1)
        print(
            f"  {label:12s}{u['server_cpu_ms']:10.1f}{u['persistence_requests']:10.1f}"
            f"{u['execution_writes']:10.1f}{u['visibility_requests']:10.1f}"
            f"{u['frontend_requests']:10.1f}{py:11.1f}"
        )
    if a.done and b.done:

        def x(key: str) -> str:
            return f"x{ub[key] / max(ua[key], 1e-9):.1f}"

        print(
            f"  lifecycle/empty: server CPU {x('server_cpu_ms')}, persistence "
            f"{x('persistence_requests')}, workflow writes {x('execution_writes')}, "
            f"visibility {x('visibility_requests')}"
        )

    for label, run in (("A", a), ("B", b)):
        srv, py, other = run.cores()
        split = ""
        if args.worker_processes > 0:
            wall = max(run.elapsed_s, 1e-9)
            split = f" (driver {run.client_cpu_s / wall:.2f}, worker {run.worker_cpu_s / wall:.2f})"
        print(
            f"  cores busy in {label}: server {srv:.2f} + python {py:.2f}{split} + other "
            f"processes {other:.2f} of {os.cpu_count()}"
        )
    noisy = max(a.cores()[2], b.cores()[2])
    if noisy > NOISY_OTHER_CORES:
        print(
            f"  WARNING: other processes used up to {noisy:.2f} cores during the phases; "
            "these figures are not comparable with a quiet machine's"
        )
    print(f"  persistence ops per lifecycle: {top(b.server.persistence, b.done)}")
    print(f"  frontend calls per lifecycle : {top(b.server.api, b.done)}")
    print(f"  driver: {b.not_found_retries} not-found retries, {b.db_polls} read-model polls")
    if b.steps_s:
        print(
            "  lifecycle steps, p50/p95 ms: "
            + ", ".join(
                f"{step} {_q(xs, 0.5) * 1000:.0f}/{_q(xs, 0.95) * 1000:.0f}"
                for step, xs in b.steps_s.items()
            )
        )
    for run in (a, b):
        for err in run.errors[:5]:
            print(f"  ERROR {run.name}: {err}")
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
        "lifecycle_steps_p50_ms": {k: round(1000 * _q(v, 0.5), 1) for k, v in b.steps_s.items()},
        "empty_p50_ms": round(1000 * a.pct(50), 1),
        "empty_p95_ms": round(1000 * a.pct(95), 1),
        "history": hist,
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


# --- main ------------------------------------------------------------------------------------


def code_version() -> str:
    """Commit of the code under test (with "+dirty" for uncommitted changes), or "unknown"."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.lifecycle", description=__doc__.split("\n")[0]
    )
    p.add_argument("--orders", type=int, default=300, help="lifecycles in phase B (default 300)")
    p.add_argument("--empty", type=int, default=300, help="empty workflows in phase A (300)")
    p.add_argument("--concurrency", type=int, default=50, help="in flight, both phases (50)")
    p.add_argument("--in-memory", action="store_true", help="server without --db-filename")
    p.add_argument("--database-url", help="read model URL (default: SQLite file in a temp dir)")
    p.add_argument("--wft-slots", type=int, default=100, help="max_concurrent_workflow_tasks")
    p.add_argument("--activity-slots", type=int, default=100, help="max_concurrent_activities")
    p.add_argument("--wft-pollers", type=int, help="workflow task pollers (SDK default 5)")
    p.add_argument("--activity-pollers", type=int, help="activity task pollers (SDK default 5)")
    p.add_argument("--cache", type=int, help="max_cached_workflows (SDK default 1000)")
    p.add_argument("--sticky-ratio", type=float, help="nonsticky_to_sticky_poll_ratio (0.2)")
    p.add_argument(
        "--autoscale-pollers",
        action="store_true",
        help="workflow-task pollers scale on the server's hints (up to --wft-pollers or 100)",
    )
    p.add_argument(
        "--workflow-threads",
        type=int,
        help="threads running workflow activations (SDK default: one per workflow-task slot)",
    )
    p.add_argument(
        "--eager-start",
        action="store_true",
        help="experiment: eager workflow start (phase B: start + placement update, not UwS)",
    )
    p.add_argument(
        "--dynamic-config",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="passed to the server as --dynamic-config-value (repeatable)",
    )
    p.add_argument(
        "--sqlite-pragma",
        action="append",
        default=[],
        metavar="PRAGMA=VALUE",
        help="experiment: passed to the server as --sqlite-pragma (repeatable)",
    )
    p.add_argument(
        "--db-pool-size",
        type=int,
        help="experiment: read-model pool size for the worker (default: the app's engine)",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="repeat A then B this many times on the same server; rates pool all rounds (1)",
    )
    p.add_argument(
        "--settle",
        type=float,
        default=METRICS_SETTLE_S,
        help="seconds to let the server publish its metrics around each phase (1.5)",
    )
    p.add_argument(
        "--worker-processes",
        type=int,
        default=1,
        metavar="N",
        help="run the worker in N processes of its own, as deployed (1); 0 = in this process",
    )
    p.add_argument("--skip-empty", action="store_true", help="phase B only (ratio reads 0)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (server db, logs)")
    return p.parse_args(argv)


async def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    ws = WorkerSettings(
        max_concurrent_workflow_tasks=args.wft_slots,
        max_concurrent_activities=args.activity_slots,
        workflow_task_pollers=args.wft_pollers,
        activity_task_pollers=args.activity_pollers,
        max_cached_workflows=args.cache,
        nonsticky_to_sticky_poll_ratio=args.sticky_ratio,
        workflow_threads=args.workflow_threads,
        autoscale_pollers=args.autoscale_pollers,
    )
    tmp = Path(tempfile.mkdtemp(prefix="bench-lifecycle-"))
    try:
        async with DevServer(
            in_memory=args.in_memory,
            dynamic_config=args.dynamic_config,
            extra_args=[a for kv in args.sqlite_pragma for a in ("--sqlite-pragma", kv)],
            workdir=tmp,
        ) as server:
            print(
                f"server {server.address} ({'in-memory' if args.in_memory else tmp / 'bench.db'})"
            )
            client = await Client.connect(server.address, data_converter=pydantic_data_converter)
            shop = await open_shop(args.database_url, tmp, args.db_pool_size)
            topo = Topology(
                processes=args.worker_processes,
                address=server.address,
                ws=ws,
                database_url=shop.url,
                db_pool_size=args.db_pool_size,
            )
            a_rounds: list[Run] = []
            b_rounds: list[Run] = []
            try:
                for k in range(1, args.rounds + 1):
                    if args.skip_empty:
                        a, empty_id = Run("empty"), ""
                    else:
                        print(f"{k}/A: {args.empty} empty workflows, {args.concurrency} in flight")
                        a, empty_id = await phase_empty(
                            client,
                            server,
                            args.empty,
                            args.concurrency,
                            topo,
                            eager=args.eager_start,
                            settle_s=args.settle,
                        )
                    print(f"{k}/B: {args.orders} lifecycles, {args.concurrency} in flight")
                    b, built, sample = await phase_lifecycle(
                        client,
                        server,
                        shop,
                        args.orders,
                        args.concurrency,
                        topo,
                        eager=args.eager_start,
                        settle_s=args.settle,
                    )
                    a_rounds.append(a)
                    b_rounds.append(b)
                hist = await breakdown(client, empty_id, sample, shop)
            finally:
                await shop.engine.dispose()
                await shop.reader.dispose()
        out = report(args, ws, built, a_rounds, b_rounds, hist)
        print(json.dumps(out, sort_keys=True))
        return 1 if out["errors"] else 0
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
