"""The whole stack in-process on free ports, shared by the API tests of the session.

Real parts only: the Temporal dev server (`dev_env`), a Worker from
`worker.build_worker` on its own task queue over a fresh SQLite read model, and
the API served by uvicorn on a free port. Two API servers share the worker and
the database: `api` with the default policy windows, `fast_api` with a
2-second payment timeout and 1-second late-payment grace, auto-confirm,
auto-review and after-sales windows for the timing tests.
"""

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from db.session import create_all, make_engine, make_session_factory
from settings import Settings
from starter.api.app import create_app
from tests.api.helpers import Api
from worker import build_worker


class _Server(uvicorn.Server):
    """uvicorn inside the test's event loop, leaving pytest's signal handlers alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Running:
    url: str
    server: _Server
    task: "asyncio.Task[None]"


async def serve(app: FastAPI, healthy: bool = True) -> Running:
    """Serve `app` on a free port; return once /healthz answers (200 unless `healthy=False`)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = _Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    url = f"http://127.0.0.1:{port}"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:
        while True:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn exited during startup")
            try:
                status = (await http.get("/healthz")).status_code
                if status == 200 or not healthy:
                    break
            except httpx.TransportError:
                pass
            if loop.time() > deadline:
                raise RuntimeError(f"API at {url} did not become healthy")
            await asyncio.sleep(0.05)
    return Running(url, server, task)


async def stop(running: Running) -> None:
    running.server.should_exit = True
    await asyncio.wait_for(running.task, 10)


def stack_settings(
    db_url: str, env: WorkflowEnvironment, task_queue: str, **extra: Any
) -> Settings:
    return Settings.model_validate(
        {
            "DATABASE_URL": db_url,
            "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
            "TEMPORAL_NAMESPACE": env.client.namespace,
            "ORDERS_TASK_QUEUE": task_queue,
            "ORDERS_JWT_SECRET": "api-tests-jwt-secret-0123456789abcdef",
            "ORDERS_WEBHOOK_SECRET": "api-tests-webhook-secret",
            "ORDERS_WEBHOOK_ALLOW_PRIVATE": "1",  # supplier webhook receivers on 127.0.0.1
            **extra,
        }
    )


@dataclass
class Stack:
    api: Api
    fast_api: Api
    env: WorkflowEnvironment
    sessions: async_sessionmaker[AsyncSession]
    task_queue: str


@contextlib.asynccontextmanager
async def api_servers(
    dev_env: WorkflowEnvironment,
    db_path: Path,
    prefix: str,
    policies: Sequence[dict[str, str]],
    seed: Callable[[async_sessionmaker[AsyncSession]], Awaitable[object]] | None = None,
) -> AsyncIterator[tuple[async_sessionmaker[AsyncSession], str, list[Api]]]:
    """A fresh SQLite read model, one worker on its own task queue, and one API server per
    entry of `policies` (extra settings), all sharing the worker and the database."""
    db_url = f"sqlite+aiosqlite:///{db_path}"
    engine = make_engine(db_url)
    await create_all(engine)
    sessions = make_session_factory(engine)
    if seed is not None:
        await seed(sessions)
    task_queue = f"{prefix}-{uuid.uuid4().hex[:8]}"
    settings = [stack_settings(db_url, dev_env, task_queue, **extra) for extra in policies]
    async with build_worker(dev_env.client, task_queue, sessions):
        servers = [await serve(create_app(s)) for s in settings]
        try:
            async with contextlib.AsyncExitStack() as clients:
                apis = [
                    Api(
                        await clients.enter_async_context(
                            httpx.AsyncClient(base_url=running.url, timeout=60)
                        ),
                        s,
                        sessions,
                    )
                    for running, s in zip(servers, settings, strict=True)
                ]
                yield sessions, task_queue, apis
        finally:
            for running in servers:
                await stop(running)
    await engine.dispose()


@pytest.fixture(scope="session")
async def stack(
    dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    fast = {
        "ORDERS_PAYMENT_TIMEOUT": "2",
        "ORDERS_LATE_PAYMENT_GRACE": "1",
        "ORDERS_AUTO_CONFIRM_AFTER": "1",
        "ORDERS_AUTO_REVIEW_AFTER": "1",
        "ORDERS_AFTER_SALES_WINDOW": "PT1S",
    }
    db_path = tmp_path_factory.mktemp("api") / "orders.db"
    async with api_servers(dev_env, db_path, "api", [{}, fast]) as (sessions, queue, apis):
        yield Stack(api=apis[0], fast_api=apis[1], env=dev_env, sessions=sessions, task_queue=queue)


@pytest.fixture
def api(stack: Stack) -> Api:
    return stack.api


@pytest.fixture
def fast_api(stack: Stack) -> Api:
    return stack.fast_api


async def unreachable(_: Settings) -> Client:
    raise ConnectionRefusedError("connection refused (simulated Temporal outage)")


@pytest.fixture(scope="module")
async def no_temporal(stack: Stack) -> AsyncIterator[Api]:
    """The real database, a Temporal that never answers."""
    settings = stack.api.settings
    running = await serve(create_app(settings, client_factory=unreachable), healthy=False)
    try:
        async with httpx.AsyncClient(base_url=running.url, timeout=30) as http:
            yield Api(http, settings, stack.sessions)
    finally:
        await stop(running)
