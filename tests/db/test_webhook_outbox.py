"""The webhook outbox on SQLite and on a real PostgreSQL: dispatchers as separate processes
would run them (each with its own engine), receivers as an httpx mock transport.

Orders are written by the real activities (placement, payment, reminder), so the events
come from the order_log rows the workflows really write.
"""

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.fulfilment import FulfilmentActivities
from activities.orders import OrderActivities
from db.session import create_all, make_engine, make_session_factory, write_session
from db.tables import OrderLog, SupplierWebhook, WebhookAttempt, WebhookCursor, WebhookEvent
from domain.activity_params import PaymentParams, PlaceOrderParams, ReminderParams
from domain.messages import PaymentEvent
from domain.models import OrderLine, OrderPlan, SubmitOrder
from domain.policy import Policy
from domain.states import Actor
from domain.webhooks import verify
from settings import Settings
from starter.webhooks import CURSOR, DELIVERED, FAILED, PENDING, Dispatcher
from tests.api.helpers import eventually
from tests.support.catalog import seed
from tests.support.postgres import create_database

SECRET = "outbox-secret-0123456789"
T0 = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(params=["sqlite", "postgres"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/orders.db"
    else:
        url = await create_database(request.getfixturevalue("pg_url"), f"t_{uuid.uuid4().hex[:12]}")
    engine = make_engine(url)
    await create_all(engine)
    await seed(make_session_factory(engine))
    await engine.dispose()
    yield url


@contextlib.asynccontextmanager
async def engine_sessions(url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(url)
    try:
        yield make_session_factory(engine)
    finally:
        await engine.dispose()


def settings_for(url: str, **extra: str) -> Settings:
    return Settings.model_validate(
        {
            "DATABASE_URL": url,
            "ORDERS_WEBHOOK_ALLOW_PRIVATE": "1",
            "ORDERS_WEBHOOK_BACKOFF": "0.1",
            "ORDERS_WEBHOOK_BACKOFF_MAX": "0.3",
            "ORDERS_WEBHOOK_POLL_INTERVAL": "0.05",
            "ORDERS_WEBHOOK_TIMEOUT": "5",
            **extra,
        }
    )


class Endpoint:
    """Every supplier's system at once, through an httpx mock transport."""

    def __init__(self, decide: Callable[[dict[str, Any]], int] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.decide = decide

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        body = json.loads(request.content)
        return httpx.Response(self.decide(body) if self.decide else 200)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]


async def set_hooks(sessions: async_sessionmaker[AsyncSession], *suppliers: str) -> None:
    async with write_session(sessions) as s:
        for supplier_id in suppliers:
            s.add(
                SupplierWebhook(
                    supplier_id=supplier_id,
                    url=f"http://hooks.test/{supplier_id}",
                    secret=SECRET,
                    created_at=T0,
                    updated_at=T0,
                )
            )


async def paid_order(sessions: async_sessionmaker[AsyncSession], order_no: str) -> OrderPlan:
    """alice's order of s1's tea and s2's cup, paid: one payment_applied row."""
    env = ActivityEnvironment()
    orders = OrderActivities(sessions)
    plan: OrderPlan = await env.run(
        orders.place_order,
        PlaceOrderParams(
            key=f"order-{order_no}:place",
            order_no=order_no,
            at=T0,
            actor=Actor.CUSTOMER,
            actor_id="alice",
            request=SubmitOrder(
                customer_id="alice",
                lines=[OrderLine(sku="tea-green", qty=1), OrderLine(sku="cup-white", qty=1)],
            ),
            policy=Policy(),
            pay_deadline=T0 + timedelta(minutes=30),
        ),
    )
    await env.run(
        orders.apply_payment,
        PaymentParams(
            key=f"order-{order_no}:payment:pay-{order_no}",
            order_no=order_no,
            at=T0 + timedelta(seconds=1),
            event=PaymentEvent(event_id=f"pay-{order_no}", status="succeeded", amount=plan.payable),
            outcome="applied",
        ),
    )
    return plan


async def remind(
    sessions: async_sessionmaker[AsyncSession], plan: OrderPlan, supplier: str
) -> None:
    so = next(so for so in plan.supplier_orders if so.supplier_id == supplier)
    await ActivityEnvironment().run(
        FulfilmentActivities(sessions).record_reminder,
        ReminderParams(
            key=f"order-{so.id}:remind:1",
            order_no=plan.order_no,
            at=T0 + timedelta(seconds=2),
            actor=Actor.CUSTOMER,
            actor_id="alice",
            supplier_order_id=so.id,
            supplier_id=supplier,
        ),
    )


async def start_cursor(sessions: async_sessionmaker[AsyncSession], url: str) -> None:
    """As a dispatcher's first round does: the cursor at the newest row (none yet)."""
    await Dispatcher(sessions, settings_for(url)).derive()
    async with sessions() as s:
        assert (
            await s.scalar(select(WebhookCursor.last_id).where(WebhookCursor.name == CURSOR))
            is not None
        )


@contextlib.asynccontextmanager
async def running(*dispatchers: Dispatcher) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(d.run()) for d in dispatchers]
    try:
        yield
    finally:
        for d in dispatchers:
            d.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), 20)


async def states(sessions: async_sessionmaker[AsyncSession]) -> dict[str, str]:
    async with sessions() as s:
        return {e.id: e.state for e in (await s.scalars(select(WebhookEvent))).all()}


async def test_two_dispatchers_of_their_own_deliver_every_event_once(db_url: str) -> None:
    endpoint = Endpoint()
    async with (
        engine_sessions(db_url) as one,
        engine_sessions(db_url) as two,
    ):
        await set_hooks(one, "s1", "s2")
        await start_cursor(one, db_url)
        plans = [await paid_order(one, f"81000000{i}") for i in range(4)]
        for plan in plans:
            await remind(one, plan, "s1")
        settings = settings_for(db_url)
        async with running(
            Dispatcher(one, settings, transport=endpoint.transport()),
            Dispatcher(two, settings, transport=endpoint.transport()),
        ):

            async def all_delivered() -> bool:
                got = await states(one)
                return len(got) == 12 and set(got.values()) == {DELIVERED}

            await eventually(all_delivered, what="12 events delivered")
            await asyncio.sleep(0.3)
        ids = [r.headers["x-orders-event-id"] for r in endpoint.requests]
        assert len(ids) == 12 and len(set(ids)) == 12
        for request in endpoint.requests:
            assert verify(request.headers["x-orders-signature"], request.content, SECRET)
        for plan in plans:
            s1 = [
                e["type"]
                for e in endpoint.events()
                if e["data"]["order_no"] == plan.order_no and e["data"]["supplier_id"] == "s1"
            ]
            assert s1 == ["supplier_order.paid", "supplier_order.reminded"]
        async with one() as s:
            assert await s.scalar(select(func.count()).select_from(WebhookAttempt)) == 12


async def test_an_event_is_given_up_after_retry_for_and_the_next_one_goes(db_url: str) -> None:
    def decide(event: dict[str, Any]) -> int:
        return 500 if event["type"] == "supplier_order.paid" else 204

    endpoint = Endpoint(decide)
    async with engine_sessions(db_url) as sessions:
        await set_hooks(sessions, "s1")
        await start_cursor(sessions, db_url)
        plan = await paid_order(sessions, "820000001")
        await remind(sessions, plan, "s1")
        settings = settings_for(db_url, ORDERS_WEBHOOK_RETRY_FOR="1")
        async with running(Dispatcher(sessions, settings, transport=endpoint.transport())):

            async def settled() -> bool:
                return set((await states(sessions)).values()) == {FAILED, DELIVERED}

            await eventually(settled, what="paid given up, reminded delivered")
        types = [e["type"] for e in endpoint.events()]
        paid = types.count("supplier_order.paid")
        assert paid >= 3 and types == ["supplier_order.paid"] * paid + ["supplier_order.reminded"]
        async with sessions() as s:
            failed = await s.scalar(select(WebhookEvent).where(WebhookEvent.state == FAILED))
            assert failed is not None and failed.attempts == paid
            assert failed.type == "supplier_order.paid"


async def test_an_expired_lease_is_taken_over(db_url: str) -> None:
    """A dispatcher that died mid-delivery: its lease runs out and another sends the event."""
    endpoint = Endpoint()
    async with engine_sessions(db_url) as sessions:
        await set_hooks(sessions, "s2")
        await start_cursor(sessions, db_url)
        await paid_order(sessions, "830000001")
        settings = settings_for(db_url)
        await Dispatcher(sessions, settings).derive()
        async with write_session(sessions) as s:
            event = await s.scalar(select(WebhookEvent))
            assert event is not None and event.state == PENDING
            event.lease_owner, event.attempts = "ghost", 1
            event.lease_until = datetime.now(UTC) + timedelta(seconds=1)
        async with running(Dispatcher(sessions, settings, transport=endpoint.transport())):
            await eventually(lambda: _delivered(sessions), what="the orphaned event delivered")
        [request] = endpoint.requests
        assert request.headers["x-orders-event-id"] == event.id
        async with sessions() as s:
            [attempt] = (await s.scalars(select(WebhookAttempt))).all()
        assert attempt.attempt == 2  # the ghost's attempt counted, never recorded


async def _delivered(sessions: async_sessionmaker[AsyncSession]) -> bool:
    return set((await states(sessions)).values()) == {DELIVERED}


@pytest.mark.parametrize("gap_wait", [30.0, 0.0])
async def test_a_log_row_committed_late_is_not_skipped(pg_url: str, gap_wait: float) -> None:
    """PostgreSQL hands out ids at insert and may commit a lower one after a higher one:
    the cursor waits at the gap (gap_wait) so the late row still becomes an event."""
    url = await create_database(pg_url, f"t_{uuid.uuid4().hex[:12]}")
    engine = make_engine(url)
    await create_all(engine)
    sessions = make_session_factory(engine)
    try:
        await seed(sessions)
        await set_hooks(sessions, "s1", "s2")
        await start_cursor(sessions, url)
        plan = await paid_order(sessions, "840000001")
        # batch=1: one new row a round, so rows after the gap take several rounds.
        dispatcher = Dispatcher(sessions, settings_for(url), gap_wait=gap_wait, batch=1)
        while await dispatcher.derive():  # the two paid events
            pass
        async with engine.connect() as held:
            late = await held.begin()
            held_id = (
                await held.execute(
                    text(
                        "INSERT INTO order_log (order_no, supplier_order_id, actor, actor_id, "
                        "action, detail, at) VALUES (:no, :so, 'customer', 'alice', "
                        "'ship_reminder', '{}', :at) RETURNING id"
                    ),
                    {"no": plan.order_no, "so": plan.supplier_orders[0].id, "at": T0},
                )
            ).scalar_one()
            # Committed after the held row's id was taken: s2's reminder, another paid order.
            await remind(sessions, plan, plan.supplier_orders[1].supplier_id)
            other = await paid_order(sessions, "840000002")
            for _ in range(10):
                await dispatcher.derive()
            async with sessions() as s:
                made = set((await s.scalars(select(WebhookEvent.order_no))).all())
                cursor = await s.scalar(select(WebhookCursor.last_id))
            assert other.order_no in made  # rows after the gap are not held up by it
            if gap_wait:
                assert cursor is not None and cursor < held_id
            await late.commit()
        await dispatcher.derive()
        async with sessions() as s:
            reminded = (
                await s.scalars(
                    select(WebhookEvent.supplier_order_id).where(
                        WebhookEvent.type == "supplier_order.reminded"
                    )
                )
            ).all()
            newest = await s.scalar(select(func.max(OrderLog.id)))
            cursor = await s.scalar(select(WebhookCursor.last_id))
        expected = {so.id for so in plan.supplier_orders}
        if gap_wait:
            assert set(reminded) == expected and cursor == newest
        else:  # without waiting, the late row is lost: what the wait is for
            assert set(reminded) == {plan.supplier_orders[1].id}
    finally:
        await engine.dispose()


async def test_a_hanging_endpoint_does_not_hold_up_other_suppliers(db_url: str) -> None:
    release = asyncio.Event()
    requests: list[str] = []

    async def handle(request: httpx.Request) -> httpx.Response:
        supplier = request.url.path.strip("/")
        requests.append(supplier)
        if supplier == "s1":
            await release.wait()  # s1's system hangs
        return httpx.Response(200)

    async with engine_sessions(db_url) as sessions:
        await set_hooks(sessions, "s1", "s2")
        await start_cursor(sessions, db_url)
        for i in range(3):
            await paid_order(sessions, f"85000000{i}")
        dispatcher = Dispatcher(
            sessions,
            settings_for(db_url),
            concurrency=3,
            per_supplier=2,
            transport=httpx.MockTransport(handle),
        )
        async with running(dispatcher):

            async def s2_done() -> bool:
                async with sessions() as s:
                    states = (
                        await s.scalars(
                            select(WebhookEvent.state).where(WebhookEvent.supplier_id == "s2")
                        )
                    ).all()
                return list(states) == [DELIVERED] * 3

            await eventually(s2_done, 4, "s2's three events while s1 hangs")
            assert requests.count("s1") == 2  # never more than per_supplier at once
            release.set()
            await eventually(lambda: _delivered(sessions), what="s1's events once it answers")
