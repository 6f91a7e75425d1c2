"""WebhookDeliveryWorkflow on the time-skipping server (SQLite and PostgreSQL): a supplier
order's events go out in order, each retried with backoff until ORDERS_WEBHOOK_RETRY_FOR,
then given up; a repeated signal queues an event once."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.webhooks import WebhookActivities
from db.session import write_session
from db.tables import SupplierWebhook, WebhookAttempt, WebhookEvent
from domain.webhooks import EVENT_ID_HEADER, WebhookPolicy, delivery_workflow_id, verify
from starter.webhooks import DELIVERED, FAILED, PENDING, signal_delivery
from tests.api.helpers import eventually
from worker import workflow_runner
from workflows.webhook_delivery import WebhookDeliveryWorkflow

SECRET = "whsec-wf-test-0123456789"
URL = "https://erp.example.com/hook"
POLICY = WebhookPolicy(
    backoff_s=10, backoff_max_s=3600, retry_for_s=3 * 86400, timeout_s=10, allow_private=True
)


@dataclass
class Endpoint:
    """The supplier's system: answers each POST as `decide` says, records what came."""

    decide: Callable[[str, int], int] = lambda _eid, _n: 200
    calls: list[str] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        eid = request.headers[EVENT_ID_HEADER]
        assert verify(request.headers["X-Orders-Signature"], request.content, SECRET)
        self.calls.append(eid)
        return httpx.Response(self.decide(eid, self.calls.count(eid)))


@dataclass
class Rig:
    env: WorkflowEnvironment
    sessions: async_sessionmaker[AsyncSession]
    task_queue: str
    endpoint: Endpoint
    so_id: str = field(default_factory=lambda: f"so-{uuid.uuid4().hex[:8]}")
    last: WorkflowHandle[Any, Any] = field(init=False)

    async def events(self, n: int, supplier: str = "s1") -> list[dict[str, object]]:
        now = datetime.now(UTC)
        rows: list[dict[str, object]] = []
        async with write_session(self.sessions) as s:
            if await s.get(SupplierWebhook, supplier) is None:
                s.add(
                    SupplierWebhook(
                        supplier_id=supplier, url=URL, secret=SECRET, created_at=now, updated_at=now
                    )
                )
            for i in range(n):
                eid = f"evt_{uuid.uuid4().hex}"
                row: dict[str, object] = {
                    "id": eid,
                    "supplier_id": supplier,
                    "supplier_order_id": self.so_id,
                    "order_no": "20261205000001",
                    "log_id": 100 + i,
                }
                s.add(
                    WebhookEvent(
                        **row,
                        type="supplier_order.paid",
                        body=f'{{"id":"{eid}"}}',
                        state=PENDING,
                        attempts=0,
                        next_attempt_at=now,
                        retry_until=now,
                        created_at=now,
                    )
                )
                rows.append(row)
        return rows

    async def signal(self, row: dict[str, object], key: str | None = None) -> None:
        # A handle from start_workflow: waiting on its result skips time.
        self.last = await signal_delivery(self.env.client, self.task_queue, POLICY, row, key)

    def handle(self) -> WorkflowHandle[Any, Any]:
        assert self.last.id == delivery_workflow_id(self.so_id)
        return self.last

    async def state(self, eid: object) -> tuple[str, int]:
        async with self.sessions() as s:
            event = await s.get(WebhookEvent, eid)
            assert event is not None
            attempts = (
                await s.scalars(select(WebhookAttempt).where(WebhookAttempt.event_id == eid))
            ).all()
            assert len(attempts) == event.attempts
            return event.state, event.attempts


@pytest.fixture
async def rig(
    ts_env: WorkflowEnvironment, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Rig]:
    endpoint = Endpoint()
    acts = WebhookActivities(sessions, transport=httpx.MockTransport(endpoint.handle))
    task_queue = f"webhooks-{uuid.uuid4().hex[:8]}"
    async with Worker(
        ts_env.client,
        task_queue=task_queue,
        workflows=[WebhookDeliveryWorkflow],
        activities=[acts.deliver_webhook, acts.give_up_webhook],
        workflow_runner=workflow_runner(),
    ):
        yield Rig(ts_env, sessions, task_queue, endpoint)


async def test_the_next_event_waits_while_the_first_is_retried(rig: Rig) -> None:
    rig.endpoint.decide = lambda eid, n: 500 if eid == first["id"] and n < 4 else 200
    first, second = await rig.events(2)
    await rig.signal(first)
    await rig.signal(second)
    await rig.handle().result()  # ends once idle (time skipped)
    assert rig.endpoint.calls == [first["id"]] * 4 + [second["id"]]
    assert await rig.state(first["id"]) == (DELIVERED, 4)
    assert await rig.state(second["id"]) == (DELIVERED, 1)


async def test_an_event_is_given_up_after_the_retry_window_and_the_next_goes(rig: Rig) -> None:
    first, second = await rig.events(2)
    rig.endpoint.decide = lambda eid, _n: 503 if eid == first["id"] else 200
    started = await rig.env.get_current_time()
    await rig.signal(first)
    await rig.signal(second)
    await rig.handle().result()
    state, attempts = await rig.state(first["id"])
    assert state == FAILED
    # 10 s, 20 s ... 1 h apart for 3 days: ~ 10 doublings, then hourly.
    assert 60 < attempts < 90
    assert await rig.state(second["id"]) == (DELIVERED, 1)
    assert rig.endpoint.calls[-1] == second["id"]
    # Temporal gives up when the next retry would start after the window (3 days).
    took = await rig.env.get_current_time() - started
    assert took >= timedelta(days=3) - timedelta(hours=1)


async def test_a_repeated_signal_delivers_once_and_a_redelivery_again(rig: Rig) -> None:
    (event,) = await rig.events(1)
    for _ in range(3):
        await rig.signal(event)
    await rig.handle().result()
    assert rig.endpoint.calls == [event["id"]]
    # The workflow has ended: the dispatcher signalling again (a re-read) starts one that
    # finds the event delivered and sends nothing.
    await rig.signal(event)
    await rig.handle().result()
    assert rig.endpoint.calls == [event["id"]]
    # A redelivery (fresh key, event back to pending) sends it again.
    async with write_session(rig.sessions) as s:
        row = await s.get(WebhookEvent, event["id"])
        assert row is not None
        row.state = PENDING
    await rig.signal(event, key=f"{event['id']}/again")
    await rig.handle().result()
    assert rig.endpoint.calls == [event["id"]] * 2
    assert await rig.state(event["id"]) == (DELIVERED, 2)


async def test_a_hanging_endpoint_holds_up_only_its_own_supplier_order(
    ts_env: WorkflowEnvironment, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Each supplier order has its own workflow, each attempt its own activity slot and
    timeout: while one endpoint hangs, another supplier order's event goes out."""
    release = asyncio.Event()
    calls: list[str] = []

    async def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers[EVENT_ID_HEADER])
        if request.url.path == "/slow":
            await release.wait()
        return httpx.Response(200)

    acts = WebhookActivities(sessions, transport=httpx.MockTransport(handle))
    task_queue = f"webhooks-{uuid.uuid4().hex[:8]}"
    async with Worker(
        ts_env.client,
        task_queue=task_queue,
        workflows=[WebhookDeliveryWorkflow],
        activities=[acts.deliver_webhook, acts.give_up_webhook],
        workflow_runner=workflow_runner(),
    ):
        slow = Rig(ts_env, sessions, task_queue, Endpoint())
        fast = Rig(ts_env, sessions, task_queue, Endpoint())
        (stuck,) = await slow.events(1)
        async with write_session(sessions) as s:
            hook = await s.get(SupplierWebhook, "s1")
            assert hook is not None
            hook.url = "https://erp.example.com/slow"
            now = datetime.now(UTC)
            s.add(
                SupplierWebhook(
                    supplier_id="s2", url=URL, secret=SECRET, created_at=now, updated_at=now
                )
            )
        (other,) = await fast.events(1, supplier="s2")
        await slow.signal(stuck)
        await eventually(lambda: _called(calls, stuck["id"]), what="the slow endpoint called")
        await fast.signal(other)
        # Real time, not skipped: the other supplier order is delivered while s1 hangs.
        await eventually(lambda: _in_state(sessions, other["id"], DELIVERED), what="s2 delivered")
        # No wait needed: the slow endpoint has not answered (`release` is not set), and the
        # event's state changes only once its attempt ends (deliver_webhook writes after the
        # POST returns; give_up_webhook after the activity fails). The attempt is in flight:
        # started, not failed and waiting for a retry.
        assert await _in_state(sessions, stuck["id"], PENDING)
        [attempt] = (await slow.handle().describe()).raw_description.pending_activities
        assert attempt.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
        assert attempt.attempt == 1 and calls.count(str(stuck["id"])) == 1
        release.set()
        await eventually(lambda: _in_state(sessions, stuck["id"], DELIVERED), what="s1 delivered")
        for rig in (slow, fast):
            await rig.handle().terminate("test over")  # an idle workflow would hold time up


async def _in_state(sessions: async_sessionmaker[AsyncSession], eid: object, state: str) -> bool:
    async with sessions() as s:
        event = await s.get(WebhookEvent, eid)
        return event is not None and event.state == state


async def _called(calls: list[str], eid: object) -> bool:
    return eid in calls
