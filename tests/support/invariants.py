"""Read-model invariants every scenario must leave true (DESIGN.md §3, §5).

- stock: per product, reserved == sum of unshipped qty of open order lines;
- coins: per customer, balance == sum of the coin ledger; per order, the ledger took
  exactly the order's coins, and gave back exactly the coin shares of what was closed
  or refunded (a closed order: all of them; a cancelled supplier order: its share;
  refunded units: their cumulative share), computed from the supplier orders and
  items, never from the refund rows;
- money: per supplier order, the money paid for it == what it keeps (computed from
  its items, their refunded qty and its postage) + its settled refunds; a cancelled
  supplier order refunded exactly its payable; money the order never owed (wrong
  amount, duplicate, late) was refunded in full, to whoever paid it;
- money per order (DESIGN.md §11): `paid` counts every payment received (applied and
  refunded_*), `refunded` every refund settled, and money in == money kept + money
  refunded, the kept part computed from the supplier orders as above; the same holds per
  payer (the order's payer keeps what the order keeps; a friend's payment the order did not
  need went back whole to that friend); every refund names its payer, who is notified
  when not the buyer; coins always go back to the buyer;
- supplier inbox: each paid supplier order got exactly one paid-order notice;
- operation log (DESIGN.md §3 "every change appends an operation-log entry"): each
  payment and refund row, each closed order and supplier order, and each supplier-order
  step reached (shipped, received, reviewed, reminded, extended) and after-sales state
  has its entry, with the action, time and details the activities write.
"""

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.tables import (
    AfterSale,
    CoinLedger,
    Customer,
    Notification,
    Order,
    OrderItem,
    OrderLog,
    Package,
    Payment,
    Product,
    Refund,
    Review,
    SupplierOrder,
)
from domain.models import OrderPlan
from domain.money import prorate
from domain.states import AfterSaleStatus, ItemStatus, OrderStatus, SupplierOrderStatus

if TYPE_CHECKING:
    from domain.messages import Placement
    from tests.support.shop import Shop

ZERO = Decimal(0)
# Ledger reasons under which coins of refunded units (after-sales, lines closed
# undelivered at auto-confirm) come back; both follow the cumulative prorate rule.
UNIT_REFUND_REASONS = ("after_sale_refund", "undelivered_refund")


async def check_invariants(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as s:
        await _stock(s)
        await _coins(s)
        await _money(s)
        for order in (await s.scalars(select(Order).order_by(Order.order_no))).all():
            kept = await money_per_supplier_order(s, order)
            await money_per_order(s, order, kept)
            await _coins_returned(s, order)
        await _inbox(s)
        await _operation_log(s)


async def check_order_invariants(
    sessions: async_sessionmaker[AsyncSession], order_nos: "Iterable[str]"
) -> None:
    """The per-order invariants (money per supplier order, per order and per payer, refunds
    and payers, coins returned, operation log) of the given orders only: for a suite whose
    shared database other tests also shape by hand (the API tests' admin search does)."""
    async with sessions() as s:
        for no in order_nos:
            order = await s.get(Order, no)
            assert order is not None, f"no order {no}"
            kept = await money_per_supplier_order(s, order)
            await money_per_order(s, order, kept)
            await _money_of(s, order)
            await _coins_returned(s, order)
            entries = await s.scalars(
                select(OrderLog).where(OrderLog.order_no == no).order_by(OrderLog.id)
            )
            await _order_log(s, order, _Log(no, list(entries.all())))


async def assert_money_per_supplier_order(shop: "Shop", placement: "Placement") -> None:
    """paid == kept + refunded for each supplier order of `placement`, to the cent
    (check_invariants runs this for every order; scenarios call it to pin one down)."""
    async with shop.sessions() as s:
        order = await s.get(Order, placement.order_no)
        assert order is not None
        assert OrderPlan.model_validate(order.plan) == placement.plan
        await money_per_supplier_order(s, order)


def _is_paid(order: Order) -> bool:
    return order.paid_at is not None


async def money_per_supplier_order(s: AsyncSession, order: Order) -> Decimal:
    """paid == kept + refunded for each supplier order of `order`, to the cent; returns
    what the order keeps (the sum over its supplier orders).

    What a supplier order keeps is the money part of every unit not refunded plus the
    money part of its postage; after-sales and undelivered refunds give back exactly the
    rest. A supplier order cancelled after payment keeps nothing: it refunded exactly its
    payable. An order closed unpaid took no money, so nothing was refunded for it.
    """
    plan = OrderPlan.model_validate(order.plan)
    paid = _is_paid(order)
    paid_total = kept_total = ZERO
    assert sum((so.payable for so in plan.supplier_orders), ZERO) == plan.payable
    for so_plan in plan.supplier_orders:
        so = await s.get(SupplierOrder, so_plan.id)
        assert so is not None, f"{so_plan.id}: no supplier order row"
        assert (so.payable, so.coin_share) == (so_plan.payable, so_plan.coin_share), so.id
        refunds = (await s.scalars(select(Refund).where(Refund.supplier_order_id == so.id))).all()
        assert all(r.status == "succeeded" for r in refunds), f"{so.id}: refund not settled"
        assert all(r.payment_event_id is None for r in refunds), so.id
        items = (
            await s.scalars(select(OrderItem).where(OrderItem.supplier_order_id == so.id))
        ).all()
        assert {i.id for i in items} == {i.item_id for i in so_plan.items}, so.id
        refunded = sum((r.amount for r in refunds), ZERO)
        back_coins = sum((r.coins for r in refunds), ZERO)
        paid_for_it = so.payable if paid else ZERO
        if not paid:
            assert so.paid_at is None, f"{so.id}: paid while its order is not"
            assert not refunds, f"{so.id}: refunded money it never took"
            kept = ZERO
        elif so.status == SupplierOrderStatus.CLOSED:
            assert so.close_reason in ("USER_CANCELLED", "SUPPLIER_CANCELLED"), (
                f"{so.id}: closed after payment for {so.close_reason}"
            )
            assert all(i.shipped_qty == 0 for i in items), f"{so.id}: cancelled after shipping"
            kept = ZERO
            assert refunded == so.payable, f"{so.id}: cancelled, refunded {refunded}"
            if refunds:
                assert back_coins == so.coin_share, f"{so.id}: refund rows coins {back_coins}"
        else:
            kept = sum(
                (
                    (i.line_total - i.coin_share)
                    - prorate(i.line_total - i.coin_share, i.refunded_qty, i.qty)
                    for i in items
                ),
                ZERO,
            ) + (so_plan.postage - so_plan.postage_coin_share)
            assert back_coins == sum(
                (prorate(i.coin_share, i.refunded_qty, i.qty) for i in items), ZERO
            ), f"{so.id}: refund rows give back {back_coins} coins"
        assert paid_for_it == kept + refunded, f"{so.id}: {paid_for_it} != {kept} + {refunded}"
        paid_total += paid_for_it
        kept_total += kept
    applied = order.payable if paid else ZERO
    assert applied == paid_total, f"{order.order_no}: paid for {applied} != {paid_total}"
    return kept_total


RECEIVED = ("applied", "refunded_mismatch", "refunded_duplicate", "refunded_late")


async def money_per_order(s: AsyncSession, order: Order, kept: Decimal) -> None:
    """Money in == money kept + money refunded, for the order and for each of its payers.

    In: every payment received (`paid`). Kept: what the supplier orders keep, computed from
    their items (`money_per_supplier_order`). Refunded: every refund settled (`refunded`).
    The order's payer is whoever paid the applied payment; any other payer was refunded all
    they paid.
    """
    no = order.order_no
    payments = (await s.scalars(select(Payment).where(Payment.order_no == no))).all()
    refunds = (await s.scalars(select(Refund).where(Refund.order_no == no))).all()
    received = [p for p in payments if p.status == "succeeded" and p.outcome in RECEIVED]
    money_in = sum((p.amount for p in received), ZERO)
    money_back = sum((r.amount for r in refunds if r.status == "succeeded"), ZERO)
    assert order.paid == money_in, f"{no}: paid {order.paid} != received {money_in}"
    assert order.refunded == money_back, f"{no}: refunded {order.refunded} != {money_back}"
    assert money_in == kept + money_back, f"{no}: in {money_in} != {kept} + {money_back}"

    payer_in: dict[str, Decimal] = defaultdict(Decimal)
    payer_back: dict[str, Decimal] = defaultdict(Decimal)
    for p in received:
        assert p.payer_id is not None, f"payment {p.event_id}: no payer"
        payer_in[p.payer_id] += p.amount
    for r in refunds:
        assert r.payer_id is not None, f"refund {r.id}: no payer"
        payer_back[r.payer_id] += r.amount
    expected_kept = {order.payer_id: kept} if order.payer_id is not None else {}
    for payer in set(payer_in) | set(payer_back) | set(expected_kept):
        assert payer_in[payer] == expected_kept.get(payer, ZERO) + payer_back[payer], (
            f"{no}: payer {payer} paid {payer_in[payer]}, kept "
            f"{expected_kept.get(payer, ZERO)}, got back {payer_back[payer]}"
        )
    for r in refunds:
        if r.payer_id != order.customer_id:
            told = await s.scalar(
                select(func.count())
                .select_from(Notification)
                .where(
                    Notification.dedupe_key == f"{r.id}:payer",
                    Notification.recipient_type == "customer",
                    Notification.recipient_id == r.payer_id,
                )
            )
            assert told == 1, f"refund {r.id}: payer {r.payer_id} not told"


async def _coins_returned(s: AsyncSession, order: Order) -> None:
    """The coin ledger of one order against the coin shares of what was closed/refunded."""
    sos = (
        await s.scalars(select(SupplierOrder).where(SupplierOrder.order_no == order.order_no))
    ).all()
    assert sum((so.coin_share for so in sos), ZERO) == order.coins, order.order_no
    rows = (await s.scalars(select(CoinLedger).where(CoinLedger.order_no == order.order_no))).all()
    spent = [r for r in rows if r.delta < 0]
    assert [(r.reason, -r.delta) for r in spent] == (
        [("order_submitted", order.coins)] if order.coins > 0 else []
    ), f"{order.order_no}: coins taken {[(r.reason, r.delta) for r in spent]}"
    returned: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        if r.delta > 0:
            returned["unit refunds" if r.reason in UNIT_REFUND_REASONS else r.reason] += r.delta
    expected: dict[str, Decimal] = defaultdict(Decimal)
    if not _is_paid(order):
        if order.status == OrderStatus.CLOSED:
            assert order.close_reason is not None
            expected[f"order_closed_{order.close_reason.lower()}"] = sum(
                (so.coin_share for so in sos), ZERO
            )
    else:
        for so in sos:
            if so.status == SupplierOrderStatus.CLOSED:
                assert so.close_reason is not None
                expected[f"supplier_order_{so.close_reason.lower()}"] += so.coin_share
            else:
                items = (
                    await s.scalars(select(OrderItem).where(OrderItem.supplier_order_id == so.id))
                ).all()
                expected["unit refunds"] += sum(
                    (prorate(i.coin_share, i.refunded_qty, i.qty) for i in items), ZERO
                )
    want = {k: v for k, v in expected.items() if v != 0}
    assert dict(returned) == want, f"{order.order_no}: coins back {dict(returned)} != {want}"
    assert order.coins_refunded == sum(returned.values(), ZERO), order.order_no


async def _stock(s: AsyncSession) -> None:
    unshipped: dict[str, int] = defaultdict(int)
    for item in (await s.scalars(select(OrderItem))).all():
        if item.status != ItemStatus.CLOSED:
            unshipped[item.sku] += item.qty - item.shipped_qty
    for p in (await s.scalars(select(Product))).all():
        assert p.reserved == unshipped[p.sku], (
            f"{p.sku}: reserved {p.reserved} != unshipped open qty {unshipped[p.sku]}"
        )
        assert p.reserved >= 0 and p.on_hand >= p.reserved, f"{p.sku}: {p.on_hand=} {p.reserved=}"


async def _coins(s: AsyncSession) -> None:
    ledger = dict(
        (
            await s.execute(
                select(CoinLedger.customer_id, func.sum(CoinLedger.delta)).group_by(
                    CoinLedger.customer_id
                )
            )
        ).all()
    )
    for c in (await s.scalars(select(Customer))).all():
        assert c.coins == Decimal(ledger.get(c.id, 0)), (
            f"{c.id}: {c.coins} != ledger {ledger.get(c.id)}"
        )
        assert c.coins >= 0
    for o in (await s.scalars(select(Order))).all():
        assert 0 <= o.coins_refunded <= o.coins, (
            f"{o.order_no}: coins back {o.coins_refunded} > {o.coins}"
        )


async def _money(s: AsyncSession) -> None:
    for o in (await s.scalars(select(Order))).all():
        await _money_of(s, o)


async def _money_of(s: AsyncSession, o: Order) -> None:
    refunds = (await s.scalars(select(Refund).where(Refund.order_no == o.order_no))).all()
    for r in refunds:
        assert r.status == "succeeded", f"refund {r.id} not settled"
        # A refund gives back either a payment the order never owed or money a
        # supplier order kept; nothing else.
        assert (r.payment_event_id is None) != (r.supplier_order_id is None), r.id
        if r.payment_event_id is None:
            # Money the order kept goes back to whoever paid the order.
            assert r.payer_id == o.payer_id, f"refund {r.id} to {r.payer_id}, not the payer"
    applied = (
        await s.scalars(
            select(Payment).where(Payment.order_no == o.order_no, Payment.outcome == "applied")
        )
    ).all()
    assert len(applied) <= 1, f"{o.order_no}: payment applied {len(applied)} times"
    assert bool(applied) == _is_paid(o), f"{o.order_no}: paid_at without a payment"
    if applied:
        assert applied[0].amount == o.payable, f"{o.order_no}: applied {applied[0].amount}"
        payer = applied[0].payer_id
        assert payer is not None and o.payer_id == payer, f"{o.order_no}: payer {o.payer_id}"
    else:
        assert o.payer_id is None, f"{o.order_no}: a payer but no payment"
    # Money not owed goes back whole, to whoever paid it.
    for p in (
        await s.scalars(
            select(Payment).where(
                Payment.order_no == o.order_no, Payment.outcome.like("refunded_%")
            )
        )
    ).all():
        back = [r for r in refunds if r.payment_event_id == p.event_id]
        assert len(back) == 1 and back[0].amount == p.amount, f"payment {p.event_id} not refunded"
        assert back[0].payer_id == p.payer_id, f"payment {p.event_id} refunded to another"


async def _inbox(s: AsyncSession) -> None:
    paid = (await s.scalars(select(SupplierOrder).where(SupplierOrder.paid_at.is_not(None)))).all()
    for so in paid:
        n = await s.scalar(
            select(func.count())
            .select_from(Notification)
            .where(
                Notification.supplier_order_id == so.id,
                Notification.recipient_type == "supplier",
                Notification.kind == "order_paid",
            )
        )
        assert n == 1, f"{so.id}: {n} paid-order notices to the supplier"


# --- operation log ----------------------------------------------------------------------


class _Log:
    """The operation log of one order, with strict look-ups."""

    def __init__(self, order_no: str, entries: list[OrderLog]) -> None:
        self.order_no = order_no
        self.entries = entries

    def find(
        self, action: str | tuple[str, ...], supplier_order_id: str | None = None, **detail: Any
    ) -> list[OrderLog]:
        actions = (action,) if isinstance(action, str) else action
        return [
            e
            for e in self.entries
            if e.action in actions
            and e.supplier_order_id == supplier_order_id
            and all(e.detail.get(k) == v for k, v in detail.items())
        ]

    def one(
        self, action: str | tuple[str, ...], supplier_order_id: str | None = None, **detail: Any
    ) -> OrderLog:
        found = self.find(action, supplier_order_id, **detail)
        where = f" on {supplier_order_id}" if supplier_order_id else ""
        assert len(found) == 1, (
            f"{self.order_no}: {len(found)} log entries {action}{where} {detail or ''}; "
            f"log: {[(e.action, e.supplier_order_id, e.detail) for e in self.entries]}"
        )
        return found[0]


def _amounts(entry: OrderLog, *keys: str) -> tuple[Decimal, ...]:
    return tuple(Decimal(entry.detail[k]) for k in keys)


async def _operation_log(s: AsyncSession) -> None:
    by_order: dict[str, list[OrderLog]] = defaultdict(list)
    for e in (await s.scalars(select(OrderLog).order_by(OrderLog.id))).all():
        by_order[e.order_no].append(e)
    for order in (await s.scalars(select(Order).order_by(Order.order_no))).all():
        log = _Log(order.order_no, by_order.pop(order.order_no, []))
        await _order_log(s, order, log)
    # Unmatched payments (the API's fallback) are the only entries without an order row.
    for order_no, entries in by_order.items():
        assert {e.action for e in entries} <= {"payment_unmatched"}, (
            f"log entries for unknown order {order_no}: {[e.action for e in entries]}"
        )


async def _order_log(s: AsyncSession, order: Order, log: _Log) -> None:
    sos = {
        so.id: so
        for so in (
            await s.scalars(select(SupplierOrder).where(SupplierOrder.order_no == order.order_no))
        ).all()
    }
    for e in log.entries:
        assert e.supplier_order_id is None or e.supplier_order_id in sos, (
            f"log {e.id}: {e.supplier_order_id} is not part of {order.order_no}"
        )

    submitted = log.one("order_submitted")
    assert (submitted.actor, submitted.actor_id, submitted.at) == (
        "customer",
        order.customer_id,
        order.created_at,
    )

    # Every payment row, whatever its outcome (applied, failed, refunded_*, unmatched).
    payments = (await s.scalars(select(Payment).where(Payment.order_no == order.order_no))).all()
    for p in payments:
        entry = log.one(f"payment_{p.outcome}", event_id=p.event_id)
        assert _amounts(entry, "amount") == (p.amount,), entry.detail
        assert entry.detail.get("payer_id") == p.payer_id, entry.detail  # names the payer

    # Every refund row: written together with the entry of the change that owes it.
    refunds = (await s.scalars(select(Refund).where(Refund.order_no == order.order_no))).all()
    for r in refunds:
        if r.payment_event_id is not None:
            payment = await s.get(Payment, r.payment_event_id)
            assert payment is not None and payment.outcome.startswith("refunded_"), r.id
            log.one(f"payment_{payment.outcome}", event_id=r.payment_event_id)
        elif r.after_sale_id is not None:
            entry = log.one(
                "after_sale_refunded", r.supplier_order_id, after_sale_id=r.after_sale_id
            )
            assert _amounts(entry, "amount", "coins") == (r.amount, r.coins), entry.detail
        elif r.reason == "undelivered":
            entry = log.one("undelivered_closed", r.supplier_order_id)
            assert _amounts(entry, "amount", "coins") == (r.amount, r.coins), entry.detail
        else:
            so = sos[r.supplier_order_id or ""]
            assert so.close_reason is not None and r.reason == so.close_reason.lower(), r.id
            log.one("supplier_order_cancelled", so.id, reason=so.close_reason)

    # The order's own terminal states.
    if order.status == OrderStatus.CLOSED:
        closed = log.one("order_closed")
        assert closed.at == order.closed_at, f"{order.order_no}: closed {order.closed_at}"
        if order.close_reason is not None:
            assert closed.detail.get("reason") == order.close_reason, closed.detail
    else:
        assert not log.find("order_closed"), f"{order.order_no}: closed in the log only"
    if order.status == OrderStatus.FINISHED:
        log.one("order_finished")
    else:
        assert not log.find("order_finished"), f"{order.order_no}: finished in the log only"

    for so in sos.values():
        await _supplier_order_log(s, order, so, log)

    after_sales = (
        await s.scalars(select(AfterSale).where(AfterSale.order_no == order.order_no))
    ).all()
    for a in after_sales:
        log.one("after_sale_requested", a.supplier_order_id, after_sale_id=a.id)
        own = [
            e
            for e in log.entries
            if e.action.startswith("after_sale_") and e.detail.get("after_sale_id") == a.id
        ]
        last = own[-1]
        assert last.action == f"after_sale_{a.status.lower()}", (
            f"{a.id} is {a.status}, its last entry is {last.action}"
        )
        assert last.at == a.updated_at, f"{a.id}: updated {a.updated_at}, logged {last.at}"
        if a.status != AfterSaleStatus.REQUESTED:
            log.one(f"after_sale_{a.status.lower()}", a.supplier_order_id, after_sale_id=a.id)


async def _supplier_order_log(s: AsyncSession, order: Order, so: SupplierOrder, log: _Log) -> None:
    if so.status == SupplierOrderStatus.CLOSED:
        if _is_paid(order):
            entry = log.one("supplier_order_cancelled", so.id)
            assert entry.detail.get("reason") == so.close_reason, entry.detail
            expected_actor = "supplier" if so.close_reason == "SUPPLIER_CANCELLED" else "customer"
            assert entry.actor in (expected_actor, "admin"), (so.id, entry.actor)
        else:
            # Closed with its unpaid parent: the order's entry says why.
            entry = log.one("order_closed")
            assert entry.detail.get("reason") == so.close_reason, entry.detail
        assert entry.at == so.closed_at, f"{so.id}: closed {so.closed_at}, logged {entry.at}"
    else:
        assert not log.find("supplier_order_cancelled", so.id), f"{so.id}: cancelled in log only"

    # Shipped: one entry per package, and the entries account for every shipped unit.
    packages = (await s.scalars(select(Package).where(Package.supplier_order_id == so.id))).all()
    shipped = log.find("shipped", so.id)
    assert len(shipped) == len(packages), (
        f"{so.id}: {len(packages)} packages, {len(shipped)} logged"
    )
    logged_qty: dict[str, int] = defaultdict(int)
    for e in shipped:
        for item_id, qty in e.detail["items"].items():
            logged_qty[item_id] += qty
    items = (await s.scalars(select(OrderItem).where(OrderItem.supplier_order_id == so.id))).all()
    assert {i.id: i.shipped_qty for i in items if i.shipped_qty} == dict(logged_qty), (
        f"{so.id}: shipped {[(i.id, i.shipped_qty) for i in items]}, logged {dict(logged_qty)}"
    )
    reached_shipping = so.status in (
        SupplierOrderStatus.PENDING_RECEIPT,
        SupplierOrderStatus.PENDING_REVIEW,
        SupplierOrderStatus.COMPLETED,
    )
    assert not reached_shipping or shipped, f"{so.id}: {so.status} without a shipped entry"

    # Received (by the customer or automatically at the deadline).
    receipts = log.find(("receipt_confirmed", "receipt_auto_confirmed"), so.id)
    if so.received_at is None:
        assert not receipts, f"{so.id}: receipt logged but not recorded"
    else:
        assert len(receipts) == 1, f"{so.id}: received, {len(receipts)} receipt entries"
        receipt = receipts[0]
        assert receipt.at == so.received_at, f"{so.id}: received {so.received_at} != {receipt.at}"
        if receipt.action == "receipt_auto_confirmed":
            assert receipt.actor == "system"

    # Reviewed: every review row is in exactly one entry; completion is the last one.
    reviews = log.find(("reviewed", "auto_reviewed"), so.id)
    reviewed_items = [i for e in reviews for i in e.detail["items"]]
    rows = (await s.scalars(select(Review).where(Review.supplier_order_id == so.id))).all()
    assert sorted(reviewed_items) == sorted(r.item_id for r in rows), (
        f"{so.id}: reviews {[r.item_id for r in rows]}, logged {reviewed_items}"
    )
    if so.status == SupplierOrderStatus.COMPLETED:
        assert reviews and reviews[-1].at == so.completed_at, f"{so.id}: completion not logged"
    for e in reviews:
        if e.action == "auto_reviewed":
            assert e.actor == "system"

    if so.last_remind_at is not None:
        assert any(e.at == so.last_remind_at for e in log.find("ship_reminder", so.id)), (
            f"{so.id}: last reminder {so.last_remind_at} not logged"
        )
    if so.extended:
        log.one("extend_receipt", so.id)
    else:
        assert not log.find("extend_receipt", so.id), f"{so.id}: extension logged only"
