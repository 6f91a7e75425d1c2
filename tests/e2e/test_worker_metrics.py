"""The worker's Temporal SDK metrics, and the Grafana dashboard's queries against what exists.

1. `python -m worker` with ORDERS_WORKER_METRICS_PORT serves Prometheus text with the SDK's
   `temporal_` metrics once it has run an order's workflows.
2. Every metric name deploy/grafana/orders.json queries is one the worker (the same
   `metrics_runtime`, in process, driven so that cache hits and misses and activity
   failures happen) or the API (`/metrics`) really exposes: a renamed metric fails here
   instead of leaving an empty panel.
"""

import asyncio
import json
import os
import re
import signal
import socket
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
from prometheus_client import generate_latest
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from db.session import create_all, make_engine, make_session_factory
from settings import Settings
from starter.api.metrics import Snapshot
from starter.api.observability import Observability
from starter.telemetry import metrics_runtime
from tests.support.catalog import seed
from tests.support.shop import Shop, eventually

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "orders.json"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sample_names(text: str) -> set[str]:
    """Series names exactly as exposed (what PromQL sees; the client's parser would add
    `_total` to counters the SDK exposes without it)."""
    return {
        re.split(r"[{ ]", line, maxsplit=1)[0]
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


async def _scrape(url: str) -> str | None:
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            r = await http.get(url)
    except httpx.TransportError:
        return None
    return r.text if r.status_code == 200 else None


async def test_worker_process_serves_temporal_metrics(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/orders.db")
    await create_all(engine)
    sessions = make_session_factory(engine)
    await seed(sessions)
    task_queue = f"metrics-{uuid.uuid4().hex[:8]}"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORDERS_", "OTEL_"))}
    env |= {
        "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": dev_env.client.namespace,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/orders.db",
        "ORDERS_TASK_QUEUE": task_queue,
        "ORDERS_WORKER_METRICS_PORT": str(port),
    }
    log = (tmp_path / "worker.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "worker", cwd=ROOT, env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}/metrics"
    shop = Shop(dev_env, sessions, task_queue)
    try:

        async def up() -> str | None:
            assert proc.returncode is None, (tmp_path / "worker.log").read_text()
            return await _scrape(url)

        await eventually(up, 60, "the worker's metrics endpoint")
        try:
            async with asyncio.timeout(90):  # a worker that cannot write must not hang the test
                await shop.paid_order([("tea-green", 1)])
        except TimeoutError:
            tail = (tmp_path / "worker.log").read_text()[-3000:]
            raise AssertionError(f"the worker did not run the order:\n{tail}") from None

        wanted = {
            "temporal_workflow_task_schedule_to_start_latency_bucket",
            "temporal_workflow_task_execution_latency_bucket",
            "temporal_sticky_cache_hit",
            "temporal_local_activity_total",
            "temporal_num_pollers",
        }

        async def served() -> set[str] | None:
            text = await _scrape(url)
            names = sample_names(text) if text else set()
            return names if wanted <= names else None

        names = await eventually(served, 30, f"{sorted(wanted)} on {url}")
        assert all(n.startswith("temporal_") for n in names), sorted(names)
    finally:
        await shop.close()
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            await proc.wait()
        log.close()
        await engine.dispose()


# --- the dashboard ----------------------------------------------------------------------------


@activity.defn
async def fails_once(step: str) -> str:
    if activity.info().attempt == 1:
        raise RuntimeError(f"{step}: first attempt fails")
    return step


@workflow.defn(sandboxed=False)
class FlakyWorkflow:
    @workflow.run
    async def run(self) -> str:
        retry = RetryPolicy(initial_interval=timedelta(milliseconds=50))
        timeout = timedelta(seconds=10)
        await workflow.execute_activity(
            fails_once, "remote", start_to_close_timeout=timeout, retry_policy=retry
        )
        await workflow.execute_local_activity(
            fails_once, "local", start_to_close_timeout=timeout, retry_policy=retry
        )
        await workflow.sleep(timedelta(milliseconds=100))
        return "done"


def dashboard_metrics() -> set[str]:
    """Metric names in the dashboard's PromQL (label names, functions and ranges dropped)."""
    exprs = [
        t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p.get("targets", [])
    ]
    assert exprs
    names: set[str] = set()
    for expr in exprs:
        bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\bby \([^)]*\)|\"[^\"]*\"", " ", expr)
        names |= {
            n
            for n in re.findall(r"[a-z_][a-z0-9_]*", bare)
            if "_" in n and n not in {"histogram_quantile"}
        }
    return names


async def test_dashboard_queries_only_metrics_that_exist(dev_env: WorkflowEnvironment) -> None:
    port = _free_port()
    settings = Settings.model_validate({"ORDERS_WORKER_METRICS_PORT": str(port)})
    runtime = metrics_runtime(settings)
    assert runtime is not None
    client = await Client.connect(
        dev_env.client.service_client.config.target_host,
        namespace=dev_env.client.namespace,
        runtime=runtime,
    )
    cached, evicting = f"dash-{uuid.uuid4().hex[:6]}", f"dash-{uuid.uuid4().hex[:6]}"
    runner = UnsandboxedWorkflowRunner()

    def worker(queue: str, cache: int = 1000) -> Worker:
        return Worker(
            client,
            task_queue=queue,
            workflows=[FlakyWorkflow],
            activities=[fails_once],
            workflow_runner=runner,
            max_cached_workflows=cache,
        )

    # The second has a one-workflow cache and three workflows in flight: sticky-cache misses.
    async with worker(cached), worker(evicting, cache=1):
        runs = [(cached, 1), (evicting, 3)]
        await asyncio.gather(
            *(
                client.execute_workflow(
                    FlakyWorkflow.run, id=f"flaky-{uuid.uuid4().hex}", task_queue=queue
                )
                for queue, n in runs
                for _ in range(n)
            )
        )
        text = await _scrape(f"http://127.0.0.1:{port}/metrics")
    assert text is not None
    worker_names = sample_names(text)

    api = Observability(settings)
    api.requests.labels("GET", "/orders/{no}", "200").inc()
    api.duration.labels("GET", "/orders/{no}").observe(0.01)
    # What a scrape shows (one series per labelled family is enough for the names).
    api.business._snapshot = Snapshot(
        closed={"PAYMENT_TIMEOUT": 1},
        by_status={"PAID": 1},
        receipts={"auto": 1},
        reviews={"auto": 1},
        refunds={"supplier_cancelled": 1},
        after_sales={"REQUESTED": 1},
    )
    api_names = sample_names(generate_latest(api.registry).decode())

    queried = dashboard_metrics()
    temporal = {n for n in queried if n.startswith("temporal_")}
    assert {
        "temporal_workflow_task_schedule_to_start_latency_bucket",
        "temporal_sticky_cache_hit",
        "temporal_sticky_cache_miss",
        "temporal_activity_execution_failed",
    } <= temporal
    assert temporal - worker_names == set(), sorted(worker_names)
    assert queried - temporal - api_names == set(), sorted(api_names)
