"""What `make dev` promises the operator: with payloads encrypted, the Temporal UI still shows
them readable. The Temporal server and UI run exactly as `orders dev` starts them
(`Plan.temporal_argv`: `--ui-codec-endpoint` at the API), the worker and the API with the dev
key and dev mode as `child_env` gives them; Chromium opens the order's workflow in the UI,
whose page calls the API's /codec/decode cross-origin (CORS preflight included) and shows the
order's lines, which exist in Temporal only encrypted."""

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import uvicorn
from playwright.async_api import Browser

from db.session import create_all, make_engine, make_session_factory
from settings import Settings
from starter.api.app import create_app
from starter.dev import child_env, make_plan
from starter.security import Role
from tests.api.helpers import Api, Who
from tests.web.conftest import DESKTOP
from worker import build_worker, connect


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


async def _until_ok(url: str, what: str, proc: asyncio.subprocess.Process, log: Path) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    async with httpx.AsyncClient(timeout=2) as http:
        while True:
            if proc.returncode is not None:
                raise AssertionError(f"{what} exited: {log.read_text()[-2000:]}")  # noqa: ASYNC240
            with contextlib.suppress(httpx.TransportError):
                if (await http.get(url)).status_code == 200:
                    return
            assert loop.time() < deadline, f"{what} not up within 60 s"
            await asyncio.sleep(0.1)


async def test_the_temporal_ui_shows_encrypted_payloads_decoded(
    browser: Browser, tmp_path: Path
) -> None:
    temporal_port, ui_port, api_port = _free_ports(3)
    raw = {
        "TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
        "TEMPORAL_UI_PORT": str(ui_port),
        "ORDERS_API_PORT": str(api_port),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/orders.db",
        "ORDERS_TASK_QUEUE": f"ui-{uuid.uuid4().hex[:8]}",
        "ORDERS_JWT_SECRET": "ui-codec-test-jwt-secret-0123456789abcdef",
    }
    plan = make_plan(Settings.model_validate(raw), var=tmp_path / "var")
    # Dev mode, the dev key and the UI's address, as `make dev` hands them to the API.
    env = child_env(plan, {})
    wanted = ("ORDERS_DEV_LOGIN", "ORDERS_PAYLOAD_KEY", "ORDERS_TEMPORAL_UI_URL")
    settings = Settings.model_validate(raw | {k: env[k] for k in wanted})
    assert settings.dev_login and settings.payload_keys()

    log = tmp_path / "temporal.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            *plan.temporal_argv(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    engine = make_engine(settings.database_url)
    try:
        await _until_ok(f"{plan.ui_url}/api/v1/settings", "Temporal UI", proc, log)
        await create_all(engine)
        sessions = make_session_factory(engine)
        client = await connect(settings)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", api_port))
        server = _Server(uvicorn.Config(create_app(settings), log_level="warning"))
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            async with (
                build_worker(client, settings.task_queue, sessions),
                httpx.AsyncClient(base_url=plan.api_url, timeout=60) as http,
            ):
                await _until_ok(f"{plan.api_url}/livez", "API", proc, log)
                api = Api(http, settings, sessions)
                customer = Who(f"cust-{uuid.uuid4().hex[:6]}", Role.CUSTOMER)
                await api.ok(
                    "PUT",
                    f"/admin/customers/{customer.sub}",
                    api.admin,
                    {
                        "coins": "0.00",
                        "default_address": {
                            "name": "Ui Tester",
                            "phone": "13900001111",
                            "region": "Shanghai",
                            "address": "1 Codec Road",
                        },
                    },
                    expect=201,
                )
                supplier = api.supplier()
                sku = await api.product(supplier, price="10.00")
                placed = await api.place(customer, [(sku, 1)])
                workflow_id = f"order-{placed['order_no']}"
                history = await client.get_workflow_handle(workflow_id).fetch_history()
                assert sku.encode() not in history.to_json().encode()  # encrypted at rest

                context = await browser.new_context(viewport=DESKTOP)
                context.set_default_timeout(30_000)
                page = await context.new_page()
                decode_calls: list[int] = []
                page.on(
                    "response",
                    lambda r: decode_calls.append(r.status) if "/codec/decode" in r.url else None,
                )
                await page.goto(f"{plan.ui_url}/namespaces/default/workflows/{workflow_id}")
                # The workflow's input, decoded by the API for the UI: the order's SKU.
                await page.get_by_text(sku).first.wait_for()
                assert decode_calls and set(decode_calls) == {200}, decode_calls
                await context.close()
        finally:
            server.should_exit = True
            await asyncio.wait_for(serving, 15)
    finally:
        await engine.dispose()
        os.killpg(proc.pid, signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
