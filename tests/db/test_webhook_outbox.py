"""The webhook outbox on SQLite and on a real PostgreSQL: dispatchers as separate processes
would run them (each with its own engine), Temporal as a recording client (delivery itself is
WebhookDeliveryWorkflow's: tests/workflows/test_webhook_delivery.py).

Orders are written by the real activities (placement, payment, reminder), so the events
come from the order_log rows the workflows really write.
"""

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from activities.fulfilment import FulfilmentActivities
from activities.orders import OrderActivities
from db.session import create_all, make_engine, make_session_factory, write_session
from db.tables import OrderLog, SupplierWebhook, WebhookCursor, WebhookEvent
from domain.activity_params import PaymentParams, PlaceOrderParams, ReminderParams
from domain.messages import PaymentEvent
from domain.models import OrderLine, OrderPlan, SubmitOrder
from domain.policy import Policy
from domain.states import Actor
from domain.webhooks import WebhookDelivery, WebhookDeliveryInput
from settings import Settings
from starter.webhooks import CURSOR, PENDING, Dispatcher
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


@dataclass
class Signal:
    workflow_id: str
    inp: WebhookDeliveryInput
    delivery: WebhookDelivery
    search_attributes: dict[str, Any]


@dataclass
class Temporal:
    """A client that records signal-with-starts; `fail` of them raise first (Temporal down)."""

    fail: int = 0
    signals: list[Signal] = field(default_factory=list)

    async def start_workflow(self, workflow: str, inp: WebhookDeliveryInput, **kw: Any) -> None:
        assert workflow == "WebhookDeliveryWorkflow" and kw["start_signal"] == "deliver"
        if self.fail:
            self.fail -= 1
            raise RuntimeError("Temporal is unavailable")
        await asyncio.sleep(0)
        attrs = {p.key.name: p.value for p in kw["search_attributes"]}
        self.signals.append(Signal(kw["id"], inp, kw["start_signal_args"][0], attrs))

    def client(self) -> Client:
        return cast(Client, self)


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
    await Dispatcher(sessions, settings_for(url), Temporal().client()).derive()
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


async def events(sessions: async_sessionmaker[AsyncSession]) -> list[WebhookEvent]:
    async with sessions() as s:
        return list((await s.scalars(select(WebhookEvent).order_by(WebhookEvent.log_id))).all())


async def test_two_dispatchers_make_every_event_once_and_signal_it_in_order(db_url: str) -> None:
    temporal = Temporal()
    async with (
        engine_sessions(db_url) as one,
        engine_sessions(db_url) as two,
    ):
        await set_hooks(one, "s1", "s2")
        await start_cursor(one, db_url)
        plans = [await paid_order(one, f"81000000{i}") for i in range(4)]
        for plan in plans:
            await remind(one, plan, "s1")
        async with one() as s:
            newest = await s.scalar(select(func.max(OrderLog.id)))
        assert newest is not None
        settings = settings_for(db_url)
        async with running(
            Dispatcher(one, settings, temporal.client()),
            Dispatcher(two, settings, temporal.client()),
        ):

            async def all_signalled() -> bool:
                return len({s.delivery.event_id for s in temporal.signals}) == 12

            async def past_every_row() -> bool:
                async with one() as s:
                    cursor = await s.scalar(
                        select(WebhookCursor.last_id).where(WebhookCursor.name == CURSOR)
                    )
                return cursor is not None and cursor >= newest

            await eventually(all_signalled, what="12 events signalled")
            # Nothing more is on its way, by construction rather than after a pause: the
            # persisted cursor moves past rows only once their events were inserted and
            # signalled (Dispatcher.derive), so with it past the newest row every event
            # these rows make exists and was handed over; leaving `running` stops both
            # dispatchers and waits for the round each has in progress, so no insert or
            # signal comes after it.
            await eventually(past_every_row, what=f"the cursor past order_log row {newest}")
        made = await events(one)
        assert len(made) == 12 and {e.state for e in made} == {PENDING}
        assert {e.id for e in made} == {s.delivery.event_id for s in temporal.signals}
        for signal in temporal.signals:
            event = next(e for e in made if e.id == signal.delivery.event_id)
            assert signal.workflow_id == f"webhook-{event.supplier_order_id}"
            assert signal.delivery.key == event.id and signal.delivery.log_id == event.log_id
            assert signal.inp.supplier_id == event.supplier_id
            assert signal.inp.policy.backoff_s == 0.1 and signal.inp.policy.retry_for_s == 259200
            # No personal data in the visibility store.
            assert signal.search_attributes == {
                "OrderNo": event.order_no,
                "SupplierId": event.supplier_id,
            }
            body = json.loads(event.body)
            assert body["id"] == event.id and "customer_id" not in json.dumps(body)
        for plan in plans:
            s1 = next(so.id for so in plan.supplier_orders if so.supplier_id == "s1")
            # A dispatcher signals one supplier order's events in log order.
            sent = [s.delivery.log_id for s in temporal.signals if s.inp.supplier_order_id == s1]
            firsts = list(dict.fromkeys(sent))
            assert firsts == sorted(firsts) and len(firsts) == 2


async def test_a_round_whose_signals_failed_is_done_again(db_url: str) -> None:
    """Temporal unreachable after the events were written: the cursor stays, the rows are read
    again, the events are not made twice and are all signalled."""
    temporal = Temporal(fail=1)
    async with engine_sessions(db_url) as sessions:
        await set_hooks(sessions, "s1", "s2")
        await start_cursor(sessions, db_url)
        plan = await paid_order(sessions, "820000001")
        await remind(sessions, plan, "s1")
        dispatcher = Dispatcher(sessions, settings_for(db_url), temporal.client())
        with pytest.raises(ExceptionGroup):
            await dispatcher.derive()
        assert len(await events(sessions)) == 3  # written, not yet handed over
        async with sessions() as s:
            cursor = await s.scalar(select(WebhookCursor.last_id))
        assert cursor is not None and cursor < (await events(sessions))[0].log_id
        await dispatcher.derive()
        made = await events(sessions)
        assert len(made) == 3
        assert {e.id for e in made} <= {s.delivery.event_id for s in temporal.signals}
        async with sessions() as s:
            assert await s.scalar(select(WebhookCursor.last_id)) == made[-1].log_id


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
        dispatcher = Dispatcher(
            sessions, settings_for(url), Temporal().client(), gap_wait=gap_wait, batch=1
        )
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
