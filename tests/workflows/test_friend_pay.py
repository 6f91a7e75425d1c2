"""Friend pays and money on the record (DESIGN.md §11), on the time-skipping server, on
SQLite and PostgreSQL.

A friend_pay order is paid by someone other than the buyer (`payer_id` on the payment
event). Every money refund of the order goes back to whoever paid that money (refund rows
name them, and they are told), coins go back to the buyer, the log names the payer, and
`paid` / `refunded` count all money received and returned. Every scenario ends with the
read-model invariants, which check money in == kept + refunded per order and per payer.
"""

from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from db.tables import CoinLedger, Customer, Notification, Order, OrderLog, Payment, Refund
from domain.messages import CancelOrder, CancelSupplierOrder, ShipItems, ShipLine
from domain.money import prorate
from domain.policy import Policy
from domain.states import Actor, OrderType
from tests.support.invariants import check_invariants
from tests.support.shop import Shop, eventually
from workflows.order import OrderWorkflow
from workflows.supplier_order import SupplierOrderWorkflow

LINES = [("tea-green", 2), ("pot-clay", 1), ("cup-white", 3)]
FRIEND = dict(order_type=OrderType.FRIEND_PAY)


async def _rows(shop: Shop, model: Any, *where: Any) -> list[Any]:
    async with shop.sessions() as s:
        return list((await s.scalars(select(model).where(*where))).all())


async def _settled(shop: Shop, order_no: str, n: int) -> list[Refund]:
    async def probe() -> list[Refund] | None:
        rows = await _rows(shop, Refund, Refund.order_no == order_no)
        done = [r for r in rows if r.status == "succeeded"]
        return rows if len(done) == len(rows) == n else None

    return await eventually(probe, what=f"{n} refunds settled for {order_no}")


async def _coins(shop: Shop, customer: str = "alice") -> Decimal:
    async with shop.sessions() as s:
        c = await s.get(Customer, customer)
        assert c is not None
        return c.coins


async def test_friend_pays_refunds_go_back_to_the_friend_coins_to_the_buyer(shop: Shop) -> None:
    handle, placement = await shop.submit(LINES, coins="6.00", **FRIEND)
    plan = placement.plan
    assert plan.order_type is OrderType.FRIEND_PAY
    await shop.pay(handle, plan.payable, event_id=f"bob-{plan.order_no}", payer_id="bob")
    row = await shop.order_status(plan.order_no, "PAID")
    assert (row.payer_id, row.order_type, row.paid) == ("bob", "friend_pay", plan.payable)

    # A second friend pays too: not needed, refunded whole to that friend.
    await shop.pay(handle, plan.payable, event_id=f"carol-{plan.order_no}", payer_id="carol")
    # The buyer-side supplier order s1 is cancelled by its supplier: its money goes back to
    # the friend who paid, its coins to the buyer.
    s1 = plan.supplier_orders[0]
    coins_before = await _coins(shop)
    child = await shop.child(s1.id)
    await child.execute_update(
        SupplierOrderWorkflow.cancel,
        CancelSupplierOrder(actor=Actor.SUPPLIER, actor_id=s1.supplier_id),
    )
    refunds = {r.id: r for r in await _settled(shop, plan.order_no, 2)}
    dup = refunds[f"refund:payment:carol-{plan.order_no}"]
    assert (dup.payer_id, dup.amount, dup.reason) == ("carol", plan.payable, "refunded_duplicate")
    cancel = refunds[f"refund:{s1.id}:cancel"]
    assert (cancel.payer_id, cancel.amount, cancel.coins) == ("bob", s1.payable, s1.coin_share)
    assert await _coins(shop) == coins_before + s1.coin_share  # coins: the buyer's
    ledger = await _rows(shop, CoinLedger, CoinLedger.order_no == plan.order_no)
    assert {r.customer_id for r in ledger} == {"alice"}

    # Each payer is told about their money; the buyer is not the one refunded.
    told = await _rows(shop, Notification, Notification.order_no == plan.order_no)
    payer_notes = {(n.recipient_id, n.dedupe_key) for n in told if n.kind == "payment_refunded"}
    assert ("bob", f"{cancel.id}:payer") in payer_notes
    assert ("carol", f"{dup.id}:payer") in payer_notes

    # The operation log names the payer of every payment and refund.
    log = await _rows(shop, OrderLog, OrderLog.order_no == plan.order_no)
    by_action = {(e.action, e.detail.get("event_id")): e for e in log}
    assert by_action[("payment_applied", f"bob-{plan.order_no}")].detail["payer_id"] == "bob"
    dup_entry = by_action[("payment_refunded_duplicate", f"carol-{plan.order_no}")]
    assert dup_entry.detail["payer_id"] == "carol"
    settled = {e.detail["refund_id"]: e for e in log if e.action == "refund_settled"}
    assert settled[cancel.id].detail["payer_id"] == "bob"
    assert settled[dup.id].detail["payer_id"] == "carol"

    # Money on the record: two payments in, the duplicate and s1 back.
    final = await shop.order_row(plan.order_no)
    assert final is not None
    assert (final.paid, final.refunded) == (2 * plan.payable, plan.payable + s1.payable)
    await check_invariants(shop.sessions)


async def test_undelivered_items_of_a_friend_paid_order_are_refunded_to_the_friend(
    shop: Shop,
) -> None:
    policy = Policy()
    handle, placement = await shop.submit(
        [("tea-green", 2), ("pot-clay", 1)], coins="10.00", policy=policy, **FRIEND
    )
    plan = placement.plan
    await shop.pay(handle, plan.payable, payer_id="bob")
    await shop.order_status(plan.order_no, "PAID")
    so = plan.supplier_orders[0]
    tea = next(i for i in so.items if i.sku == "tea-green")
    pot = next(i for i in so.items if i.sku == "pot-clay")
    child = await shop.child(so.id)
    await child.execute_update(
        SupplierOrderWorkflow.ship,
        ShipItems(carrier="sf", tracking_no="FP1", items=[ShipLine(item_id=tea.item_id, qty=1)]),
    )
    coins_before = await _coins(shop)
    await shop.skip(policy.auto_confirm_after + timedelta(hours=1))
    (refund,) = await _settled(shop, plan.order_no, 1)
    assert refund.reason == "undelivered" and refund.payer_id == "bob"
    assert refund.amount == prorate(tea.money_paid, 1, 2) + pot.money_paid
    assert await _coins(shop) == coins_before + refund.coins
    await check_invariants(shop.sessions)


async def test_buyer_may_cancel_an_unpaid_friend_pay_order_and_late_money_goes_back(
    shop: Shop,
) -> None:
    handle, placement = await shop.submit(LINES, coins="4.00", **FRIEND)
    plan = placement.plan
    await handle.execute_update(OrderWorkflow.cancel, CancelOrder(actor_id="alice"))
    row = await shop.order_status(plan.order_no, "CLOSED")
    assert row.payer_id is None and row.paid == 0
    assert await _coins(shop) == Decimal("100.00")  # the buyer's coins are back

    # The friend's payment arrives after the cancel: recorded, counted, refunded to them.
    await shop.pay(handle, plan.payable, event_id=f"late-{plan.order_no}", payer_id="bob")
    (refund,) = await _settled(shop, plan.order_no, 1)
    assert (refund.payer_id, refund.reason, refund.amount) == (
        "bob",
        "refunded_late",
        plan.payable,
    )
    (payment,) = await _rows(shop, Payment, Payment.order_no == plan.order_no)
    assert (payment.outcome, payment.payer_id) == ("refunded_late", "bob")
    late = await shop.order_row(plan.order_no)
    assert late is not None and (late.paid, late.refunded) == (plan.payable, plan.payable)
    assert late.payer_id is None  # nobody paid the order itself
    await check_invariants(shop.sessions)


async def test_mismatched_then_right_payment_from_two_friends(shop: Shop) -> None:
    handle, placement = await shop.submit(LINES, **FRIEND)
    plan = placement.plan
    short = plan.payable - Decimal("0.01")
    await shop.pay(handle, short, event_id=f"short-{plan.order_no}", payer_id="carol")
    await shop.pay(handle, plan.payable, event_id=f"ok-{plan.order_no}", payer_id="bob")
    # The replayed event is one payment.
    await shop.pay(handle, plan.payable, event_id=f"ok-{plan.order_no}", payer_id="bob")
    await shop.order_status(plan.order_no, "PAID")
    (refund,) = await _settled(shop, plan.order_no, 1)
    assert (refund.payer_id, refund.amount, refund.reason) == ("carol", short, "refunded_mismatch")
    payments = await _rows(shop, Payment, Payment.order_no == plan.order_no)
    assert sorted((p.outcome, p.payer_id) for p in payments) == [
        ("applied", "bob"),
        ("refunded_mismatch", "carol"),
    ]
    final = await shop.order_row(plan.order_no)
    assert final is not None and final.payer_id == "bob"
    assert (final.paid, final.refunded) == (short + plan.payable, short)
    await check_invariants(shop.sessions)


async def test_orders_paid_by_their_buyer_name_the_buyer_as_payer(shop: Shop) -> None:
    """A payment event without a payer is the buyer's (webhooks need not send one)."""
    _, placement = await shop.paid_order(LINES)
    child = await shop.child(placement.plan.supplier_orders[1].id)
    await child.execute_update(
        SupplierOrderWorkflow.cancel, CancelSupplierOrder(actor=Actor.CUSTOMER, actor_id="alice")
    )
    (refund,) = await _settled(shop, placement.order_no, 1)
    async with shop.sessions() as s:
        order = await s.get(Order, placement.order_no)
        (payment,) = (
            await s.scalars(select(Payment).where(Payment.order_no == placement.order_no))
        ).all()
    assert order is not None and order.payer_id == payment.payer_id == refund.payer_id == "alice"
    # The buyer is told once, in the supplier order's own words, not as a payer.
    assert not await _rows(shop, Notification, Notification.dedupe_key == f"{refund.id}:payer")
    await check_invariants(shop.sessions)
