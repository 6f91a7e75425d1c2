"""db.details: an order page's details in a few statements, whatever the page's size, and the
very rows, lists and order that one SELECT per table gave (the reference below is that code).

On SQLite and on a real PostgreSQL (whose statements differ: an array parameter there).
"""

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db import queries
from db.details import OrderDetail, SupplierOrderDetail, natural_key
from db.session import write_session
from db.tables import (
    AfterSale,
    Base,
    Order,
    OrderItem,
    Package,
    PackageItem,
    Payment,
    Refund,
    SubOrder,
    SupplierOrder,
)
from tests.support.read_model import empty_read_model

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
async def sessions(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with empty_read_model(request.param, request, tmp_path) as factory:
        await _seed(factory)
        yield factory


# --- the reference: one SELECT per table, as order_details was written first -------------------


async def reference_supplier_order_details(
    s: AsyncSession, rows: Sequence[SupplierOrder]
) -> list[SupplierOrderDetail]:
    details = [SupplierOrderDetail(row=r) for r in rows]
    by_id = {d.row.id: d for d in details}
    if not by_id:
        return details
    ids = list(by_id)
    for sub in (await s.scalars(select(SubOrder).where(SubOrder.supplier_order_id.in_(ids)))).all():
        by_id[sub.supplier_order_id].sub_orders.append(sub)
    for item in (
        await s.scalars(select(OrderItem).where(OrderItem.supplier_order_id.in_(ids)))
    ).all():
        by_id[item.supplier_order_id].items.append(item)
    packages = (await s.scalars(select(Package).where(Package.supplier_order_id.in_(ids)))).all()
    for pkg in packages:
        by_id[pkg.supplier_order_id].packages.append(pkg)
    owner = {p.id: by_id[p.supplier_order_id] for p in packages}
    links = (
        await s.scalars(select(PackageItem).where(PackageItem.package_id.in_(list(owner))))
    ).all()
    for link in links:
        owner[link.package_id].package_items.setdefault(link.package_id, []).append(link)
    for a in (await s.scalars(select(AfterSale).where(AfterSale.supplier_order_id.in_(ids)))).all():
        by_id[a.supplier_order_id].after_sales.append(a)
    for d in details:
        d.sub_orders.sort(key=lambda x: natural_key(x.id))
        d.items.sort(key=lambda x: natural_key(x.id))
        d.packages.sort(key=lambda x: x.id)
        for group in d.package_items.values():
            group.sort(key=lambda x: natural_key(x.item_id))
        d.after_sales.sort(key=lambda x: (x.created_at, natural_key(x.id)))
    return details


async def reference_order_details(s: AsyncSession, orders: Sequence[Order]) -> list[OrderDetail]:
    if not orders:
        return []
    nos = [o.order_no for o in orders]
    rows = (await s.scalars(select(SupplierOrder).where(SupplierOrder.order_no.in_(nos)))).all()
    details = await reference_supplier_order_details(s, sorted(rows, key=lambda r: r.id))
    out = {o.order_no: OrderDetail(order=o, supplier_orders=[]) for o in orders}
    for d in details:
        out[d.row.order_no].supplier_orders.append(d)
    payments = await s.scalars(
        select(Payment).where(Payment.order_no.in_(nos)).order_by(Payment.at, Payment.event_id)
    )
    for p in payments.all():
        out[p.order_no].payments.append(p)
    refunds = await s.scalars(
        select(Refund).where(Refund.order_no.in_(nos)).order_by(Refund.created_at, Refund.id)
    )
    for r in refunds.all():
        out[r.order_no].refunds.append(r)
    return list(out.values())


def _row(obj: Base) -> tuple[Any, ...]:
    return (type(obj).__name__, *(getattr(obj, c.key) for c in obj.__table__.columns))


def _supplier_order(d: SupplierOrderDetail) -> Any:
    return (
        _row(d.row),
        [_row(x) for x in d.sub_orders],
        [_row(x) for x in d.items],
        [_row(x) for x in d.packages],
        {k: [_row(x) for x in v] for k, v in d.package_items.items()},
        [_row(x) for x in d.after_sales],
    )


def _order(d: OrderDetail) -> Any:
    return (
        _row(d.order),
        [_supplier_order(so) for so in d.supplier_orders],
        [_row(x) for x in d.payments],
        [_row(x) for x in d.refunds],
    )


# --- data ---------------------------------------------------------------------------------------


def _at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _new_order(no: str, status: str = "PAID") -> Order:
    return Order(
        order_no=no,
        customer_id="alice",
        status=status,
        subtotal=Decimal("30.00"),
        postage=Decimal("6.00"),
        coins=Decimal("0"),
        payable=Decimal("36.00"),
        paid=Decimal("36.00"),
        pay_deadline=_at(15),
        created_at=_at(0),
        plan={},
    )


def _new_supplier_order(no: str, supplier: str, status: str) -> SupplierOrder:
    return SupplierOrder(
        id=f"{no}-{supplier}",
        order_no=no,
        supplier_id=supplier,
        customer_id="alice",
        status=status,
        needs_address=True,
        address={
            "name": "A",
            "phone": "1",
            "region": "R",
            "address": "X",
            "lat": 31.2,
            "lon": 121.4,
        },
        subtotal=Decimal("15.00"),
        postage=Decimal("3.00"),
        coin_share=Decimal("0"),
        payable=Decimal("18.00"),
        created_at=_at(0),
        paid_at=_at(2),
    )


def _new_item(so: SupplierOrder, sub: SubOrder, n: int, shipped: int) -> OrderItem:
    return OrderItem(
        id=f"{so.id}-{n}",
        order_no=so.order_no,
        supplier_order_id=so.id,
        sub_order_id=sub.id,
        sku=f"sku-{n}",
        name=f"Item {n}",
        product_type=sub.product_type,
        kind="physical",
        price=Decimal("2.50"),
        qty=2,
        shipped_qty=shipped,
        line_total=Decimal("5.00"),
        coin_share=Decimal("0"),
        status="SHIPPED" if shipped == 2 else "PENDING_SHIPMENT",
    )


async def _seed(sessions: async_sessionmaker[AsyncSession]) -> None:
    """O1: two supplier orders, one shipped in two packages (plus a package without lines)
    with after-sales, ids that sort naturally (i10 after i9), payments and refunds whose times
    tie; O2: nothing shipped, nothing paid; O3: one shipment, a payment, a refund; O4: rows of
    an order no page here asks for."""
    async with write_session(sessions) as s:
        for no in ("O1", "O3", "O4"):
            s.add(_new_order(no))
        s.add(_new_order("O2", status="PENDING_PAYMENT"))
        await s.flush()
        shipped: dict[str, list[OrderItem]] = {}
        for no, supplier, status, subs, count in (
            ("O1", "sup-2", "PENDING_RECEIPT", 2, 11),
            ("O1", "sup-10", "PENDING_SHIPMENT", 1, 1),
            ("O2", "sup-1", "PENDING_PAYMENT", 1, 2),
            ("O3", "sup-1", "PENDING_RECEIPT", 1, 1),
            ("O4", "sup-1", "PENDING_RECEIPT", 1, 1),
        ):
            so = _new_supplier_order(no, supplier, status)
            s.add(so)
            await s.flush()
            groups = [
                SubOrder(id=f"{so.id}-{k}", supplier_order_id=so.id, product_type=f"t{k}")
                for k in (90, 100)[:subs]
            ]
            s.add_all(groups)
            await s.flush()
            ship = status == "PENDING_RECEIPT"
            made = [
                _new_item(so, groups[n % subs], n, 2 if ship else 0) for n in range(1, count + 1)
            ]
            s.add_all(made)
            if ship:
                shipped[so.id] = made
        await s.flush()
        for so_id, made in shipped.items():
            lines = [made[1:], made[:1]] if len(made) > 1 else [made]
            for k, group in enumerate(lines):
                pkg = Package(
                    supplier_order_id=so_id,
                    carrier="sf",
                    tracking_no=f"{so_id}-p{k}",
                    method="express",
                    status="shipped",
                    last_lat=31.0,
                    last_lon=121.0,
                    last_at=_at(60),
                    shipped_at=_at(30 + k),
                )
                s.add(pkg)
                await s.flush()
                s.add_all(PackageItem(package_id=pkg.id, item_id=i.id, qty=2) for i in group)
        s.add(
            Package(
                supplier_order_id="O1-sup-2",
                carrier="sf",
                tracking_no="bare",
                method="express",
                shipped_at=_at(40),
            )
        )
        for so_id, n, item in (("O1-sup-2", 10, 9), ("O1-sup-2", 9, 10), ("O3-sup-1", 1, 1)):
            s.add(
                AfterSale(
                    id=f"{so_id}-as{n}",
                    order_no=so_id[:2],
                    supplier_order_id=so_id,
                    supplier_id=so_id[3:],
                    customer_id="alice",
                    item_id=f"{so_id}-{item}",
                    qty=1,
                    type="refund_only",
                    reason="",
                    status="REQUESTED",
                    created_at=_at(90),
                    updated_at=_at(90),
                )
            )
        for no, event_id, outcome in (
            ("O1", "pay-b", "applied"),
            ("O1", "pay-a", "failed"),
            ("O3", "pay-c", "applied"),
            ("O4", "pay-d", "applied"),
        ):
            s.add(
                Payment(
                    event_id=event_id,
                    order_no=no,
                    status="succeeded",
                    amount=Decimal("36.00"),
                    method="card",
                    outcome=outcome,
                    at=_at(2),
                )
            )
        for no, refund_id in (("O1", "r-b"), ("O1", "r-a"), ("O3", "r-c"), ("O4", "r-d")):
            s.add(
                Refund(
                    id=refund_id,
                    order_no=no,
                    supplier_order_id=f"{no}-sup-1",
                    amount=Decimal("5.00"),
                    method="card",
                    reason="after_sale_refund_only",
                    created_at=_at(95),
                )
            )


# --- tests --------------------------------------------------------------------------------------


class Selects:
    """SELECT statements sent through an engine while counting."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.count = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # Not SQLite's BEGIN (db/session.py opens read transactions itself).
        if statement.lstrip().upper().startswith("SELECT"):
            self.count += 1


async def _orders(s: AsyncSession, nos: Sequence[str]) -> list[Order]:
    rows = {o.order_no: o for o in await s.scalars(select(Order).where(Order.order_no.in_(nos)))}
    return [rows[no] for no in nos]


async def _supplier_orders(s: AsyncSession, ids: Sequence[str]) -> list[SupplierOrder]:
    found = await s.scalars(select(SupplierOrder).where(SupplierOrder.id.in_(ids)))
    rows = {r.id: r for r in found}
    return [rows[i] for i in ids]


@pytest.mark.parametrize(
    ("nos", "selects"),
    [
        (["O3", "O2", "O1"], 6),  # something shipped: packages and after-sales looked for
        (["O1"], 6),
        (["O2"], 4),  # nothing shipped: neither looked for
        ([], 0),
    ],
)
async def test_order_details_are_the_rows_one_select_per_table_gave_in_a_few_selects(
    sessions: async_sessionmaker[AsyncSession], nos: list[str], selects: int
) -> None:
    engine = sessions.kw["bind"]
    async with sessions() as s:
        expected = [_order(d) for d in await reference_order_details(s, await _orders(s, nos))]
    async with sessions() as s:
        orders = await _orders(s, nos)
        counted = Selects(engine)
        details = await queries.order_details(s, orders)
        got = [_order(d) for d in details]

    assert counted.count == selects  # the same for a page of any size: no SELECT per table
    assert got == expected
    if "O1" in nos:  # the page has what a statement could lose or misorder
        o1 = next(d for d in details if d.order.order_no == "O1")
        assert [so.row.id for so in o1.supplier_orders] == ["O1-sup-10", "O1-sup-2"]  # by id
        shipped = o1.supplier_orders[1]
        assert [sub.id for sub in shipped.sub_orders] == ["O1-sup-2-90", "O1-sup-2-100"]
        assert [i.id for i in shipped.items][-3:] == ["O1-sup-2-9", "O1-sup-2-10", "O1-sup-2-11"]
        assert len(shipped.packages) == 3 and len(shipped.package_items) == 2  # one bare
        assert len(shipped.after_sales) == 2
        assert [p.event_id for p in o1.payments] == ["pay-a", "pay-b"]
        assert [r.id for r in o1.refunds] == ["r-a", "r-b"]


@pytest.mark.parametrize(
    ("ids", "selects"),
    [
        (["O3-sup-1", "O1-sup-2", "O2-sup-1", "O1-sup-10"], 4),
        (["O2-sup-1"], 2),
        ([], 0),
    ],
)
async def test_supplier_order_details_are_the_rows_one_select_per_table_gave(
    sessions: async_sessionmaker[AsyncSession], ids: list[str], selects: int
) -> None:
    engine = sessions.kw["bind"]
    async with sessions() as s:
        rows = await _supplier_orders(s, ids)
        expected = [_supplier_order(d) for d in await reference_supplier_order_details(s, rows)]
    async with sessions() as s:
        rows = await _supplier_orders(s, ids)
        counted = Selects(engine)
        got = [_supplier_order(d) for d in await queries.supplier_order_details(s, rows)]

    assert counted.count == selects
    assert got == expected  # in the order of `rows`
