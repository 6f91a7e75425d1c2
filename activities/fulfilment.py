"""Supplier-order activities: shipping, tracking, receipt, reviews, cancel, reminders."""

from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity

from activities.base import DbActivities, log, notify, refresh_order_status
from activities.orders import add_refund, release_unshipped, return_coins
from db.session import append_row
from db.tables import (
    Order,
    OrderItem,
    Package,
    PackageItem,
    Product,
    Review,
    SupplierOrder,
    TrackingEventRow,
)
from domain.activity_params import (
    CancelSupplierOrderParams,
    DeadlineParams,
    EditTrackingParams,
    ReceiptParams,
    ReceiverParams,
    RefundRef,
    ReminderParams,
    ReviewParams,
    ShipmentParams,
    TrackingParams,
)
from domain.errors import NotFound
from domain.money import prorate
from domain.states import Actor, ItemStatus, SupplierOrderStatus, item_status
from domain.supplier_rules import VIRTUAL_METHOD


async def _supplier_order(s: AsyncSession, so_id: str) -> SupplierOrder:
    so = await s.get(SupplierOrder, so_id)
    if so is None:
        raise NotFound(f"unknown supplier order {so_id!r}")
    return so


async def _close_undelivered(
    s: AsyncSession, p: ReceiptParams, so: SupplierOrder, items: list[OrderItem]
) -> RefundRef:
    """Refund the unshipped units of `items` (shares cumulative over refunded_qty, as
    after-sales refunds are) and close the lines, releasing their reserved stock."""
    order = await s.get(Order, p.order_no)
    assert order is not None
    amount = coins = Decimal("0")
    closed: dict[str, int] = {}
    for item in items:
        before, after = item.refunded_qty, item.refunded_qty + item.qty - item.shipped_qty
        paid = item.line_total - item.coin_share
        amount += prorate(paid, after, item.qty) - prorate(paid, before, item.qty)
        coins += prorate(item.coin_share, after, item.qty) - prorate(
            item.coin_share, before, item.qty
        )
        item.refunded_qty = after
        closed[item.id] = item.qty - item.shipped_qty
    await release_unshipped(s, items)
    await return_coins(s, order, coins, "undelivered_refund", p.at)
    ref = RefundRef(amount=amount, coins=coins)
    if amount > 0:
        ref.refund_id = f"refund:{so.id}:undelivered"
        add_refund(
            s,
            order,
            ref.refund_id,
            amount,
            "undelivered",
            p.at,
            coins=coins,
            supplier_order_id=so.id,
        )
    log(
        s,
        p.order_no,
        "undelivered_closed",
        p.at,
        p.actor,
        p.actor_id,
        so.id,
        items=closed,
        amount=str(amount),
        coins=str(coins),
    )
    for side, who in (("customer", so.customer_id), ("supplier", so.supplier_id)):
        notify(
            s,
            f"{p.key}:undelivered:{side}",
            side,
            who,
            "undelivered_closed",
            p.order_no,
            f"{so.id}: receipt confirmed automatically with items never shipped; they are"
            f" closed and {amount} and {coins} coins refunded.",
            p.at,
            so.id,
        )
    return ref


class FulfilmentActivities(DbActivities):
    @activity.defn
    async def record_shipment(self, p: ShipmentParams) -> None:
        """A package leaves: shipped qty up, on-hand and reserved stock down."""

        async def work(s: AsyncSession) -> None:
            so = await _supplier_order(s, p.supplier_order_id)
            cmd = p.shipment
            virtual = cmd.method == VIRTUAL_METHOD
            package = Package(
                supplier_order_id=so.id,
                carrier=cmd.carrier,
                tracking_no=cmd.tracking_no,
                method=cmd.method,
                status="delivered" if virtual else "shipped",
                shipped_at=p.at,
                last_at=p.at if virtual else None,
            )
            s.add(package)
            await s.flush()
            shipped = {li.item_id for li in cmd.items}
            found = await s.scalars(select(OrderItem).where(OrderItem.id.in_(shipped)))
            items = {i.id: i for i in found}
            for line in sorted(cmd.items, key=lambda li: li.item_id):
                item = items.get(line.item_id)
                if item is None or item.supplier_order_id != so.id:
                    raise NotFound(f"item {line.item_id!r} is not part of {so.id}")
                item.shipped_qty += line.qty
                item.status = item_status(item.qty, item.shipped_qty)
                append_row(
                    s, PackageItem, {"package_id": package.id, "item_id": item.id, "qty": line.qty}
                )
                await s.execute(
                    update(Product)
                    .where(Product.sku == item.sku)
                    .values(
                        on_hand=Product.on_hand - line.qty, reserved=Product.reserved - line.qty
                    )
                    .execution_options(synchronize_session=False)  # no Product is loaded here
                )
            so.status = SupplierOrderStatus.PENDING_RECEIPT
            so.auto_confirm_at = p.auto_confirm_at
            detail = {
                "tracking_no": cmd.tracking_no,
                "carrier": cmd.carrier,
                "items": {li.item_id: li.qty for li in cmd.items},
            }
            log(s, p.order_no, "shipped", p.at, p.actor, p.actor_id, so.id, **detail)
            notify(
                s,
                f"{p.key}:customer",
                "customer",
                so.customer_id,
                "shipped",
                p.order_no,
                f"{so.id}: package {cmd.tracking_no} ({cmd.carrier}) is on its way.",
                p.at,
                so.id,
            )
            return None

        await self.once(p.key, "record_shipment", p.at, work)

    @activity.defn
    async def edit_tracking(self, p: EditTrackingParams) -> None:
        async def work(s: AsyncSession) -> None:
            pkg = await s.scalar(
                select(Package).where(
                    Package.supplier_order_id == p.supplier_order_id,
                    Package.tracking_no == p.edit.tracking_no,
                )
            )
            if pkg is None:
                raise NotFound(f"no package {p.edit.tracking_no!r} on {p.supplier_order_id}")
            pkg.tracking_no = p.edit.new_tracking_no
            if p.edit.carrier:
                pkg.carrier = p.edit.carrier
            log(
                s,
                p.order_no,
                "tracking_edited",
                p.at,
                p.actor,
                p.actor_id,
                p.supplier_order_id,
                old=p.edit.tracking_no,
                new=p.edit.new_tracking_no,
            )
            return None

        await self.once(p.key, "edit_tracking", p.at, work)

    @activity.defn
    async def change_receiver(self, p: ReceiverParams) -> None:
        async def work(s: AsyncSession) -> None:
            so = await _supplier_order(s, p.supplier_order_id)
            old = so.address
            so.address = p.address.model_dump(mode="json")
            log(
                s,
                p.order_no,
                "receiver_changed",
                p.at,
                p.actor,
                p.actor_id,
                so.id,
                old=old,
                new=so.address,
            )
            return None

        await self.once(p.key, "change_receiver", p.at, work)

    @activity.defn
    async def cancel_supplier_order(self, p: CancelSupplierOrderParams) -> RefundRef:
        """Close one paid supplier order: stock back, its coins back, its money refunded."""

        async def work(s: AsyncSession) -> dict[str, Any]:
            so = await _supplier_order(s, p.supplier_order_id)
            order = await s.get(Order, p.order_no)
            assert order is not None
            items = (
                await s.scalars(select(OrderItem).where(OrderItem.supplier_order_id == so.id))
            ).all()
            await release_unshipped(s, list(items))
            await return_coins(s, order, so.coin_share, f"supplier_order_{p.reason.lower()}", p.at)
            so.status = SupplierOrderStatus.CLOSED
            so.close_reason = p.reason
            so.closed_at = p.at
            ref = RefundRef(coins=so.coin_share)
            if so.payable > 0:
                ref.refund_id = f"refund:{so.id}:cancel"
                ref.amount = so.payable
                add_refund(
                    s,
                    order,
                    ref.refund_id,
                    so.payable,
                    p.reason.lower(),
                    p.at,
                    coins=so.coin_share,
                    supplier_order_id=so.id,
                )
            log(
                s,
                p.order_no,
                "supplier_order_cancelled",
                p.at,
                p.actor,
                p.actor_id,
                so.id,
                reason=p.reason,
            )
            # Tell the side that did not cancel.
            if p.actor is Actor.SUPPLIER:
                notify(
                    s,
                    f"{p.key}:customer",
                    "customer",
                    so.customer_id,
                    "supplier_cancelled",
                    p.order_no,
                    f"{so.id} was cancelled by the supplier; {so.payable} and {so.coin_share} coins "
                    "are on their way back.",
                    p.at,
                    so.id,
                )
            else:
                notify(
                    s,
                    f"{p.key}:supplier",
                    "supplier",
                    so.supplier_id,
                    "customer_cancelled",
                    p.order_no,
                    f"{so.id} was cancelled by the customer before shipping.",
                    p.at,
                    so.id,
                )
            await refresh_order_status(s, p.order_no, p.at)
            return ref.model_dump(mode="json")

        result = await self.once(p.key, "cancel_supplier_order", p.at, work)
        return RefundRef.model_validate(result)

    @activity.defn
    async def record_reminder(self, p: ReminderParams) -> None:
        async def work(s: AsyncSession) -> None:
            so = await _supplier_order(s, p.supplier_order_id)
            so.last_remind_at = p.at
            notify(
                s,
                f"{p.key}:supplier",
                "supplier",
                p.supplier_id,
                "ship_reminder",
                p.order_no,
                f"The customer asks you to ship {so.id}.",
                p.at,
                so.id,
            )
            log(s, p.order_no, "ship_reminder", p.at, p.actor, p.actor_id, so.id)
            return None

        await self.once(p.key, "record_reminder", p.at, work)

    @activity.defn
    async def move_deadline(self, p: DeadlineParams) -> None:
        async def work(s: AsyncSession) -> None:
            so = await _supplier_order(s, p.supplier_order_id)
            so.auto_confirm_at = p.auto_confirm_at
            if p.action == "extend_receipt":
                so.extended = True
            log(
                s,
                p.order_no,
                p.action,
                p.at,
                p.actor,
                p.actor_id,
                so.id,
                auto_confirm_at=p.auto_confirm_at.isoformat() if p.auto_confirm_at else None,
            )
            return None

        await self.once(p.key, "move_deadline", p.at, work)

    @activity.defn
    async def record_receipt(self, p: ReceiptParams) -> RefundRef | None:
        """Received. Lines still unshipped (auto-confirm only) close: stock released,
        their money and coins refunded; the refund, if any, is returned to be paid."""

        async def work(s: AsyncSession) -> dict[str, Any] | None:
            so = await _supplier_order(s, p.supplier_order_id)
            so.status = SupplierOrderStatus.PENDING_REVIEW
            so.received_at = p.at
            so.auto_confirm_at = None
            so.auto_review_at = p.auto_review_at
            action = "receipt_auto_confirmed" if p.auto else "receipt_confirmed"
            log(s, p.order_no, action, p.at, p.actor, p.actor_id, so.id)
            items = (
                await s.scalars(select(OrderItem).where(OrderItem.supplier_order_id == so.id))
            ).all()
            undelivered = [
                i for i in items if i.status != ItemStatus.CLOSED and i.shipped_qty < i.qty
            ]
            if not undelivered:
                return None
            return (await _close_undelivered(s, p, so, undelivered)).model_dump(mode="json")

        result = await self.once(p.key, "record_receipt", p.at, work)
        return RefundRef.model_validate(result) if result else None

    @activity.defn
    async def record_reviews(self, p: ReviewParams) -> None:
        async def work(s: AsyncSession) -> None:
            so = await _supplier_order(s, p.supplier_order_id)
            # Each review carries its product's SKU: the reviews centre lists them by SKU.
            reviewed = select(OrderItem.id, OrderItem.sku).where(
                OrderItem.id.in_([r.item_id for r in p.reviews])
            )
            skus = {item_id: sku for item_id, sku in (await s.execute(reviewed)).all()}
            for r in p.reviews:
                append_row(
                    s,
                    Review,
                    {
                        "item_id": r.item_id,
                        "sku": skus[r.item_id],
                        "supplier_order_id": so.id,
                        "rating": r.rating,
                        "text": r.text,
                        "auto": p.auto,
                        "at": p.at,
                    },
                )
            if p.completed:
                so.status = SupplierOrderStatus.COMPLETED
                so.completed_at = p.at
                so.auto_review_at = None
            action = "auto_reviewed" if p.auto else "reviewed"
            log(
                s,
                p.order_no,
                action,
                p.at,
                p.actor,
                p.actor_id,
                so.id,
                items=[r.item_id for r in p.reviews],
            )
            if p.completed:
                await refresh_order_status(s, p.order_no, p.at)
            return None

        await self.once(p.key, "record_reviews", p.at, work)

    @activity.defn
    async def record_tracking(self, p: TrackingParams) -> None:
        """A carrier scan: the package's last position (and delivered state)."""

        async def work(s: AsyncSession) -> None:
            ev = p.event
            pkg = await s.scalar(
                select(Package).where(
                    Package.supplier_order_id == p.supplier_order_id,
                    Package.tracking_no == ev.tracking_no,
                )
            )
            if pkg is None:
                raise NotFound(f"no package {ev.tracking_no!r} on {p.supplier_order_id}")
            if await s.get(TrackingEventRow, ev.event_id) is not None:
                return None
            s.add(
                TrackingEventRow(
                    event_id=ev.event_id,
                    package_id=pkg.id,
                    carrier=ev.carrier,
                    tracking_no=ev.tracking_no,
                    lat=ev.lat,
                    lon=ev.lon,
                    status=ev.status,
                    at=ev.at,
                )
            )
            # Scans can arrive out of order: only a newer one moves the package.
            applied = pkg.last_at is None or ev.at >= pkg.last_at or ev.status == "delivered"
            delivered = False
            if applied:
                pkg.last_lat, pkg.last_lon, pkg.last_at = ev.lat, ev.lon, ev.at
                if pkg.status != "delivered":
                    delivered = ev.status == "delivered"
                    pkg.status = "delivered" if delivered else "in_transit"
            # One entry per new scan (a resent event id returned above, unlogged); the
            # carrier is the actor, `at` is when it was applied, `scanned_at` the carrier's.
            log(
                s,
                p.order_no,
                "package_delivered" if delivered else "tracking_scanned",
                p.at,
                Actor.CARRIER,
                ev.carrier,
                p.supplier_order_id,
                event_id=ev.event_id,
                tracking_no=ev.tracking_no,
                status=ev.status,
                lat=ev.lat,
                lon=ev.lon,
                scanned_at=ev.at.isoformat(),
                applied=applied,
            )
            return None

        await self.once(p.key, "record_tracking", p.at, work)
