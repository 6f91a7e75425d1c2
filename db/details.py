"""An order record's details: its supplier orders with their sub-orders, items, packages and
after-sales requests, and its payments and refunds, for a whole page of orders at a time.

A page costs the same few statements however many orders it holds (`GET /orders/{no}`, the
order lists, `GET /admin/orders`, the web pages). What made them cheaper than the one SELECT
per table, built at each call, they replace (bench/README.md, "Admin search"):

- Each statement is built once, here, with the page's keys as one bound parameter (an array
  on PostgreSQL, see `_in_array`). A statement built per call was constructed and keyed for
  SQLAlchemy's cache every time.
- The children are found through their owners in SQL (`supplier_order_id IN (SELECT id FROM
  supplier_orders WHERE order_no ...)`), so the keys bound are the page's order numbers. A
  list of supplier order ids changed length from page to page, and every new length was a
  new statement for PostgreSQL to prepare (one more round trip) on each pooled connection.
- A row and its few children come in one statement (a supplier order and its sub-orders, a
  package and its lines). Not further: one statement for every kind of row (a UNION ALL, or
  outer joins on a "kind" column) measured slower than these on PostgreSQL, planning alone
  took 1 to 2 ms and the sparse rows cost more to read than the round trips they saved.
- No packages nor after-sales requests are looked for on a page where nothing has shipped
  (see `_load_parts`).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, String, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from db.tables import (
    AfterSale,
    Order,
    OrderItem,
    Package,
    PackageItem,
    Payment,
    Refund,
    SubOrder,
    SupplierOrder,
)


def natural_key(identifier: str) -> tuple[str, int]:
    """`<order>-<supplier>-10` sorts after `...-9`: ids end in a sequence number."""
    head, _, tail = identifier.rpartition("-")
    return (head, int(tail)) if tail.isdigit() else (identifier, -1)


@dataclass
class SupplierOrderDetail:
    """One supplier order with everything its record shows."""

    row: SupplierOrder
    sub_orders: list[SubOrder] = field(default_factory=list)
    items: list[OrderItem] = field(default_factory=list)
    packages: list[Package] = field(default_factory=list)
    package_items: dict[int, list[PackageItem]] = field(default_factory=dict)
    after_sales: list[AfterSale] = field(default_factory=list)


@dataclass
class OrderDetail:
    order: Order
    supplier_orders: list[SupplierOrderDetail]
    payments: list[Payment] = field(default_factory=list)
    refunds: list[Refund] = field(default_factory=list)


# --- statements ---------------------------------------------------------------------------

Among = Callable[[InstrumentedAttribute[str], str], ColumnElement[bool]]


def _in_list(column: InstrumentedAttribute[str], name: str) -> ColumnElement[bool]:
    """`column IN (...)`, one bound value per key."""
    return column.in_(bindparam(name, expanding=True))


def _in_array(column: InstrumentedAttribute[str], name: str) -> ColumnElement[bool]:
    """`column = ANY($1)`: PostgreSQL takes the keys as one array, where an IN list has its
    SQL rendered again at each execution with a cast per value (~0.15 ms a statement for a
    page of 20 orders, measured)."""
    return column == any_(bindparam(name, type_=ARRAY(String)))


@dataclass(frozen=True)
class _Parts:
    """What a supplier order holds, for the supplier orders `owned` picks."""

    items: Select[OrderItem]
    packages: Select[Package, PackageItem]  # a row per line (None: a package without)
    after_sales: Select[AfterSale]

    @classmethod
    def of(cls, owned: Callable[[InstrumentedAttribute[str]], ColumnElement[bool]]) -> "_Parts":
        return cls(
            items=select(OrderItem).where(owned(OrderItem.supplier_order_id)),
            packages=select(Package, PackageItem)
            .outerjoin(PackageItem, PackageItem.package_id == Package.id)
            .where(owned(Package.supplier_order_id)),
            after_sales=select(AfterSale).where(owned(AfterSale.supplier_order_id)),
        )


@dataclass(frozen=True)
class _Statements:
    """Every statement of the module, keyed by order numbers (`nos`) or by supplier order
    ids (`ids`)."""

    supplier_orders: Select[SupplierOrder, SubOrder]  # None: a supplier order without any
    sub_orders: Select[SubOrder]
    payments: Select[Payment]
    refunds: Select[Refund]
    of_orders: _Parts
    of_supplier_orders: _Parts

    @classmethod
    def build(cls, among: Among) -> "_Statements":
        owners = select(SupplierOrder.id).where(among(SupplierOrder.order_no, "nos"))
        return cls(
            supplier_orders=select(SupplierOrder, SubOrder)
            .outerjoin(SubOrder, SubOrder.supplier_order_id == SupplierOrder.id)
            .where(among(SupplierOrder.order_no, "nos")),
            sub_orders=select(SubOrder).where(among(SubOrder.supplier_order_id, "ids")),
            payments=select(Payment)
            .where(among(Payment.order_no, "nos"))
            .order_by(Payment.at, Payment.event_id),
            refunds=select(Refund)
            .where(among(Refund.order_no, "nos"))
            .order_by(Refund.created_at, Refund.id),
            of_orders=_Parts.of(lambda column: column.in_(owners)),
            of_supplier_orders=_Parts.of(lambda column: among(column, "ids")),
        )


_PORTABLE = _Statements.build(_in_list)
_BY_DIALECT = {"postgresql": _Statements.build(_in_array)}


def _statements(s: AsyncSession) -> _Statements:
    return _BY_DIALECT.get(s.get_bind().dialect.name, _PORTABLE)


# --- loading ------------------------------------------------------------------------------


async def _load_parts(
    s: AsyncSession,
    by_id: dict[str, SupplierOrderDetail],
    parts: _Parts,
    keys: dict[str, Any],
) -> None:
    """Items, packages and after-sales requests of `by_id`'s supplier orders, each list in
    the order the record shows it."""
    items = (await s.scalars(parts.items, keys)).all()
    for item in items:
        by_id[item.supplier_order_id].items.append(item)
    # A package is written in the transaction that adds its lines to the items' shipped_qty
    # (activities.fulfilment.record_shipment; a shipment has at least one line of qty > 0),
    # and an after-sales request is taken only for a fully shipped item, once its shipment
    # is in the read model (domain.supplier_rules.check_after_sale, under the workflow's
    # lock). So with nothing shipped on the page there is neither to look for.
    if any(item.shipped_qty > 0 for item in items):
        seen: set[int] = set()
        for pkg, link in await s.execute(parts.packages, keys):
            d = by_id[pkg.supplier_order_id]
            if pkg.id not in seen:
                seen.add(pkg.id)
                d.packages.append(pkg)
            if link is not None:
                d.package_items.setdefault(pkg.id, []).append(link)
        for a in (await s.scalars(parts.after_sales, keys)).all():
            by_id[a.supplier_order_id].after_sales.append(a)
    for d in by_id.values():
        d.sub_orders.sort(key=lambda x: natural_key(x.id))
        d.items.sort(key=lambda x: natural_key(x.id))
        d.packages.sort(key=lambda x: x.id)
        for links in d.package_items.values():
            links.sort(key=lambda x: natural_key(x.item_id))
        d.after_sales.sort(key=lambda x: (x.created_at, natural_key(x.id)))


async def supplier_order_details(
    s: AsyncSession, rows: Sequence[SupplierOrder]
) -> list[SupplierOrderDetail]:
    """`rows` with what each holds, in their order: 2 statements, 4 once something shipped."""
    details = [SupplierOrderDetail(row=r) for r in rows]
    by_id = {d.row.id: d for d in details}
    if not by_id:
        return details
    keys = {"ids": list(by_id)}
    statements = _statements(s)
    for sub in (await s.scalars(statements.sub_orders, keys)).all():
        by_id[sub.supplier_order_id].sub_orders.append(sub)
    await _load_parts(s, by_id, statements.of_supplier_orders, keys)
    return details


async def order_details(s: AsyncSession, orders: Sequence[Order]) -> list[OrderDetail]:
    """`orders` with their supplier orders (by id) and all they hold, payments and refunds:
    4 statements, 6 once something on the page shipped."""
    if not orders:
        return []
    keys = {"nos": [o.order_no for o in orders]}
    statements = _statements(s)
    by_id: dict[str, SupplierOrderDetail] = {}
    for row, sub in await s.execute(statements.supplier_orders, keys):
        d = by_id.get(row.id)
        if d is None:
            d = by_id[row.id] = SupplierOrderDetail(row=row)
        if sub is not None:
            d.sub_orders.append(sub)
    if by_id:
        await _load_parts(s, by_id, statements.of_orders, keys)
    out = {o.order_no: OrderDetail(order=o, supplier_orders=[]) for o in orders}
    for d in sorted(by_id.values(), key=lambda d: d.row.id):
        out[d.row.order_no].supplier_orders.append(d)
    for p in (await s.scalars(statements.payments, keys)).all():
        out[p.order_no].payments.append(p)
    for r in (await s.scalars(statements.refunds, keys)).all():
        out[r.order_no].refunds.append(r)
    return list(out.values())
