"""Read-side queries of the HTTP API over the read model (DESIGN.md §5).

Pure reads: lists, supplier inboxes and order records come from here and never
from Temporal. An order record's details come from db/details.py (re-exported here):
a few statements for a whole page, so a page of N orders costs a constant number of
round trips.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, Subquery, func, or_, select, union
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from db.details import OrderDetail as OrderDetail
from db.details import SupplierOrderDetail as SupplierOrderDetail
from db.details import natural_key
from db.details import order_details as order_details
from db.details import supplier_order_details as supplier_order_details
from db.mappers import catalog_product, customer_account
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
    Review,
    SupplierOrder,
)
from domain.models import CatalogProduct, CustomerAccount
from domain.states import SupplierOrderStatus

# --- catalog and accounts -----------------------------------------------------------------


async def catalog(s: AsyncSession, skus: Iterable[str]) -> dict[str, CatalogProduct]:
    wanted = sorted(set(skus))
    if not wanted:
        return {}
    rows = (await s.scalars(select(Product).where(Product.sku.in_(wanted)))).all()
    return {r.sku: catalog_product(r) for r in rows}


async def products(s: AsyncSession, skus: Iterable[str]) -> dict[str, Product]:
    wanted = sorted(set(skus))
    if not wanted:
        return {}
    rows = (await s.scalars(select(Product).where(Product.sku.in_(wanted)))).all()
    return {r.sku: r for r in rows}


async def get_product(s: AsyncSession, sku: str) -> Product | None:
    return await s.get(Product, sku)


async def get_customer(s: AsyncSession, customer_id: str) -> Customer | None:
    return await s.get(Customer, customer_id)


async def account(s: AsyncSession, customer_id: str) -> CustomerAccount | None:
    row = await s.get(Customer, customer_id)
    return customer_account(row) if row else None


# --- orders -----------------------------------------------------------------------------------


async def get_order(s: AsyncSession, order_no: str) -> Order | None:
    return await s.get(Order, order_no)


async def get_supplier_order(s: AsyncSession, supplier_order_id: str) -> SupplierOrder | None:
    return await s.get(SupplierOrder, supplier_order_id)


async def list_orders(
    s: AsyncSession,
    customer_id: str | None,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[list[Order], int]:
    """Newest first. `status` matches the order's status or any of its supplier orders'."""
    query: Select[Order] = select(Order)
    if customer_id is not None:
        query = query.where(Order.customer_id == customer_id)
    if status is not None:
        children = select(SupplierOrder.order_no).where(SupplierOrder.status == status)
        query = query.where(or_(Order.status == status, Order.order_no.in_(children)))
    total = await s.scalar(select(func.count()).select_from(query.subquery()))
    rows = (
        await s.scalars(
            query.order_by(Order.created_at.desc(), Order.order_no.desc())
            .limit(limit)
            .offset(offset)
        )
    ).all()
    return list(rows), int(total or 0)


async def order_by_pay_token(s: AsyncSession, token_hash: str) -> Order | None:
    """The friend_pay order whose pay request token hashes to `token_hash`."""
    return await s.scalar(select(Order).where(Order.pay_token_hash == token_hash))


# --- supplier side ------------------------------------------------------------------------------


def _paid_supplier_orders(supplier_id: str | None) -> Select[SupplierOrder]:
    """A supplier never sees an unpaid order, nor one that closed before payment."""
    query = select(SupplierOrder).where(
        SupplierOrder.paid_at.is_not(None),
        SupplierOrder.status != SupplierOrderStatus.PENDING_PAYMENT,
    )
    if supplier_id is not None:
        query = query.where(SupplierOrder.supplier_id == supplier_id)
    return query


async def list_supplier_orders(
    s: AsyncSession,
    supplier_id: str | None,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[list[SupplierOrder], int]:
    query = _paid_supplier_orders(supplier_id)
    if status is not None:
        query = query.where(SupplierOrder.status == status)
    total = await s.scalar(select(func.count()).select_from(query.subquery()))
    rows = (
        await s.scalars(
            query.order_by(SupplierOrder.paid_at.desc(), SupplierOrder.id.desc())
            .limit(limit)
            .offset(offset)
        )
    ).all()
    return list(rows), int(total or 0)


def is_visible_to_supplier(row: SupplierOrder) -> bool:
    return row.paid_at is not None and row.status != SupplierOrderStatus.PENDING_PAYMENT


# --- after-sales, packages, payments ---------------------------------------------------------------


async def get_after_sale(s: AsyncSession, after_sale_id: str) -> AfterSale | None:
    return await s.get(AfterSale, after_sale_id)


async def package_by_tracking(s: AsyncSession, carrier: str, tracking_no: str) -> Package | None:
    return await s.scalar(
        select(Package).where(Package.carrier == carrier, Package.tracking_no == tracking_no)
    )


async def get_payment(s: AsyncSession, event_id: str) -> Payment | None:
    return await s.get(Payment, event_id)


# --- inboxes, log, cart ------------------------------------------------------------------------------


async def list_notifications(
    s: AsyncSession,
    recipient_type: str | None,
    recipient_id: str | None,
    order_no: str | None,
    limit: int,
    offset: int,
) -> tuple[list[Notification], int]:
    query = select(Notification)
    if recipient_type is not None:
        query = query.where(Notification.recipient_type == recipient_type)
    if recipient_id is not None:
        query = query.where(Notification.recipient_id == recipient_id)
    if order_no is not None:
        query = query.where(Notification.order_no == order_no)
    total = await s.scalar(select(func.count()).select_from(query.subquery()))
    rows = (
        await s.scalars(query.order_by(Notification.id.desc()).limit(limit).offset(offset))
    ).all()
    return list(rows), int(total or 0)


async def order_log(s: AsyncSession, order_no: str) -> list[OrderLog]:
    rows = await s.scalars(
        select(OrderLog).where(OrderLog.order_no == order_no).order_by(OrderLog.id)
    )
    return list(rows.all())


async def cart(s: AsyncSession, customer_id: str) -> list[tuple[CartLine, Product | None]]:
    lines = (
        await s.scalars(
            select(CartLine)
            .where(CartLine.customer_id == customer_id)
            .order_by(CartLine.added_at, CartLine.sku)
        )
    ).all()
    found = await products(s, (line.sku for line in lines))
    return [(line, found.get(line.sku)) for line in lines]


async def order_items(s: AsyncSession, order_no: str) -> list[OrderItem]:
    rows = await s.scalars(select(OrderItem).where(OrderItem.order_no == order_no))
    return sorted(rows.all(), key=lambda i: natural_key(i.id))


def money_or_zero(value: Decimal | None) -> Decimal:
    return value if value is not None else Decimal("0")


# --- catalog list (shop) ------------------------------------------------------------------------


def _like_pattern(text: str) -> str:
    """`%text%` for LIKE, with the wildcards the customer typed taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def list_products(
    s: AsyncSession,
    supplier_id: str | None,
    q: str | None,
    limit: int,
    after_sku: str | None,
) -> tuple[list[Product], str | None]:
    """Active products in SKU order after `after_sku` (keyset paging).

    `q` matches the name or the SKU, case-insensitively. Returns the page and the SKU to
    continue after (None on the last page).
    """
    query = select(Product).where(Product.active.is_(True))
    if supplier_id:
        query = query.where(Product.supplier_id == supplier_id)
    if q:
        pattern = _like_pattern(q)
        query = query.where(
            or_(Product.name.ilike(pattern, escape="\\"), Product.sku.ilike(pattern, escape="\\"))
        )
    if after_sku is not None:
        query = query.where(Product.sku > after_sku)
    rows = list((await s.scalars(query.order_by(Product.sku).limit(limit + 1))).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, rows[-1].sku if more else None


async def catalog_suppliers(s: AsyncSession) -> list[str]:
    """Suppliers with something on sale, for the shop's filter."""
    rows = await s.scalars(
        select(Product.supplier_id)
        .where(Product.active.is_(True))
        .distinct()
        .order_by(Product.supplier_id)
    )
    return list(rows.all())


# --- reviews centre ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ProductReview:
    """One review as the reviews centre shows it, with its reviewer's display name."""

    item_id: str
    rating: int
    text: str
    auto: bool
    at: datetime
    reviewer_name: str  # the customer's name ("" when none is set); never their account id


ReviewKey = tuple[datetime, str]
"""(at, item_id) of the last review of a page: where the next one starts."""


async def product_reviews(
    s: AsyncSession, sku: str, limit: int, after: ReviewKey | None = None
) -> tuple[list[ProductReview], ReviewKey | None]:
    """A product's reviews newest first (at, then item id), after `after`.

    Keyset paging on ix_reviews_sku_at_item: a page costs the same however many reviews the
    product has and however deep the page. Returns the page and the key to continue after
    (None on the last page).
    """
    query = (
        select(
            Review.item_id,
            Review.rating,
            Review.text,
            Review.auto,
            Review.at,
            func.coalesce(Customer.name, ""),
        )
        .join(SupplierOrder, SupplierOrder.id == Review.supplier_order_id)
        .outerjoin(Customer, Customer.id == SupplierOrder.customer_id)
        .where(Review.sku == sku)
    )
    if after is not None:
        at, item_id = after
        query = query.where(Review.at <= at, or_(Review.at < at, Review.item_id < item_id))
    query = query.order_by(Review.at.desc(), Review.item_id.desc()).limit(limit + 1)
    rows = [ProductReview(*row) for row in (await s.execute(query)).all()]
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, (rows[-1].at, rows[-1].item_id)


# --- admin search -----------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderSearch:
    """What the admin search filters on; None: any."""

    # The order's status, or any of its supplier orders' (only the supplier's own supplier
    # orders when `supplier_id` is given too: both filters then speak of the same one).
    status: str | None = None
    customer_id: str | None = None
    supplier_id: str | None = None
    order_no: str | None = None
    created_from: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive
    order_type: str | None = None  # self | friend_pay | activity


OrderKey = tuple[datetime, str]
"""(created_at, order_no) of the last order of a page: where the next one starts."""


def _order_filters(f: OrderSearch) -> list[ColumnElement[bool]]:
    """The conditions on the order's own row (number, customer, type)."""
    where = []
    if f.order_no is not None:
        where.append(Order.order_no == f.order_no)
    if f.customer_id is not None:
        where.append(Order.customer_id == f.customer_id)
    if f.order_type is not None:
        where.append(Order.order_type == f.order_type)
    return where


def _window(
    at: InstrumentedAttribute[datetime],
    no: InstrumentedAttribute[str],
    f: OrderSearch,
    after: OrderKey | None,
) -> list[ColumnElement[bool]]:
    """The creation window and the keyset, on (at, no): an order's or its supplier order's."""
    where = []
    if f.created_from is not None:
        where.append(at >= f.created_from)
    if f.created_before is not None:
        where.append(at < f.created_before)
    if after is not None:
        last_at, last_no = after
        # `at <= last` bounds the index range; the OR settles ties on the timestamp.
        where += [at <= last_at, or_(at < last_at, no < last_no)]
    return where


def _newest(
    f: OrderSearch,
    after: OrderKey | None,
    n: int,
    part_status: str | None,
    order_status: str | None,
) -> Select[*tuple[Any, ...]]:
    """(created_at, order_no) of the next `n` matching orders, newest first, found along one
    index: the orders' own, or (with a supplier or a supplier order status) the supplier
    orders', whose (created_at, order_no) are their order's (written together at placement;
    one supplier order per order and supplier)."""
    on_orders = _order_filters(f)
    if order_status is not None:
        on_orders.append(Order.status == order_status)
    if f.supplier_id is None and part_status is None:
        return (
            select(Order.created_at, Order.order_no)
            .where(*on_orders, *_window(Order.created_at, Order.order_no, f, after))
            .order_by(Order.created_at.desc(), Order.order_no.desc())
            .limit(n)
        )
    so = SupplierOrder
    query = select(so.created_at.label("created_at"), so.order_no.label("order_no"))
    if f.supplier_id is not None:
        query = query.where(so.supplier_id == f.supplier_id)
    else:
        query = query.distinct()  # one row per order, however many of its parts match
    if part_status is not None:
        query = query.where(so.status == part_status)
    if on_orders:
        query = query.join(Order, Order.order_no == so.order_no).where(*on_orders)
    return (
        query.where(*_window(so.created_at, so.order_no, f, after))
        .order_by(so.created_at.desc(), so.order_no.desc())
        .limit(n)
    )


def _matching(f: OrderSearch, after: OrderKey | None, n: int) -> Subquery:
    """(created_at, order_no) of the next `n` orders matching `f` after `after`, newest first.

    Every branch walks one index in (created_at, order_no) order and stops after `n` rows,
    so a page costs about the same however deep it is and however many orders there are:
    orders (created_at, order_no), (customer_id, …) or (order_type, …); supplier orders
    (supplier_id, created_at, …). A status matches the order's or any of its supplier
    orders' (with a supplier: that supplier's), so it takes two walks, orders (status, …)
    and supplier orders (status, …) or (supplier_id, status, …), each at most `n` long,
    merged: an EXISTS probed order by order walked every order placed since the last match
    (hundreds of ms for a status or a supplier with few orders, at a million orders).
    """
    if f.status is None:
        return _newest(f, after, n, None, None).subquery()
    both = union(
        select(*_newest(f, after, n, None, f.status).subquery().c),
        select(*_newest(f, after, n, f.status, None).subquery().c),
    ).subquery()
    return (
        select(both.c.created_at, both.c.order_no)
        .order_by(both.c.created_at.desc(), both.c.order_no.desc())
        .limit(n)
        .subquery()
    )


async def search_orders(
    s: AsyncSession, f: OrderSearch, limit: int, after: OrderKey | None = None
) -> tuple[list[Order], OrderKey | None]:
    """Orders matching `f`, newest first (created_at, then order_no), after `after`.

    Keyset paging on the (created_at, order_no) index: a page costs the same however deep
    it is, and orders placed meanwhile never shift it. Returns the page and the key to
    continue after (None on the last page).
    """
    keys = _matching(f, after, limit + 1)
    query = (
        select(Order)
        .join(keys, keys.c.order_no == Order.order_no)
        .order_by(Order.created_at.desc(), Order.order_no.desc())
    )
    rows = list((await s.scalars(query)).all())
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, (rows[-1].created_at, rows[-1].order_no)


EXPORT_COLUMNS: tuple[str, ...] = (
    "order_no",
    "supplier_order_id",
    "supplier_id",
    "customer_id",
    "order_type",
    "status",  # the order's
    "supplier_order_status",
    "payable",  # payable, paid, refunded, created_at, paid_at: the order's, as GET
    "paid",  # /orders/{no} shows them (the same on each of its supplier orders' rows)
    "refunded",
    "created_at",
    "paid_at",
    "supplier_order_payable",  # this supplier's part of `payable`
)


async def export_batch(
    s: AsyncSession, f: OrderSearch, orders: int, after: OrderKey | None = None
) -> tuple[Sequence[Row[*tuple[Any, ...]]], OrderKey | None]:
    """The supplier orders of the next `orders` orders matching `f` after `after`.

    The same orders, in the same order, as `search_orders` pages through, each with its
    supplier orders (with `f.supplier_id` only that supplier's), as rows of EXPORT_COLUMNS.
    One query of plain columns (no ORM objects, no JSON plan, no list of ids to bind): the
    cost per row stays flat. Returns the rows and the key to continue after (None once the
    orders are exhausted).
    """
    keys = _matching(f, after, orders)
    part = SupplierOrder
    query = (
        select(
            Order.order_no,
            part.id,
            part.supplier_id,
            Order.customer_id,
            Order.order_type,
            Order.status,
            part.status,
            Order.payable,
            Order.paid,
            Order.refunded,
            Order.created_at,
            Order.paid_at,
            part.payable,
        )
        .select_from(keys)
        .join(Order, Order.order_no == keys.c.order_no)
        .join(part, part.order_no == Order.order_no)
        .order_by(Order.created_at.desc(), Order.order_no.desc(), part.id)
    )
    if f.supplier_id is not None:
        query = query.where(part.supplier_id == f.supplier_id)
    rows = (await (await s.connection()).execute(query)).all()  # Core: no ORM on the way
    # Every order found has a row (a supplier order, of that supplier with a supplier_id):
    # fewer orders than asked for means there are no more.
    if len({row[0] for row in rows}) < orders:
        return rows, None
    return rows, (rows[-1][10], rows[-1][0])
