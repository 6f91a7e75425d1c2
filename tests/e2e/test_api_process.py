"""The API process as deployed (`python -m starter.api`): ready, then SIGTERM with a request in
flight — /readyz turns 503 while the listener still accepts (ORDERS_API_DRAIN_DELAY), then the
listener closes, the request in flight still completes 2xx, and the process exits 0; every
line it wrote is a JSON object, with the request's id and the ids in its path."""

import asyncio
import json
import os
import signal
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

from db.session import create_all, make_engine, make_session_factory
from starter.security import Role, mint_token
from tests.support.catalog import seed
from tests.support.shop import eventually
from worker import build_worker

ROOT = Path(__file__).resolve().parents[2]
JWT_SECRET = "api-process-test-jwt-secret-0123456789abcdef"
DRAIN_DELAY = 2.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_sigterm_drains_the_api_and_the_request_in_flight_completes(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'orders.db'}"
    engine = make_engine(db_url)
    await create_all(engine)
    sessions = make_session_factory(engine)
    await seed(sessions)
    task_queue = f"api-drain-{uuid.uuid4().hex[:6]}"
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ORDERS_", "TEMPORAL_")) and k != "DATABASE_URL"
    }
    env |= {
        "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "DATABASE_URL": db_url,
        "ORDERS_TASK_QUEUE": task_queue,
        "ORDERS_API_PORT": str(port),
        "ORDERS_JWT_SECRET": JWT_SECRET,
        "ORDERS_API_DRAIN_DELAY": str(DRAIN_DELAY),
        "ORDERS_API_SHUTDOWN_TIMEOUT": "60",
    }
    log_path = tmp_path / "api.log"
    with log_path.open("wb") as log_file:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "starter.api",
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=asyncio.subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    alice = {"Authorization": f"Bearer {mint_token(JWT_SECRET, 'alice', Role.CUSTOMER)}"}
    worker_task: asyncio.Task[None] | None = None
    stop_worker = asyncio.Event()

    def output() -> str:
        return log_path.read_text(errors="replace")

    try:
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            # 1. Ready: both dependencies answer, not draining.
            async def ready() -> dict[str, Any] | None:
                assert proc.returncode is None, f"API exited during start\n{output()}"
                try:
                    r = await http.get("/readyz")
                except httpx.TransportError:
                    return None
                return dict(r.json()) if r.status_code == 200 else None

            body = await eventually(ready, timeout=60, what="/readyz 200")
            assert body == {
                "status": "ready",
                "database": "ok",
                "temporal": "ok",
                "draining": False,
            }
            r = await http.get("/orders/4242", headers={**alice, "X-Request-ID": "look-4242"})
            assert r.status_code == 404 and r.headers["X-Request-ID"] == "look-4242"

            # 2. A slow request: a submit waits for a worker, and none polls this queue yet.
            submit = asyncio.create_task(
                http.post(
                    "/orders",
                    json={"lines": [{"sku": "gift-50", "qty": 1}]},
                    headers={**alice, "X-Request-ID": "drain-submit-1"},
                )
            )
            query = f'TaskQueue="{task_queue}"'

            async def in_flight() -> bool:
                return (await dev_env.client.count_workflows(query)).count > 0

            await eventually(in_flight, timeout=30, what="the submit's workflow started")
            assert not submit.done()

            # 3. SIGTERM: /readyz answers 503 "draining" while the listener still accepts...
            proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            async with httpx.AsyncClient(base_url=url, timeout=10) as probe:
                while True:
                    try:
                        r = await probe.get("/readyz")
                    except httpx.ConnectError:
                        # Only allowed once the drain delay is over (a very slow machine).
                        assert time.monotonic() - signalled >= DRAIN_DELAY, output()
                        break
                    if r.status_code == 503:
                        assert r.json()["status"] == "draining" and r.json()["draining"] is True
                        break
                    assert r.status_code == 200, r.text  # the signal is not handled yet
                    assert time.monotonic() - signalled < 30, output()
                    await asyncio.sleep(0.05)
                # ... then the listener closes, the submit still in flight.
                while True:
                    try:
                        await probe.get("/readyz", headers={"Connection": "close"})
                    except httpx.TransportError:
                        break
                    assert time.monotonic() - signalled < 30, f"listener still open\n{output()}"
                    await asyncio.sleep(0.05)
            assert not submit.done() and proc.returncode is None

            # 4. A worker comes: the request in flight completes.
            async def run_worker() -> None:
                async with build_worker(dev_env.client, task_queue, sessions):
                    await stop_worker.wait()

            worker_task = asyncio.create_task(run_worker())
            r = await asyncio.wait_for(submit, 60)
            assert r.status_code == 201, r.text
            assert r.headers["X-Request-ID"] == "drain-submit-1"
            order_no = r.json()["order_no"]

        # 5. ... and the process exits 0 once it has answered.
        code = await asyncio.wait_for(proc.wait(), 60)
        assert code == 0, output()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        stop_worker.set()
        if worker_task is not None:
            await worker_task
        await engine.dispose()

    text = output()
    lines = []
    for line in text.splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON log line: {line!r}\n{text}") from None
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line) and line["service"] == "api"
    access = [line for line in lines if line["logger"] == "starter.api.access"]
    look = next(line for line in access if line["request_id"] == "look-4242")
    assert (look["order_no"], look["route"], look["status"]) == ("4242", "/orders/{no}", 404)
    submitted = next(line for line in access if line["request_id"] == "drain-submit-1")
    assert (submitted["method"], submitted["path"], submitted["status"]) == ("POST", "/orders", 201)
    messages = [line["message"] for line in lines]
    drained = next(i for i, m in enumerate(messages) if m.startswith("draining: /readyz answers"))
    assert drained < lines.index(submitted) < messages.index("stopped"), text
    assert order_no
