"""Money-moving activities applied twice with one idempotency key move the money once.

Temporal retries an activity whose result it did not receive (worker crash, timeout), with
the same input and so the same key. Each run here goes through `ActivityEnvironment`
against a real read model, SQLite and PostgreSQL, set up by the activities themselves.
"""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.aftersales import AfterSaleActivities
from activities.fulfilment import FulfilmentActivities
from activities.orders import OrderActivities
from activities.payments import FakePaymentProvider, PaymentActivities
from db.tables import (
    AfterSale,
    CoinLedger,
    Customer,
    IdempotencyKey,
    Notification,
    Order,
    OrderItem,
    OrderLog,
    Product,
    Refund,
    SupplierOrder,
)
from domain.activity_params import (
    AfterSaleOpenParams,
    AfterSaleRefundParams,
    CancelSupplierOrderParams,
    IssueRefundParams,
    PaymentParams,
    PlaceOrderParams,
    RefundRef,
    ShipmentParams,
)
from domain.messages import AfterSaleInput, PaymentEvent, ShipItems, ShipLine
from domain.models import OrderLine, OrderPlan, SubmitOrder
from domain.money import prorate
from domain.policy import Policy
from domain.states import Actor, AfterSaleStatus, AfterSaleType, CloseReason
from tests.support.invariants import check_invariants
from tests.support.read_model import ENGINES, seeded_read_model

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
COINS = Decimal("100.00")  # alice's seeded balance


@pytest.fixture(params=ENGINES)
async def sessions(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A fresh, seeded read model on each engine (as tests/workflows/conftest.py makes)."""
    async with seeded_read_model(request, tmp_path) as factory:
        yield factory


async def paid_order(
    env: ActivityEnvironment, sessions: async_sessionmaker[AsyncSession], coins: str
) -> OrderPlan:
    """alice's order of 2 green and 1 black tea (supplier s1), placed and paid."""
    orders = OrderActivities(sessions)
    order_no = "700000001"
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
                lines=[OrderLine(sku="tea-green", qty=2), OrderLine(sku="tea-black", qty=1)],
                coins=Decimal(coins),
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
    return plan


class CountingProvider(FakePaymentProvider):
    """The dev provider, counting the refunds it is asked to send."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    async def refund(self, refund_id: str, method: str, amount: str) -> str:
        self.calls.append(refund_id)
        return await super().refund(refund_id, method, amount)


async def pay_back_twice(
    env: ActivityEnvironment, sessions: async_sessionmaker[AsyncSession], ref: RefundRef
) -> None:
    """The regular activity that sends the refund, run twice too: sent and counted once."""
    assert ref.refund_id is not None
    provider = CountingProvider()
    payments = PaymentActivities(sessions, provider)
    first = await env.run(payments.issue_refund, IssueRefundParams(refund_id=ref.refund_id))
    second = await env.run(payments.issue_refund, IssueRefundParams(refund_id=ref.refund_id))
    assert first == second and provider.calls == [ref.refund_id]
    async with sessions() as s:
        refund = await s.get(Refund, ref.refund_id)
        assert refund is not None and (refund.status, refund.provider_ref) == ("succeeded", first)
        order = await s.get(Order, refund.order_no)
        assert order is not None and order.refunded == ref.amount
        settled = (
            await s.scalars(
                select(OrderLog).where(
                    OrderLog.order_no == refund.order_no, OrderLog.action == "refund_settled"
                )
            )
        ).all()
        assert [(e.actor, e.actor_id, e.detail["refund_id"]) for e in settled] == [
            ("system", "payment-provider", ref.refund_id)
        ]


async def count(sessions: async_sessionmaker[AsyncSession], model: Any, *where: Any) -> int:
    async with sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def coins_of(sessions: async_sessionmaker[AsyncSession], customer_id: str) -> Decimal:
    async with sessions() as s:
        row = await s.get(Customer, customer_id)
        assert row is not None
        return row.coins


async def stored_result(sessions: async_sessionmaker[AsyncSession], key: str) -> Any:
    async with sessions() as s:
        row = await s.get(IdempotencyKey, key)
        return None if row is None else row.result


async def test_after_sale_refund_twice_with_one_key_refunds_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    env = ActivityEnvironment()
    plan = await paid_order(env, sessions, coins="5.00")
    (so,) = plan.supplier_orders
    green = next(i for i in so.items if i.sku == "tea-green")
    assert green.coin_share > 0  # so the refund moves coins as well as money
    await env.run(
        FulfilmentActivities(sessions).record_shipment,
        ShipmentParams(
            key=f"order-{so.id}:ship:1",
            order_no=plan.order_no,
            at=T0 + timedelta(hours=1),
            actor=Actor.SUPPLIER,
            supplier_order_id=so.id,
            shipment=ShipItems(
                carrier="sf",
                tracking_no="P1",
                items=[ShipLine(item_id=i.item_id, qty=i.qty) for i in so.items],
            ),
            auto_confirm_at=T0 + timedelta(days=10, hours=1),
        ),
    )
    after_sales = AfterSaleActivities(sessions)
    after_sale_id = f"as-{so.id}-1"
    await env.run(
        after_sales.open_after_sale,
        AfterSaleOpenParams(
            key=f"order-{so.id}:after-sale:1",
            order_no=plan.order_no,
            at=T0 + timedelta(days=1),
            actor=Actor.CUSTOMER,
            actor_id="alice",
            request=AfterSaleInput(
                id=after_sale_id,
                order_no=plan.order_no,
                customer_id="alice",
                supplier_id=so.supplier_id,
                supplier_order_id=so.id,
                item_id=green.item_id,
                qty=1,
                type=AfterSaleType.REFUND_ONLY,
            ),
        ),
    )
    coins_before = await coins_of(sessions, "alice")
    refund_at = T0 + timedelta(days=2)
    params = AfterSaleRefundParams(
        key=f"aftersale-{after_sale_id}:refund",
        order_no=plan.order_no,
        at=refund_at,
        actor=Actor.SUPPLIER,
        actor_id="s1",
        after_sale_id=after_sale_id,
    )

    first = await env.run(after_sales.refund_after_sale, params)
    # The retry: same key (a later attempt, so a later clock), same answer, nothing moves.
    second = await env.run(
        after_sales.refund_after_sale, params.model_copy(update={"at": refund_at + timedelta(1)})
    )

    expected = RefundRef(
        refund_id=f"refund:{after_sale_id}",
        amount=prorate(green.money_paid, 1, 2),
        coins=prorate(green.coin_share, 1, 2),
    )
    assert first == second == expected
    assert expected.amount > 0 and expected.coins > 0
    assert await stored_result(sessions, params.key) == expected.model_dump(mode="json")
    async with sessions() as s:
        refunds = (await s.scalars(select(Refund).where(Refund.order_no == plan.order_no))).all()
        assert [(r.id, r.after_sale_id, r.amount, r.coins) for r in refunds] == [
            (expected.refund_id, after_sale_id, expected.amount, expected.coins)
        ]
        item = await s.get(OrderItem, green.item_id)
        assert item is not None and item.refunded_qty == 1
        row = await s.get(AfterSale, after_sale_id)
        assert row is not None and row.status == AfterSaleStatus.REFUNDED
        assert (row.refund_amount, row.refund_coins, row.updated_at) == (
            expected.amount,
            expected.coins,
            refund_at,
        )
        order = await s.get(Order, plan.order_no)
        assert order is not None and order.coins_refunded == expected.coins
        ledger = (
            await s.scalars(
                select(CoinLedger.delta).where(
                    CoinLedger.order_no == plan.order_no, CoinLedger.reason == "after_sale_refund"
                )
            )
        ).all()
        assert list(ledger) == [expected.coins]
    assert await coins_of(sessions, "alice") == coins_before + expected.coins
    assert await count(sessions, OrderLog, OrderLog.action == "after_sale_refunded") == 1
    assert await count(sessions, Notification, Notification.kind == "after_sale_refunded") == 1
    await pay_back_twice(env, sessions, first)
    await check_invariants(sessions)


async def test_cancel_supplier_order_twice_with_one_key_releases_and_refunds_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    env = ActivityEnvironment()
    plan = await paid_order(env, sessions, coins="7.00")
    (so,) = plan.supplier_orders
    assert so.payable > 0 and so.coin_share == Decimal("7.00")
    async with sessions() as s:
        reserved = {sku: (await s.get(Product, sku)).reserved for sku in ("tea-green", "tea-black")}  # type: ignore[union-attr]
    assert reserved == {"tea-green": 2, "tea-black": 1}
    assert await coins_of(sessions, "alice") == COINS - so.coin_share
    fulfilment = FulfilmentActivities(sessions)
    params = CancelSupplierOrderParams(
        key=f"order-{so.id}:cancel:u1",
        order_no=plan.order_no,
        at=T0 + timedelta(hours=2),
        actor=Actor.CUSTOMER,
        actor_id="alice",
        supplier_order_id=so.id,
        reason=CloseReason.USER_CANCELLED,
    )

    first = await env.run(fulfilment.cancel_supplier_order, params)
    second = await env.run(
        fulfilment.cancel_supplier_order,
        params.model_copy(update={"at": params.at + timedelta(minutes=5)}),
    )

    expected = RefundRef(refund_id=f"refund:{so.id}:cancel", amount=so.payable, coins=so.coin_share)
    assert first == second == expected
    assert await stored_result(sessions, params.key) == expected.model_dump(mode="json")
    async with sessions() as s:
        refunds = (await s.scalars(select(Refund).where(Refund.order_no == plan.order_no))).all()
        assert [(r.id, r.amount, r.coins, r.reason) for r in refunds] == [
            (expected.refund_id, so.payable, so.coin_share, "user_cancelled")
        ]
        # The reservation went back once (a second release would go negative).
        for sku in ("tea-green", "tea-black"):
            product = await s.get(Product, sku)
            assert product is not None and product.reserved == 0 and product.on_hand == 100
        row = await s.get(SupplierOrder, so.id)
        assert row is not None and (row.status, row.closed_at) == ("CLOSED", params.at)
        order = await s.get(Order, plan.order_no)
        assert order is not None and order.status == "CLOSED"
        assert order.coins_refunded == so.coin_share
        ledger = (
            await s.scalars(
                select(CoinLedger.delta).where(
                    CoinLedger.order_no == plan.order_no,
                    CoinLedger.reason == "supplier_order_user_cancelled",
                )
            )
        ).all()
        assert list(ledger) == [so.coin_share]
    assert await coins_of(sessions, "alice") == COINS
    assert await count(sessions, OrderLog, OrderLog.action == "supplier_order_cancelled") == 1
    assert await count(sessions, Notification, Notification.kind == "customer_cancelled") == 1
    await pay_back_twice(env, sessions, first)
    await check_invariants(sessions)
