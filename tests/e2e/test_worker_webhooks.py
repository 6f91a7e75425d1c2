"""`python -m worker` delivers supplier webhooks: the dispatcher really runs in the worker and
hands the events to WebhookDeliveryWorkflow, whose activity sends them.

The real dev server runs the order's workflows in a worker process of its own; a local
receiver answers the first attempt with 500 and the next with 200; the worker sends the
signed `supplier_order.paid` event twice with one id (a Temporal activity retry) and stops
cleanly on SIGTERM.
"""

import asyncio
import os
import signal
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI, Request, Response
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from db.session import create_all, make_engine, make_session_factory, write_session
from db.tables import SupplierWebhook, WebhookAttempt, WebhookCursor
from domain.webhooks import verify
from tests.api.conftest import serve, stop
from tests.support.catalog import seed
from tests.support.shop import Shop, eventually

ROOT = Path(__file__).resolve().parents[2]
SECRET = "e2e-webhook-secret-0123456789"


async def test_the_worker_process_delivers_and_retries(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path}/orders.db"
    engine = make_engine(db_url)
    await create_all(engine)
    sessions = make_session_factory(engine)
    await seed(sessions)

    got: list[tuple[dict[str, str], bytes]] = []
    receiver = FastAPI()

    @receiver.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @receiver.post("/hook")
    async def hook(request: Request) -> Response:
        got.append((dict(request.headers), await request.body()))
        return Response(status_code=500 if len(got) == 1 else 200)

    running = await serve(receiver)
    async with write_session(sessions) as s:
        now = datetime.now(UTC)
        s.add(
            SupplierWebhook(
                supplier_id="s1",
                url=f"{running.url}/hook",
                secret=SECRET,
                created_at=now,
                updated_at=now,
            )
        )

    task_queue = f"hooks-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORDERS_", "OTEL_"))}
    env |= {
        "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": dev_env.client.namespace,
        "DATABASE_URL": db_url,
        "ORDERS_TASK_QUEUE": task_queue,
        "ORDERS_WEBHOOK_ALLOW_PRIVATE": "1",
        "ORDERS_WEBHOOK_BACKOFF": "0.5",
        "ORDERS_WEBHOOK_POLL_INTERVAL": "0.1",
    }
    log_path = tmp_path / "worker.log"
    log = log_path.open("wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "worker", cwd=ROOT, env=env, stdout=log, stderr=log
    )
    shop = Shop(dev_env, sessions, task_queue)
    try:

        async def cursor() -> bool:
            assert proc.returncode is None, log_path.read_text()
            async with sessions() as s:
                return await s.scalar(select(WebhookCursor.last_id)) is not None

        await eventually(cursor, 60, "the worker's dispatcher to start")
        async with asyncio.timeout(90):
            _, placement = await shop.paid_order([("tea-green", 1), ("cup-white", 1)])

        async def two_attempts() -> bool:
            return len(got) >= 2

        await eventually(two_attempts, 30, f"two attempts; worker log:\n{log_path.read_text()}")
        (first_headers, first_body), (headers, body) = got[:2]
        assert first_headers["x-orders-event-id"] == headers["x-orders-event-id"]
        assert first_body == body
        assert verify(headers["x-orders-signature"], body, SECRET)
        assert placement.order_no.encode() in body and b'"supplier_order.paid"' in body
        assert b'"s2"' not in body  # s2 has no endpoint; s1's event tells nothing of s2's part

        async def recorded() -> list[tuple[int, int | None]] | None:
            async with sessions() as s:
                rows = (await s.scalars(select(WebhookAttempt).order_by(WebhookAttempt.id))).all()
            attempts = [(a.attempt, a.status_code) for a in rows]
            return attempts if len(attempts) >= 2 else None

        assert await eventually(recorded, 10, "attempts recorded") == [(1, 500), (2, 200)]
        so_id = next(so.id for so in placement.plan.supplier_orders if so.supplier_id == "s1")
        history = await dev_env.client.get_workflow_handle(f"webhook-{so_id}").fetch_history()
        retried = [
            e.activity_task_started_event_attributes.attempt
            for e in history.events
            if e.HasField("activity_task_started_event_attributes")
        ]
        assert retried == [2]  # one activity, delivered on its second attempt
    finally:
        await shop.close()
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            code = await proc.wait()
        log.close()
        await stop(running)
        await engine.dispose()
    assert code == 0, log_path.read_text()[-3000:]
    assert "webhook dispatcher" in log_path.read_text()
