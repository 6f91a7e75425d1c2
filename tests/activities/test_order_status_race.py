"""Two supplier orders of one order finishing at the same moment finish the order.

Found by bench/scaleout.py (two workers on PostgreSQL): both reviews were recorded, but each
transaction read the other supplier order as still open (READ COMMITTED), so neither derived
FINISHED and the order stayed PAID for ever. The interleaving is pinned here with the real
`record_reviews` activity on both sides: the first one is held after deriving the order's
status, before it commits, while the second one runs.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

import activities.fulfilment as fulfilment
from activities.fulfilment import FulfilmentActivities
from activities.orders import OrderActivities
from db.session import create_all, make_engine, make_session_factory
from db.tables import Order, OrderLog
from domain.activity_params import (
    PaymentParams,
    PlaceOrderParams,
    ReceiptParams,
    ReviewLine,
    ReviewParams,
    ShipmentParams,
)
from domain.messages import PaymentEvent, ShipItems, ShipLine
from domain.models import OrderLine, OrderPlan, SubmitOrder, SupplierOrderPlan
from domain.policy import Policy
from domain.states import Actor, OrderStatus
from tests.support.catalog import seed
from tests.support.invariants import check_invariants
from tests.support.postgres import create_database

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def sessions(pg_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    url = await create_database(pg_url, f"t_{uuid.uuid4().hex[:12]}")
    engine = make_engine(url)
    await create_all(engine)
    factory = make_session_factory(engine)
    await seed(factory)
    try:
        yield factory
    finally:
        await engine.dispose()


async def two_suppliers_awaiting_review(
    env: ActivityEnvironment, sessions: async_sessionmaker[AsyncSession]
) -> OrderPlan:
    """alice's paid order of s1's green tea and s2's cup, both shipped and received."""
    orders = OrderActivities(sessions)
    order_no = "700000042"
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
            key=f"order-{order_no}:payment:pay-1",
            order_no=order_no,
            at=T0 + timedelta(minutes=1),
            event=PaymentEvent(event_id="pay-1", status="succeeded", amount=plan.payable),
            outcome="applied",
        ),
    )
    fulfil = FulfilmentActivities(sessions)
    for so in plan.supplier_orders:
        await env.run(
            fulfil.record_shipment,
            ShipmentParams(
                key=f"order-{so.id}:ship:1",
                order_no=order_no,
                at=T0 + timedelta(hours=1),
                actor=Actor.SUPPLIER,
                supplier_order_id=so.id,
                shipment=ShipItems(
                    carrier="sf",
                    tracking_no=f"P-{so.id}",
                    items=[ShipLine(item_id=i.item_id, qty=i.qty) for i in so.items],
                ),
                auto_confirm_at=T0 + timedelta(days=10, hours=1),
            ),
        )
        await env.run(
            fulfil.record_receipt,
            ReceiptParams(
                key=f"order-{so.id}:receipt:1",
                order_no=order_no,
                at=T0 + timedelta(days=1),
                actor=Actor.CUSTOMER,
                actor_id="alice",
                supplier_order_id=so.id,
                auto=False,
                auto_review_at=T0 + timedelta(days=16),
            ),
        )
    return plan


def review(plan: OrderPlan, so: SupplierOrderPlan) -> ReviewParams:
    return ReviewParams(
        key=f"order-{so.id}:review:1",
        order_no=plan.order_no,
        at=T0 + timedelta(days=2),
        actor=Actor.CUSTOMER,
        actor_id="alice",
        supplier_order_id=so.id,
        reviews=[ReviewLine(item_id=i.item_id, rating=5, text="good") for i in so.items],
        auto=False,
        completed=True,
    )


async def waiting_on_a_lock(sessions: async_sessionmaker[AsyncSession]) -> bool:
    async with sessions() as s:
        n = await s.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return bool(n)


async def test_the_last_two_reviews_at_once_finish_the_order(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = await two_suppliers_awaiting_review(ActivityEnvironment(), sessions)
    first_so, second_so = plan.supplier_orders

    derived = asyncio.Event()  # the first review has derived the order's status...
    release = asyncio.Event()  # ... and commits only when told
    original = fulfilment.refresh_order_status

    async def held(session: AsyncSession, order_no: str, at: datetime) -> None:
        await original(session, order_no, at)
        if not derived.is_set():
            derived.set()
            await release.wait()

    monkeypatch.setattr(fulfilment, "refresh_order_status", held)
    acts = FulfilmentActivities(sessions)
    first = asyncio.create_task(
        ActivityEnvironment().run(acts.record_reviews, review(plan, first_so))
    )
    await asyncio.wait_for(derived.wait(), 30)
    second = asyncio.create_task(
        ActivityEnvironment().run(acts.record_reviews, review(plan, second_so))
    )
    # The second review either waits for the first one's lock on the order (right) or
    # completes at once having read the first supplier order as still open (the bug).
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not second.done() and not await waiting_on_a_lock(sessions):
        assert loop.time() < deadline, "the second review neither finished nor waited"
        await asyncio.sleep(0.02)
    release.set()
    await asyncio.wait_for(asyncio.gather(first, second), 30)

    async with sessions() as s:
        order = await s.get(Order, plan.order_no)
        assert order is not None and order.status == OrderStatus.FINISHED
        finished = await s.scalar(
            select(func.count())
            .select_from(OrderLog)
            .where(OrderLog.order_no == plan.order_no, OrderLog.action == "order_finished")
        )
        assert finished == 1
        assert order.paid == plan.payable and order.refunded == Decimal("0")
    await check_invariants(sessions)
