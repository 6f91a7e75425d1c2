"""Scale-out and fault proof: 2 worker and 2 API processes on one Temporal dev server.

    .venv/bin/python -m bench.scaleout [--orders 100] [--fault-orders 100] [--concurrency 32]
                                       [--pg-url URL] [--in-memory] [--keep]

One run starts its own `temporal server start-dev` (bench/server.py) and a throwaway PostgreSQL
read model (tests/support/postgres.py; `--pg-url` puts a fresh database on an existing server
instead), migrates it and seeds two suppliers' products and 64 customers (bench.lifecycle.Shop).
The service runs as deployed: `python -m worker` and `python -m starter.api` processes on one
task queue, each API on its own port. The load is full lifecycles through HTTP — submit, pay,
and per supplier order ship, a carrier scan (signed webhook), confirm receipt, review; every
few orders also a second payment (signed webhook) that must be refunded exactly once — with an
Idempotency-Key on every command, and retries of 503/504/429 (honouring Retry-After) and of
refused connections, each retry on the next API as a load balancer would. The driver learns that
a supplier order is paid and an order is finished from the read model (bench.lifecycle's
ReadModelWatch), as the clients' pages would.

Phases, all on the same server, database and task queue:
  1+1     N lifecycles, one worker and one API;
  2+2     N lifecycles, two workers and two APIs, requests alternating between them;
  faults  M lifecycles (and on until both faults are over) on 2+2 while worker 1 is SIGKILLed
          and started again, then API 2 is SIGTERMed (it drains) and started again.

Then it checks, and exits 1 if anything fails: every order FINISHED in the read model and every
workflow of the task queue Completed (none lost, none twice); the notifications each lifecycle
owes, exactly once each; one settled refund per extra payment and no other; every package
delivered; the read-model invariants of tests/support/invariants.py (stock, coins, money,
inbox, operation log); no 500 seen by any client and no PostgreSQL deadlock or serialization
failure in the APIs' logs (those the activities meet are retried and reported); both faults
happened and both services came back; every process exits 0 on SIGTERM at the end.

Printed per phase: lifecycles/s, lifecycle and per-step p50/p99, the load average and where the
cores went; then 2+2 against 1+1. The last line is JSON with all of it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from bench.lifecycle import (
    HOME,
    UNIT_TIMEOUT_S,
    ReadModelWatch,
    Run,
    Shop,
    _q,
    code_version,
    drive,
    machine_busy_s,
    process_cpu_s,
    wait_all_closed,
)
from bench.server import DevServer, _die_with_parent, free_port
from db.migrate import upgrade_async
from db.session import make_engine, make_session_factory
from db.tables import Notification, Order, Package, Refund, SupplierOrder
from domain.states import OrderStatus
from starter.dev import has_workflow_poller
from starter.security import Role, mint_token, sign_body
from tests.support.invariants import check_invariants
from tests.support.postgres import create_database, start_postgres

ROOT = Path(__file__).resolve().parent.parent
JWT_SECRET = "scaleout-bench-jwt-secret-0123456789abcdef"
WEBHOOK_SECRET = "scaleout-bench-webhook-secret-0123456789"
READY_TIMEOUT_S = 90.0  # a process start on a busy 2-core machine
REQUEST_DEADLINE_S = 120.0  # one HTTP call, retries included
RETRY_AFTER_CAP_S = 10.0
SETTLE_TIMEOUT_S = 120.0  # refunds settled after the last lifecycle
DRAIN_DELAY_S = 1.0  # ORDERS_API_DRAIN_DELAY of the APIs: /readyz 503 before the listener closes
# Below this gain, 2+2 is reported as no faster than 1+1.
SCALES_ABOVE = 1.15
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


# --- the service's processes ------------------------------------------------------------------


@dataclass
class Service:
    """One `python -m worker` or `python -m starter.api`, restartable (same port, new log)."""

    name: str
    role: str  # "worker" | "api"
    env: dict[str, str]
    logs: Path
    port: int = 0
    proc: asyncio.subprocess.Process | None = None
    generation: int = 0
    started_at: float = 0.0
    log_paths: list[Path] = field(default_factory=list)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.generation += 1
        log_path = self.logs / f"{self.name}.{self.generation}.log"
        self.log_paths.append(log_path)
        module = "worker" if self.role == "worker" else "starter.api"
        with _open_log(log_path) as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                module,
                cwd=str(ROOT),
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        self.started_at = time.monotonic()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def check_alive(self) -> None:
        if not self.alive():
            code = self.proc.returncode if self.proc else None
            raise RuntimeError(f"{self.name} exited ({code}):\n{self.tail()}")

    async def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Send `sig`, wait for the exit; returns the exit code (-9 for SIGKILL)."""
        assert self.proc is not None
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
                raise RuntimeError(
                    f"{self.name} still running {timeout:.0f}s after {sig.name}"
                ) from None
        assert self.proc.returncode is not None
        return self.proc.returncode

    def tail(self, lines: int = 20) -> str:
        return _tail(self.log_paths[-1], lines) if self.log_paths else ""

    def log_text(self) -> str:
        return "\n".join(_read(p) for p in self.log_paths)


@contextlib.contextmanager
def _open_log(path: Path) -> Iterator[Any]:
    with path.open("wb") as f:
        yield f


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _tail(path: Path, lines: int) -> str:
    return "\n".join(_read(path).splitlines()[-lines:])


async def poll_until(
    probe: Callable[[], Awaitable[bool]], timeout: float, what: str, tick: float = 0.1
) -> float:
    """Poll `probe` until true, with a deadline; returns the seconds it took."""
    t0 = time.monotonic()
    while not await probe():
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(tick)
    return time.monotonic() - t0


async def ready(svc: Service, client: Client, task_queue: str) -> float:
    """Until the worker's own pid polls the task queue / the API answers /readyz 200."""
    if svc.role == "worker":

        async def probe() -> bool:
            svc.check_alive()
            return await has_workflow_poller(client, task_queue, svc.pid)

        return await poll_until(probe, READY_TIMEOUT_S, f"{svc.name} polling")

    async with httpx.AsyncClient(base_url=svc.url, timeout=5) as http:

        async def probe() -> bool:
            svc.check_alive()
            try:
                return (await http.get("/readyz")).status_code == 200
            except httpx.TransportError:
                return False

        return await poll_until(probe, READY_TIMEOUT_S, f"{svc.name} /readyz")


async def start_ready(services: Sequence[Service], client: Client, task_queue: str) -> None:
    for svc in services:
        await svc.start()
    await asyncio.gather(*(ready(svc, client, task_queue) for svc in services))


def service_env(
    temporal_address: str, database_url: str, task_queue: str, port: int = 0
) -> dict[str, str]:
    """The environment of one process: this machine's, minus any service settings, plus ours."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ORDERS_", "TEMPORAL_", "OTEL_")) and k != "DATABASE_URL"
    }
    env |= {
        "TEMPORAL_ADDRESS": temporal_address,
        "DATABASE_URL": database_url,
        "ORDERS_TASK_QUEUE": task_queue,
        "ORDERS_JWT_SECRET": JWT_SECRET,
        "ORDERS_WEBHOOK_SECRET": WEBHOOK_SECRET,
        # A lifecycle ends at the review: the supplier orders' workflows close then.
        "ORDERS_AFTER_SALES_WINDOW": "0",
        "ORDERS_API_DRAIN_DELAY": str(DRAIN_DELAY_S),
    }
    if port:
        env["ORDERS_API_PORT"] = str(port)
    return env


# --- clients ------------------------------------------------------------------------------------


@dataclass
class Tally:
    """Every answer the clients got, including those that were retried."""

    status: Counter[str] = field(default_factory=Counter)
    server_errors: Counter[str] = field(default_factory=Counter)  # "503 temporal_unavailable"
    transport_errors: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    served: Counter[str] = field(default_factory=Counter)  # "api-2#2": answers per generation


def _retry_after(r: httpx.Response) -> float | None:
    value = r.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return min(max(float(value), 0.0), RETRY_AFTER_CAP_S)
    except ValueError:
        return None


def _error_code(r: httpx.Response) -> str:
    try:
        return str(r.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return "?"


class Apis:
    """The API processes behind a client-side "load balancer": round robin, retry elsewhere."""

    def __init__(self, services: Sequence[Service], tally: Tally) -> None:
        self.services = list(services)
        self.tally = tally
        self.active = 1
        self._next = itertools.count()
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
        self.http = [
            httpx.AsyncClient(base_url=s.url, timeout=60, limits=limits) for s in self.services
        ]

    async def aclose(self) -> None:
        for h in self.http:
            await h.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: Any = None,
        key: str | None = None,
        signed: bool = False,
    ) -> httpx.Response:
        """One request as a careful client makes it: the same key and body on every retry."""
        headers: dict[str, str] = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if key is not None:
            headers["Idempotency-Key"] = key
        data = json.dumps(body).encode() if body is not None else b""
        if signed:
            headers["X-Signature"] = sign_body(WEBHOOK_SECRET, data)
        deadline = time.monotonic() + REQUEST_DEADLINE_S
        k = next(self._next)
        delay = 0.2
        while True:
            i = k % self.active
            svc = self.services[i]
            wait: float | None
            try:
                r = await self.http[i].request(method, path, content=data, headers=headers)
            except httpx.TransportError as err:
                self.tally.transport_errors[type(err).__name__] += 1
                wait = delay
            else:
                self.tally.status[str(r.status_code)] += 1
                self.tally.served[f"{svc.name}#{svc.generation}"] += 1
                if r.status_code >= 500:
                    self.tally.server_errors[f"{r.status_code} {_error_code(r)}"] += 1
                if r.status_code not in (429, 503, 504):
                    return r
                wait = _retry_after(r)
                if wait is None:
                    wait = delay
            if time.monotonic() + wait > deadline:
                raise RuntimeError(f"{method} {path}: no answer within {REQUEST_DEADLINE_S:.0f}s")
            self.tally.retries += 1
            await asyncio.sleep(wait)
            delay = min(delay * 2, 2.0)
            k += 1  # the next attempt goes to the next API


def _expect(r: httpx.Response, status: int, what: str) -> Any:
    if r.status_code != status:
        raise RuntimeError(f"{what} → {r.status_code}: {r.text[:300]}")
    return r.json()


@dataclass
class Lifecycles:
    """Full lifecycles through the HTTP API, timed per step."""

    apis: Apis
    shop: Shop
    watch: ReadModelWatch
    prefix: str
    dup_pay_every: int = 0
    order_nos: list[str] = field(default_factory=list)
    dup_paid: list[str] = field(default_factory=list)
    submitted: int = 0  # submits answered 201
    progress: asyncio.Event = field(default_factory=asyncio.Event)
    steps_s: dict[str, list[float]] = field(default_factory=dict)

    @contextlib.asynccontextmanager
    async def step(self, name: str) -> AsyncIterator[None]:
        t0 = time.perf_counter()
        yield
        self.steps_s.setdefault(name, []).append(time.perf_counter() - t0)

    async def one(self, i: int) -> None:
        req = self.shop.request(i)
        customer = mint_token(JWT_SECRET, req.customer_id, Role.CUSTOMER)
        key = f"{self.prefix}-{i}"
        body = {
            "lines": [{"sku": li.sku, "qty": li.qty} for li in req.lines],
            "coins": str(req.coins),
        }
        async with self.step("submit"):
            r = await self.apis.call("POST", "/orders", token=customer, body=body, key=f"{key}-o")
        placed = _expect(r, 201, "submit")
        order_no = placed["order_no"]
        self.order_nos.append(order_no)
        self.submitted += 1
        self.progress.set()
        async with self.step("pay"):
            r = await self.apis.call(
                "POST", f"/orders/{order_no}/pay", token=customer, body={}, key=f"{key}-p"
            )
        _expect(r, 202, f"pay {order_no}")
        sides = [self.supplier_side(so, customer, key) for so in placed["supplier_orders"]]
        if self.dup_pay_every and i % self.dup_pay_every == 0:
            sides.append(self.second_payment(placed))
        await asyncio.gather(*sides)
        async with self.step("finished visible"):
            status = await self.watch.settled(order_no)
        if status != OrderStatus.FINISHED.value:
            raise RuntimeError(f"order {order_no} ended {status}")

    async def second_payment(self, placed: dict[str, Any]) -> None:
        """The provider reports a second payment once the order is paid: it goes back, once."""
        order_no = placed["order_no"]
        await self.watch.paid(placed["supplier_orders"][0]["id"])
        event = {
            "event_id": f"second-{order_no}",
            "order_no": order_no,
            "status": "succeeded",
            "amount": placed["payable"],
            "method": "card",
            "at": datetime.now(UTC).isoformat(),
        }
        r = await self.apis.call("POST", "/webhooks/payment", body=event, signed=True)
        _expect(r, 202, f"second payment {order_no}")
        self.dup_paid.append(order_no)

    async def supplier_side(self, so: dict[str, Any], customer: str, key: str) -> None:
        so_id = so["id"]
        supplier = mint_token(
            JWT_SECRET, f"user-{so['supplier_id']}", Role.SUPPLIER, so["supplier_id"]
        )
        async with self.step("paid visible"):
            await self.watch.paid(so_id)
        tracking = f"T{so_id}"
        ship = {
            "carrier": "sf",
            "tracking_no": tracking,
            "method": "standard",
            "items": [{"item_id": i["item_id"], "qty": i["qty"]} for i in so["items"]],
        }
        async with self.step("ship"):
            r = await self.apis.call(
                "POST",
                f"/supplier/orders/{so_id}/shipments",
                token=supplier,
                body=ship,
                key=f"{key}-s-{so_id}",
            )
        _expect(r, 201, f"ship {so_id}")
        scan = {
            "event_id": f"scan-{so_id}",
            "carrier": "sf",
            "tracking_no": tracking,
            "lat": HOME.lat,
            "lon": HOME.lon,
            "status": "delivered",
            "at": datetime.now(UTC).isoformat(),
        }
        async with self.step("scan"):
            r = await self.apis.call("POST", "/webhooks/carrier", body=scan, signed=True)
        _expect(r, 202, f"scan {so_id}")
        async with self.step("confirm"):
            r = await self.apis.call(
                "POST",
                f"/supplier-orders/{so_id}/confirm-receipt",
                token=customer,
                body={},
                key=f"{key}-c-{so_id}",
            )
        _expect(r, 200, f"confirm {so_id}")
        async with self.step("review"):
            r = await self.apis.call(
                "POST",
                f"/supplier-orders/{so_id}/reviews",
                token=customer,
                body={"rating": 5, "text": "Arrived well packed."},
                key=f"{key}-r-{so_id}",
            )
        _expect(r, 200, f"review {so_id}")


# --- phases ---------------------------------------------------------------------------------------


@dataclass
class Stack:
    """Everything one run started, for the phases and the checks."""

    server: DevServer
    client: Client
    shop: Shop
    task_queue: str
    workers: list[Service]
    apis: list[Service]
    tally: Tally
    watch: ReadModelWatch
    pg_pids: Callable[[], list[int]]


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
            "p50_ms": round(1000 * _q(r.latencies_s, 0.5)),
            "p99_ms": round(1000 * _q(r.latencies_s, 0.99)),
            "steps_p50_p99_ms": {
                s: [round(1000 * _q(xs, 0.5)), round(1000 * _q(xs, 0.99))]
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
    run = Run(tag)
    await drive(n, concurrency, lambda i: lc.one(100_000_000 + i), run)
    if run.errors:
        raise RuntimeError(f"warm-up failed: {run.errors[0]}")
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

    counter = itertools.count()
    run = phase.run

    async def lane() -> None:
        while (i := next(counter)) < n or not over.is_set():
            t0 = time.perf_counter()
            try:
                await asyncio.wait_for(lc.one(base + i), UNIT_TIMEOUT_S)
            except Exception as err:
                run.errors.append(f"#{i}: {type(err).__name__}: {err}")
                continue
            run.latencies_s.append(time.perf_counter() - t0)
            run.done += 1

    async with measured(stack, phase, per_process=False):
        t0 = time.perf_counter()
        fault_task = asyncio.create_task(faulting())
        await asyncio.gather(*(lane() for _ in range(max(1, concurrency))))
        await fault_task
        await all_closed(stack, run)
        run.elapsed_s = time.perf_counter() - t0
    run.steps_s = lc.steps_s
    phase.order_nos, phase.dup_paid = lc.order_nos, lc.dup_paid
    return phase, faults


# --- checks ---------------------------------------------------------------------------------------

Check = tuple[bool, str]


def expected_notices(so_ids: Sequence[str], second_payment: bool) -> Counter[tuple[str, str, str]]:
    """What one finished lifecycle owes: (kind, recipient type, supplier order or "")."""
    want: Counter[tuple[str, str, str]] = Counter()
    for so in so_ids:
        want[("order_paid", "supplier", so)] += 1
        want[("order_paid", "customer", so)] += 1
        want[("shipped", "customer", so)] += 1
    if second_payment:
        want[("payment_refunded", "customer", "")] += 1
    return want


async def check_read_model(
    sessions: async_sessionmaker[AsyncSession],
    order_nos: Sequence[str],
    dup_paid: Sequence[str],
    customer_prefix: str,
) -> list[Check]:
    """The read model after the run: nothing lost, nothing twice, every invariant."""
    out: list[Check] = []
    nos = set(order_nos)
    second = set(dup_paid)
    async with sessions() as s:
        statuses: dict[str, str] = {
            no: str(st)
            for no, st in (
                await s.execute(select(Order.order_no, Order.status).where(Order.order_no.in_(nos)))
            ).all()
        }
        unfinished = {n: st for n, st in statuses.items() if st != OrderStatus.FINISHED.value}
        missing = nos - set(statuses)
        out.append(
            (
                not unfinished and not missing and len(nos) == len(order_nos),
                f"orders: {len(statuses) - len(unfinished)} of {len(order_nos)} submitted are "
                f"FINISHED (lost: {len(missing)}, "
                f"not finished: {dict(list(unfinished.items())[:5])})",
            )
        )
        ours = int(
            await s.scalar(
                select(func.count())
                .select_from(Order)
                .where(Order.customer_id.like(f"{customer_prefix}%"))
            )
            or 0
        )
        out.append(
            (
                ours == len(nos),
                f"orders in the read model: {ours} for {len(nos)} submits (no order placed twice)",
            )
        )

        rows = (
            await s.execute(
                select(
                    Notification.order_no,
                    Notification.kind,
                    Notification.recipient_type,
                    Notification.supplier_order_id,
                ).where(Notification.order_no.in_(nos))
            )
        ).all()
        got: dict[str, Counter[tuple[str, str, str]]] = {n: Counter() for n in nos}
        for r in rows:
            got[r.order_no][(r.kind, r.recipient_type, r.supplier_order_id or "")] += 1
        so_ids: dict[str, list[str]] = {n: [] for n in nos}
        for so_id, o in (
            await s.execute(
                select(SupplierOrder.id, SupplierOrder.order_no).where(
                    SupplierOrder.order_no.in_(nos)
                )
            )
        ).all():
            so_ids[o].append(so_id)
        dups = lost = 0
        examples: list[str] = []
        for n in nos:
            want = expected_notices(so_ids[n], n in second)
            extra, short = got[n] - want, want - got[n]
            dups += sum(extra.values())
            lost += sum(short.values())
            if (extra or short) and len(examples) < 3:
                examples.append(f"{n}: extra {dict(extra)}, missing {dict(short)}")
        out.append(
            (
                dups == 0 and lost == 0,
                f"notifications: {len(rows)}, {dups} duplicate or unexpected, {lost} missing"
                + (f" ({'; '.join(examples)})" if examples else ""),
            )
        )

        refunds = (await s.scalars(select(Refund).where(Refund.order_no.in_(nos)))).all()
        per_event = Counter(r.payment_event_id for r in refunds)
        want_events = {f"second-{n}" for n in second}
        unsettled = [r.id for r in refunds if r.status != "succeeded"]
        out.append(
            (
                set(per_event) == want_events
                and all(c == 1 for c in per_event.values())
                and not unsettled,
                f"refunds: {len(refunds)} for {len(second)} second payments "
                f"({sum(c - 1 for c in per_event.values())} duplicate, "
                f"{len(want_events - set(per_event))} missing, "
                f"{len(set(per_event) - want_events)} unexpected, {len(unsettled)} unsettled)",
            )
        )

        packages = (
            await s.execute(
                select(Package.status, func.count())
                .where(Package.supplier_order_id.in_([i for v in so_ids.values() for i in v]))
                .group_by(Package.status)
            )
        ).all()
        by_status = {str(st): int(c) for st, c in packages}
        n_sos = sum(len(v) for v in so_ids.values())
        out.append(
            (
                by_status == ({"delivered": n_sos} if n_sos else {}),
                f"packages: {by_status} for {n_sos} supplier orders (each one, scanned delivered)",
            )
        )
    try:
        await check_invariants(sessions)
        out.append((True, "read-model invariants: stock, coins, money, inbox, operation log"))
    except AssertionError as err:
        out.append((False, f"read-model invariants: {str(err)[:500]}"))
    return out


async def wait_refunds_settled(
    sessions: async_sessionmaker[AsyncSession], nos: Sequence[str]
) -> None:
    async def settled() -> bool:
        async with sessions() as s:
            pending = await s.scalar(
                select(func.count())
                .select_from(Refund)
                .where(Refund.order_no.in_(list(nos)), Refund.status != "succeeded")
            )
        return not pending

    await poll_until(settled, SETTLE_TIMEOUT_S, "refunds settled", tick=0.5)


async def check_workflows(client: Client, task_queue: str, lifecycles: int) -> Check:
    total = (await client.count_workflows(f'TaskQueue="{task_queue}"')).count
    done = (
        await client.count_workflows(f'TaskQueue="{task_queue}" AND ExecutionStatus="Completed"')
    ).count
    want = 3 * lifecycles  # the order and its two supplier orders
    return (
        total == done == want,
        f"workflows: {done} Completed of {total} on the task queue, {want} expected "
        "(order + 2 supplier orders per lifecycle, warm-ups included)",
    )


DB_CONFLICT = re.compile(r"deadlock detected|could not serialize access", re.IGNORECASE)


def pg_log_conflicts(log_path: Path | None) -> tuple[int, list[str]]:
    """Deadlocks and serialization failures the PostgreSQL server logged (with statements)."""
    if log_path is None:
        return -1, []
    lines = _read(log_path).splitlines()
    hits = [k for k, line in enumerate(lines) if DB_CONFLICT.search(line)]
    return len(hits), [" | ".join(lines[k : k + 4])[:300] for k in hits[:3]]


WORKFLOW_TASK_FAILURE = re.compile(r"Failing workflow task|Failed activation|nondetermin", re.I)


def worker_log_problems(workers: Sequence[Service]) -> list[str]:
    """ERROR lines and failed workflow tasks in the workers' logs, counted by message."""
    seen: Counter[str] = Counter()
    for w in workers:
        for line in w.log_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                rec = {"level": "?", "message": line}
            message = str(rec.get("message", ""))
            if rec.get("level") == "ERROR" or WORKFLOW_TASK_FAILURE.search(message):
                seen[message[:160]] += 1
    return [f"{n} x {m}" for m, n in seen.most_common(5)]


def check_clients(tally: Tally, apis: Sequence[Service]) -> list[Check]:
    five_hundreds = {k: v for k, v in tally.server_errors.items() if k.startswith("500")}
    api_hits = sum(len(DB_CONFLICT.findall(a.log_text())) for a in apis)
    return [
        (
            not five_hundreds,
            f"client-visible 5xx by code: {dict(tally.server_errors) or 'none'} "
            f"(500s: {sum(five_hundreds.values())}; 503/504 are retried with the same key)",
        ),
        (
            api_hits == 0,
            f"PostgreSQL deadlock/serialization errors in the APIs' logs: {api_hits}",
        ),
    ]


def check_faults(faults: Faults, tally: Tally) -> list[Check]:
    w, a = faults.worker, faults.api
    served_after = tally.served.get(f"{a.get('name')}#{a.get('generation')}", 0)
    return [
        (faults.error is None, f"fault injection: {faults.error or 'ran to the end'}"),
        (
            w.get("exit") == -signal.SIGKILL and bool(w.get("new_pid")),
            f"{w.get('name')} SIGKILLed after {w.get('at_submit')} submits (exit {w.get('exit')}), "
            f"pid {w.get('pid')} → {w.get('new_pid')} polling after {w.get('back_after_s')} s",
        ),
        (
            a.get("exit") == 0 and served_after > 0,
            f"{a.get('name')} SIGTERMed after {a.get('at_submit')} submits: drained and exited "
            f"{a.get('exit')} in {a.get('drained_in_s')} s, pid {a.get('pid')} → "
            f"{a.get('new_pid')} ready after {a.get('back_after_s')} s, answered {served_after} "
            "requests since",
        ),
    ]


# --- the run -------------------------------------------------------------------------------------


@dataclass
class Report:
    phases: list[Phase] = field(default_factory=list)
    faults: Faults | None = None
    checks: list[Check] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)
    pg_conflicts: int = 0
    pg_examples: list[str] = field(default_factory=list)
    isolation: str = ""
    exits: dict[str, int] = field(default_factory=dict)
    database_url: str = ""
    order_nos: list[str] = field(default_factory=list)
    dup_paid: list[str] = field(default_factory=list)
    customer_prefix: str = ""
    loadavg_start: tuple[float, float, float] = (0, 0, 0)
    elapsed_s: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # where the run's time went
    worker_problems: list[str] = field(default_factory=list)
    _lap: float = field(default_factory=time.monotonic)

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.timings[name] = round(now - self._lap, 1)
        self._lap = now

    @property
    def failed(self) -> list[str]:
        return [msg for ok, msg in self.checks if not ok]


def _pg_log_and_pids(data_dir: str) -> tuple[Path | None, Callable[[], list[int]]]:
    """The server log of a tests/support/postgres server (DIR/data → DIR/log) and a function
    listing the server's processes (postmaster and its children), when this machine has them."""
    data = Path(data_dir)
    log = data.parent / "log"
    try:
        postmaster = int((data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return (log if log.exists() else None), list

    def pids() -> list[int]:
        out = [postmaster]
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == postmaster:
                out.append(int(d.name))
        return out

    return (log if log.exists() else None), pids


async def run(args: argparse.Namespace) -> Report:
    report = Report(loadavg_start=os.getloadavg())
    t_start = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="bench-scaleout-"))
    print(f"work dir {tmp} (logs of every process)", flush=True)
    ok = False
    try:
        with contextlib.ExitStack() as pg_stack:
            if args.pg_url:
                url = await create_database(args.pg_url, f"scaleout_{uuid.uuid4().hex[:10]}")
            else:
                url = pg_stack.enter_context(start_postgres())
            report.database_url = url
            await upgrade_async(url)
            report.lap("database")
            async with DevServer(in_memory=args.in_memory, workdir=tmp) as server:
                report.lap("temporal")
                await _run_on(server, url, tmp, args, report)
        ok = not report.failed
    finally:
        if args.keep or not ok:  # a failed run keeps its logs for the post-mortem
            print(f"kept {tmp}", flush=True)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    report.elapsed_s = time.monotonic() - t_start
    return report


async def _run_on(
    server: DevServer, url: str, tmp: Path, args: argparse.Namespace, report: Report
) -> None:
    client = await Client.connect(server.address, data_converter=pydantic_data_converter)
    engine = make_engine(url)
    reader = create_async_engine(url, pool_size=2, max_overflow=0)
    shop = Shop(
        url,
        engine,
        make_session_factory(engine),
        reader,
        make_session_factory(reader),
        tag=f"s{uuid.uuid4().hex[:6]}",
    )
    await shop.seed()
    report.lap("seed")
    report.customer_prefix = f"{shop.tag}-c"
    async with engine.connect() as conn:
        report.isolation = str(await conn.scalar(text("SHOW default_transaction_isolation")))
        data_dir = str(await conn.scalar(text("SHOW data_directory")))
    pg_log, pg_pids = _pg_log_and_pids(data_dir)
    conflicts_before, _ = pg_log_conflicts(pg_log)

    task_queue = f"scaleout-{shop.tag}"
    workers = [
        Service(f"worker-{k}", "worker", service_env(server.address, url, task_queue), tmp)
        for k in (1, 2)
    ]
    apis: list[Service] = []
    for k in (1, 2):
        port = free_port()
        env = service_env(server.address, url, task_queue, port)
        apis.append(Service(f"api-{k}", "api", env, tmp, port=port))
    tally = report.tally
    balancer = Apis(apis, tally)
    try:
        async with ReadModelWatch(shop.reads) as watch:
            stack = Stack(server, client, shop, task_queue, workers, apis, tally, watch, pg_pids)
            base = itertools.count(0, 1_000_000)
            warm: list[str] = []
            if args.orders > 0:
                await start_ready([workers[0], apis[0]], client, task_queue)
                report.lap("start 1+1")
                balancer.active = 1
                warm += await warm_up(stack, balancer, args.warmup, args.concurrency, "warm1")
                print("phase 1+1 ...", flush=True)
                report.phases.append(
                    await clean_phase(
                        stack,
                        balancer,
                        "1+1",
                        args.orders,
                        args.concurrency,
                        args.dup_pay_every,
                        next(base),
                    )
                )
                report.lap("phase 1+1")
                await start_ready([workers[1], apis[1]], client, task_queue)
                report.lap("start 2+2")
                balancer.active = 2
                warm += await warm_up(stack, balancer, args.warmup, args.concurrency, "warm2")
                print("phase 2+2 ...", flush=True)
                report.phases.append(
                    await clean_phase(
                        stack,
                        balancer,
                        "2+2",
                        args.orders,
                        args.concurrency,
                        args.dup_pay_every,
                        next(base),
                    )
                )
                report.lap("phase 2+2")
            else:
                await start_ready([*workers, *apis], client, task_queue)
                report.lap("start 2+2")
                balancer.active = 2
            if args.fault_orders > 0:
                print("phase faults ...", flush=True)
                phase, report.faults = await fault_phase(
                    stack,
                    balancer,
                    args.fault_orders,
                    args.concurrency,
                    args.dup_pay_every,
                    next(base),
                )
                report.phases.append(phase)
                report.lap("phase faults")

            print("checking ...", flush=True)
            report.order_nos += warm
            for p in report.phases:
                report.order_nos += p.order_nos
                report.dup_paid += p.dup_paid
            errors = [e for p in report.phases for e in p.run.errors]
            report.checks.append(
                (
                    not errors,
                    f"lifecycles: {len(errors)} failed" + (f" ({errors[:3]})" if errors else ""),
                )
            )
            try:
                await wait_refunds_settled(shop.sessions, report.order_nos)
            except RuntimeError as err:
                report.checks.append((False, str(err)))  # and the refunds check says which
            report.checks.append(await check_workflows(client, task_queue, len(report.order_nos)))
            report.checks += await check_read_model(
                shop.sessions, report.order_nos, report.dup_paid, report.customer_prefix
            )
            report.lap("checks")
    finally:
        for svc in [*workers, *apis]:
            if svc.proc is not None:
                try:
                    report.exits[svc.name] = await svc.stop(signal.SIGTERM, timeout=60)
                except RuntimeError:
                    report.exits[svc.name] = -999
        await balancer.aclose()
        await reader.dispose()
        await engine.dispose()
        report.worker_problems = worker_log_problems(workers)
        report.lap("stop")

    conflicts_after, report.pg_examples = pg_log_conflicts(pg_log)
    report.pg_conflicts = conflicts_after - conflicts_before if pg_log is not None else -1
    report.checks += check_clients(tally, apis)
    if report.faults is not None:
        report.checks += check_faults(report.faults, tally)
    report.checks.append(
        (
            all(code == 0 for code in report.exits.values()),
            f"every process exits 0 on SIGTERM at the end: {report.exits}",
        )
    )


# --- report ---------------------------------------------------------------------------------------


def scale_verdict(phases: Sequence[Phase]) -> tuple[float | None, str]:
    by = {p.name: p for p in phases}
    one, two = by.get("1+1"), by.get("2+2")
    if one is None or two is None or one.run.rate <= 0:
        return None, "2+2 against 1+1: not measured (--orders 0)"
    ratio = two.run.rate / one.run.rate
    if ratio >= SCALES_ABOVE:
        return ratio, f"2+2 against 1+1: x{ratio:.2f} — the second worker and API add throughput"
    return ratio, (
        f"2+2 against 1+1: x{ratio:.2f} — no real gain, as expected on this machine: "
        f"{os.cpu_count()} cores shared by the Temporal dev server (one SQLite store: the bound, "
        "see bench/README.md), PostgreSQL, the workers and the APIs; more processes cannot add "
        "cores. The run proves correctness with 2+2 and under faults, not scaling."
    )


def print_report(report: Report, args: argparse.Namespace) -> dict[str, Any]:
    cpus = os.cpu_count()
    la = report.loadavg_start
    print()
    print(
        f"Scale-out: Temporal dev server ({'in-memory' if args.in_memory else 'SQLite file'}), "
        f"PostgreSQL read model ({report.isolation}), python -m worker / python -m starter.api; "
        f"code {code_version()}"
    )
    print(
        f"machine: {cpus} CPUs, load average at start {la[0]:.2f} {la[1]:.2f} {la[2]:.2f} "
        f"(1/5/15 min); concurrency {args.concurrency}"
    )
    if la[0] > (cpus or 1) * 0.5:
        print(
            "  WARNING: the machine was busy before the run started; these figures are not "
            "representative of a quiet machine"
        )
    print()
    print(
        f"{'phase':8s}{'procs':>8s}{'done':>7s}{'err':>5s}{'time s':>9s}{'per s':>8s}"
        f"{'p50 ms':>9s}{'p99 ms':>9s}  load 1m start→end   "
        "cores: server workers apis pg driver other"
    )
    for p in report.phases:
        s = p.summary()
        c = s["cores"]
        print(
            f"{p.name:8s}{f'{p.workers}w+{p.apis}a':>8s}{s['lifecycles']:7d}{s['errors']:5d}"
            f"{s['elapsed_s']:9.1f}{s['lifecycles_per_s']:8.2f}{s['p50_ms']:9d}{s['p99_ms']:9d}"
            f"  {p.loadavg[0][0]:5.2f} → {p.loadavg[1][0]:5.2f}      "
            + " ".join(
                f"{c[k]:.2f}" if k in c else "   -"
                for k in ("server", "workers", "apis", "postgres", "driver", "other")
            )
        )
    if report.phases:
        print("steps p50/p99 ms:")
        print(f"  {'':8s}" + "".join(f"{s[:14]:>17s}" for s in STEPS))
        for p in report.phases:
            steps = p.summary()["steps_p50_p99_ms"]
            print(
                f"  {p.name:8s}"
                + "".join(
                    f"{(f'{steps[s][0]}/{steps[s][1]}' if s in steps else '-'):>17s}" for s in STEPS
                )
            )
    ratio, verdict = scale_verdict(report.phases)
    print(verdict)
    if any(p.name == "faults" for p in report.phases):
        print(
            "  (faults: the rate includes lifecycles that waited for the killed worker's sticky "
            "tasks to time out; the replaced workers' and APIs' CPU is in 'other')"
        )
    t = report.tally
    print()
    print(
        f"clients: answers {dict(sorted(t.status.items()))}; retries {t.retries}; "
        f"refused/broken connections {dict(t.transport_errors) or 'none'}"
    )
    pg = (
        "unknown (server log not readable)"
        if report.pg_conflicts < 0
        else f"{report.pg_conflicts}"
        + (f" e.g. {report.pg_examples}" if report.pg_examples else "")
    )
    print(
        f"PostgreSQL deadlocks/serialization failures logged by the server: {pg} "
        "(the activities retry them; checked below that no client saw one)"
    )
    if report.worker_problems:
        print(f"worker logs, errors and failed workflow tasks: {report.worker_problems}")
    print(f"where the run's time went (s): {report.timings}")
    print()
    print("checks:")
    for ok, msg in report.checks:
        print(f"  {'ok  ' if ok else 'FAIL'} {msg}")
    print(
        f"{'all checks passed' if not report.failed else f'{len(report.failed)} checks FAILED'}"
        f" in {report.elapsed_s:.0f}s"
    )
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "code": code_version(),
        "cpus": cpus,
        "loadavg_start": [round(x, 2) for x in la],
        "server_storage": "memory" if args.in_memory else "sqlite",
        "concurrency": args.concurrency,
        "phases": {p.name: p.summary() for p in report.phases},
        "scale_ratio": None if ratio is None else round(ratio, 3),
        "faults": None
        if report.faults is None
        else {
            "worker": report.faults.worker,
            "api": report.faults.api,
            "error": report.faults.error,
        },
        "client": {
            "status": dict(t.status),
            "server_errors": dict(t.server_errors),
            "transport_errors": dict(t.transport_errors),
            "retries": t.retries,
        },
        "postgres": {
            "isolation": report.isolation,
            "deadlocks_or_serialization_failures": report.pg_conflicts,
        },
        "lifecycles": len(report.order_nos),
        "second_payments": len(report.dup_paid),
        "exits": report.exits,
        "checks": {
            "passed": [m for ok, m in report.checks if ok],
            "failed": report.failed,
        },
        "elapsed_s": round(report.elapsed_s, 1),
        "timings_s": report.timings,
        "worker_problems": report.worker_problems,
    }
    print(json.dumps(result))
    return result


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.scaleout", description=__doc__.split("\n")[0])
    p.add_argument(
        "--orders", type=int, default=100, help="lifecycles in each of 1+1 and 2+2 (100; 0: skip)"
    )
    p.add_argument(
        "--fault-orders",
        type=int,
        default=100,
        help="lifecycles of the fault phase, at least (100; 0: skip)",
    )
    p.add_argument("--concurrency", type=int, default=32, help="lifecycles in flight (32)")
    p.add_argument("--warmup", type=int, default=4, help="lifecycles before each clean phase (4)")
    p.add_argument(
        "--dup-pay-every",
        type=int,
        default=5,
        metavar="K",
        help="every K-th order also gets a second payment, to be refunded once (5; 0: none)",
    )
    p.add_argument(
        "--pg-url",
        help="an existing PostgreSQL server (any database URL on it): a fresh database is "
        "created there (default: a throwaway server, as the tests start)",
    )
    p.add_argument("--in-memory", action="store_true", help="Temporal without --db-filename")
    p.add_argument(
        "--keep", action="store_true", help="keep the work dir (logs, server db); failed runs do"
    )
    return p.parse_args(argv)


async def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report = await run(args)
    print_report(report, args)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
