"""Read-model rows → response bodies (money as strings, times in UTC, package ETA)."""

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from db.queries import OrderDetail, SupplierOrderDetail, natural_key
from db.tables import (
    AfterSale,
    CartLine,
    Customer,
    Notification,
    Order,
    OrderItem,
    OrderLog,
    Package,
    Payment,
    Product,
    Refund,
)
from domain.actions import AfterSaleFacts, ItemFacts, SupplierOrderFacts, allowed_actions
from domain.geo import eta, haversine_km
from domain.messages import Deadlines, Placement
from domain.models import Address
from domain.money import money
from domain.states import (
    AfterSaleStatus,
    AfterSaleType,
    CloseReason,
    ItemStatus,
    OrderStatus,
    OrderType,
    ProductKind,
    SupplierOrderStatus,
    sub_order_status,
)
from starter.api import schemas as sc


def m(value: Decimal | int | str) -> str:
    return str(money(value))


def m_opt(value: Decimal | None) -> str | None:
    return None if value is None else m(value)


def utc(value: datetime) -> datetime:
    """SQLite hands datetimes back naive; everything the read model stores is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_opt(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)


def address(value: Mapping[str, Any] | None) -> Address | None:
    return Address.model_validate(value) if value else None


def _reason(value: str | None) -> CloseReason | None:
    return CloseReason(value) if value else None


# --- placement ----------------------------------------------------------------------------


def placed(p: Placement) -> sc.PlacedOrder:
    plan = p.plan
    return sc.PlacedOrder(
        order_no=p.order_no,
        order_type=plan.order_type,
        status=p.status,
        payable=m(plan.payable),
        pay_deadline=utc(p.pay_deadline),
        subtotal=m(plan.subtotal),
        postage=m(plan.postage),
        coins=m(plan.coins),
        supplier_orders=[
            sc.SupplierOrderPreview(
                id=so.id,
                supplier_id=so.supplier_id,
                status=SupplierOrderStatus.PENDING_PAYMENT,
                needs_address=so.needs_address,
                address=so.address,
                remark=so.remark,
                items=[
                    sc.ItemPreview(
                        item_id=i.item_id,
                        sku=i.sku,
                        name=i.name,
                        product_type=i.product_type,
                        kind=i.kind,
                        price=m(i.price),
                        qty=i.qty,
                        line_total=m(i.line_total),
                        source=i.source,
                    )
                    for i in so.items
                ],
                sub_orders=[
                    sc.SubOrderPreview(id=s.id, product_type=s.product_type, item_ids=s.item_ids)
                    for s in so.sub_orders
                ],
                subtotal=m(so.subtotal),
                postage=m(so.postage),
                coin_share=m(so.coin_share),
                payable=m(so.payable),
            )
            for so in plan.supplier_orders
        ],
    )


# --- supplier orders -----------------------------------------------------------------------------


def package(
    pkg: Package,
    items: list[sc.PackageItemOut],
    to: Address | None,
    speeds: Mapping[str, float],
) -> sc.PackageOut:
    location = None
    if pkg.last_lat is not None and pkg.last_lon is not None:
        location = sc.Location(lat=pkg.last_lat, lon=pkg.last_lon, at=utc_opt(pkg.last_at))
    distance: float | None = None
    arrival: datetime | None = None
    if pkg.status == "delivered":
        distance = 0.0
        arrival = utc_opt(pkg.last_at) or utc(pkg.shipped_at)
    elif location is not None and to is not None and to.lat is not None and to.lon is not None:
        distance = round(haversine_km(location.lat, location.lon, to.lat, to.lon), 3)
        arrival = eta(distance, pkg.method, location.at or utc(pkg.shipped_at), speeds)
    return sc.PackageOut(
        tracking_no=pkg.tracking_no,
        carrier=pkg.carrier,
        method=pkg.method,
        status=pkg.status,
        shipped_at=utc(pkg.shipped_at),
        items=items,
        location=location,
        distance_km=distance,
        eta=arrival,
    )


def _sub_orders(d: SupplierOrderDetail) -> list[sc.SubOrderOut]:
    """Sub-orders as the supplier sees them: the goods, without their catalog zone."""
    return [
        sc.SubOrderOut(
            id=sub.id,
            product_type=sub.product_type,
            status=sub.status,
            items=[sc.ItemOut(**i.model_dump(exclude={"source"})) for i in sub.items],
        )
        for sub in _order_sub_orders(d)
    ]


def _order_sub_orders(d: SupplierOrderDetail) -> list[sc.OrderSubOrderOut]:
    by_sub: dict[str, list[sc.OrderItemOut]] = {s.id: [] for s in d.sub_orders}
    for i in d.items:
        by_sub.setdefault(i.sub_order_id, []).append(
            sc.OrderItemOut(
                item_id=i.id,
                sku=i.sku,
                name=i.name,
                product_type=i.product_type,
                kind=ProductKind(i.kind),
                price=m(i.price),
                qty=i.qty,
                shipped_qty=i.shipped_qty,
                refunded_qty=i.refunded_qty,
                status=ItemStatus(i.status),
                source=i.source,
            )
        )
    types = {s.id: s.product_type for s in d.sub_orders}
    return [
        sc.OrderSubOrderOut(
            id=sub_id,
            product_type=types.get(sub_id, items[0].product_type if items else ""),
            status=sub_order_status(i.status for i in items),
            items=items,
        )
        for sub_id, items in sorted(by_sub.items(), key=lambda kv: natural_key(kv[0]))
    ]


def _packages(d: SupplierOrderDetail, speeds: Mapping[str, float]) -> list[sc.PackageOut]:
    to = address(d.row.address)
    return [
        package(
            p,
            [
                sc.PackageItemOut(item_id=link.item_id, qty=link.qty)
                for link in d.package_items.get(p.id, [])
            ],
            to,
            speeds,
        )
        for p in d.packages
    ]


def _after_sales(d: SupplierOrderDetail) -> list[sc.AfterSaleBrief]:
    return [
        sc.AfterSaleBrief(
            id=a.id,
            item_id=a.item_id,
            qty=a.qty,
            type=AfterSaleType(a.type),
            status=AfterSaleStatus(a.status),
            refund_amount=m_opt(a.refund_amount),
        )
        for a in d.after_sales
    ]


def deadlines(d: SupplierOrderDetail, live: Deadlines | None) -> sc.DeadlinesOut:
    if live is not None:
        return sc.DeadlinesOut(
            auto_confirm_at=utc_opt(live.auto_confirm_at),
            auto_review_at=utc_opt(live.auto_review_at),
            after_sales_until=utc_opt(live.after_sales_until),
            remind_allowed_at=utc_opt(live.remind_allowed_at),
            source="workflow",
        )
    return sc.DeadlinesOut(
        auto_confirm_at=utc_opt(d.row.auto_confirm_at),
        auto_review_at=utc_opt(d.row.auto_review_at),
        source="database",
    )


def supplier_order_facts(so: sc.SupplierOrderOut) -> SupplierOrderFacts:
    """The facts of a supplier order view that decide which commands it offers."""
    return SupplierOrderFacts(
        status=so.status,
        items=tuple(
            ItemFacts(
                item_id=i.item_id,
                sku=i.sku,
                qty=i.qty,
                shipped_qty=i.shipped_qty,
                closed=i.status is ItemStatus.CLOSED,
            )
            for sub in so.sub_orders
            for i in sub.items
        ),
        after_sales=tuple(
            AfterSaleFacts(id=a.id, item_id=a.item_id, qty=a.qty, type=a.type, status=a.status)
            for a in so.after_sales
        ),
        extended=so.extended,
        received_at=so.received_at,
        after_sales_until=so.deadlines.after_sales_until,
    )


def supplier_order(
    d: SupplierOrderDetail, speeds: Mapping[str, float], live: Deadlines | None = None
) -> sc.SupplierOrderOut:
    out = _supplier_order(d, speeds, live)
    out.actions = allowed_actions(supplier_order_facts(out), datetime.now(UTC))
    return out


def _supplier_order(
    d: SupplierOrderDetail, speeds: Mapping[str, float], live: Deadlines | None
) -> sc.SupplierOrderOut:
    r = d.row
    return sc.SupplierOrderOut(
        id=r.id,
        order_no=r.order_no,
        supplier_id=r.supplier_id,
        status=SupplierOrderStatus(r.status),
        close_reason=_reason(r.close_reason),
        needs_address=r.needs_address,
        address=address(r.address),
        remark=r.remark,
        subtotal=m(r.subtotal),
        postage=m(r.postage),
        coin_share=m(r.coin_share),
        payable=m(r.payable),
        created_at=utc(r.created_at),
        paid_at=utc_opt(r.paid_at),
        received_at=utc_opt(r.received_at),
        completed_at=utc_opt(r.completed_at),
        extended=r.extended,
        sub_orders=_order_sub_orders(d),
        packages=_packages(d, speeds),
        after_sales=_after_sales(d),
        deadlines=deadlines(d, live),
    )


def supplier_view(d: SupplierOrderDetail, speeds: Mapping[str, float]) -> sc.SupplierViewOut:
    """What the supplier sees: goods, receiver and shipping; no customer id, no coins."""
    r = d.row
    return sc.SupplierViewOut(
        id=r.id,
        order_no=r.order_no,
        supplier_id=r.supplier_id,
        status=SupplierOrderStatus(r.status),
        close_reason=_reason(r.close_reason),
        needs_address=r.needs_address,
        address=address(r.address),
        remark=r.remark,
        subtotal=m(r.subtotal),
        postage=m(r.postage),
        total=m(r.subtotal + r.postage),
        created_at=utc(r.created_at),
        paid_at=utc_opt(r.paid_at),
        received_at=utc_opt(r.received_at),
        completed_at=utc_opt(r.completed_at),
        sub_orders=_sub_orders(d),
        packages=_packages(d, speeds),
        after_sales=_after_sales(d),
        deadlines=deadlines(d, None),
    )


def order(
    d: OrderDetail,
    speeds: Mapping[str, float],
    live: Mapping[str, Deadlines] | None = None,
) -> sc.OrderOut:
    o = d.order
    live = live or {}
    return sc.OrderOut(
        order_no=o.order_no,
        customer_id=o.customer_id,
        order_type=OrderType(o.order_type),
        status=OrderStatus(o.status),
        close_reason=_reason(o.close_reason),
        subtotal=m(o.subtotal),
        postage=m(o.postage),
        coins=m(o.coins),
        payable=m(o.payable),
        paid=m(o.paid),
        refunded=m(o.refunded),
        coins_refunded=m(o.coins_refunded),
        payment_method=o.payment_method,
        payer_id=o.payer_id,
        pay_deadline=utc(o.pay_deadline),
        created_at=utc(o.created_at),
        paid_at=utc_opt(o.paid_at),
        closed_at=utc_opt(o.closed_at),
        supplier_orders=[
            supplier_order(so, speeds, live.get(so.row.id)) for so in d.supplier_orders
        ],
        payments=[payment(p) for p in d.payments],
        refunds=[refund(r) for r in d.refunds],
    )


def payment(p: Payment) -> sc.PaymentOut:
    return sc.PaymentOut(
        event_id=p.event_id,
        amount=m(p.amount),
        method=p.method,
        outcome=p.outcome,  # type: ignore[arg-type]  # the activity writes only these
        payer_id=p.payer_id,
        at=utc(p.at),
    )


def refund(r: Refund) -> sc.RefundOut:
    return sc.RefundOut(
        id=r.id,
        amount=m(r.amount),
        coins=m(r.coins),
        reason=r.reason,
        status=r.status,  # type: ignore[arg-type]  # pending | succeeded
        payer_id=r.payer_id,
        supplier_order_id=r.supplier_order_id,
        payment_event_id=r.payment_event_id,
        created_at=utc(r.created_at),
        settled_at=utc_opt(r.settled_at),
    )


def pay_request(o: Order, items: list[OrderItem]) -> sc.PayRequestOut:
    """A friend_pay order as the friend sees it: what to pay, nothing about the buyer."""
    return sc.PayRequestOut(
        amount=m(o.payable),
        items=[
            sc.PayRequestItem(
                sku=i.sku, name=i.name, qty=i.qty, price=m(i.price), line_total=m(i.line_total)
            )
            for i in sorted(items, key=lambda i: natural_key(i.id))
        ],
        deadline=utc(o.pay_deadline),
        status="PENDING_PAYMENT",
    )


# --- after-sales, catalog, accounts, inboxes ---------------------------------------------------------


def after_sale(a: AfterSale) -> sc.AfterSaleOut:
    return sc.AfterSaleOut(
        id=a.id,
        order_no=a.order_no,
        supplier_order_id=a.supplier_order_id,
        supplier_id=a.supplier_id,
        item_id=a.item_id,
        qty=a.qty,
        type=AfterSaleType(a.type),
        reason=a.reason,
        status=AfterSaleStatus(a.status),
        return_carrier=a.return_carrier,
        return_tracking_no=a.return_tracking_no,
        refund_amount=m_opt(a.refund_amount),
        refund_coins=m_opt(a.refund_coins),
        created_at=utc(a.created_at),
        updated_at=utc(a.updated_at),
    )


def product(p: Product) -> sc.ProductOut:
    return sc.ProductOut(
        sku=p.sku,
        name=p.name,
        supplier_id=p.supplier_id,
        product_type=p.product_type,
        kind=ProductKind(p.kind),
        price=m(p.price),
        on_hand=p.on_hand,
        reserved=p.reserved,
        available=max(p.on_hand - p.reserved, 0),
        active=p.active,
        updated_at=utc_opt(p.updated_at),
    )


def product_ref(p: Product) -> sc.ProductRef:
    return sc.ProductRef(
        sku=p.sku,
        name=p.name,
        supplier_id=p.supplier_id,
        product_type=p.product_type,
        kind=ProductKind(p.kind),
        price=m(p.price),
        available=max(p.on_hand - p.reserved, 0),
        active=p.active,
    )


def cart_line(line: CartLine, p: Product | None) -> sc.CartLineOut:
    return sc.CartLineOut(
        sku=line.sku,
        qty=line.qty,
        name=p.name if p else None,
        price=m(p.price) if p else None,
        supplier_id=p.supplier_id if p else None,
        active=bool(p and p.active),
        added_at=utc(line.added_at),
    )


def customer(c: Customer) -> sc.CustomerOut:
    return sc.CustomerOut(
        id=c.id, name=c.name, coins=m(c.coins), default_address=address(c.default_address)
    )


def log_entry(e: OrderLog) -> sc.LogEntry:
    return sc.LogEntry(
        id=e.id,
        at=utc(e.at),
        actor=e.actor,
        actor_id=e.actor_id,
        action=e.action,
        supplier_order_id=e.supplier_order_id,
        detail=e.detail or {},
    )


def notification(n: Notification) -> sc.NotificationOut:
    return sc.NotificationOut(
        id=n.id,
        recipient_type=n.recipient_type,
        recipient_id=n.recipient_id,
        kind=n.kind,
        order_no=n.order_no,
        supplier_order_id=n.supplier_order_id,
        body=n.body,
        at=utc(n.at),
        read=n.read,
    )
