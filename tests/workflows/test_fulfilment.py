"""Fulfilment rules of a supplier order (DESIGN.md sections 2 and 3) on the time-skipping server.

Packages and partial shipments, tracking numbers, receiver changes, virtual goods,
carrier scans, reminders, receipt extension and per-item reviews. Every scenario
checks the workflow snapshot and the read-model rows, and ends with the invariants.
(Auto-confirm from the last tracking number and the all-items auto-review live in
test_supplier_order.py.)
"""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from db.session import write_session
from db.tables import (
    Customer,
    Notification,
    OrderItem,
    OrderLog,
    Package,
    PackageItem,
    Product,
    Refund,
    Review,
    TrackingEventRow,
)
from domain.messages import (
    ChangeReceiver,
    ConfirmReceipt,
    EditTracking,
    ExtendReceipt,
    Placement,
    RemindShipment,
    ShipItems,
    ShipLine,
    SubmitReview,
    SupplierOrderSnapshot,
    TrackingEvent,
)
from domain.models import Address
from domain.money import prorate
from domain.policy import Policy
from tests.support.invariants import check_invariants
from tests.support.shop import Shop, eventually
from workflows.supplier_order import SupplierOrderWorkflow

SO = WorkflowHandle[SupplierOrderWorkflow, Any]


# --- helpers ------------------------------------------------------------------------


def sid(placement: Placement, supplier: str) -> str:
    return f"{placement.order_no}-{supplier}"


def item_ids(placement: Placement, supplier: str) -> dict[str, str]:
    """sku → item id of one supplier order."""
    return {i.sku: i.item_id for i in placement.plan.supplier_order(sid(placement, supplier)).items}


async def snap(handle: SO) -> SupplierOrderSnapshot:
    return await handle.query(SupplierOrderWorkflow.snapshot)


async def ship(
    handle: SO, tracking: str, lines: dict[str, int], method: str = "standard", carrier: str = "sf"
) -> SupplierOrderSnapshot:
    return await handle.execute_update(
        SupplierOrderWorkflow.ship,
        ShipItems(
            carrier=carrier,
            tracking_no=tracking,
            method=method,
            items=[ShipLine(item_id=i, qty=q) for i, q in lines.items()],
        ),
    )


async def refused(coro: Any, code: str) -> ApplicationError:
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await coro
    cause = err.value.cause
    assert isinstance(cause, ApplicationError), cause
    assert cause.type == code, f"{cause.type}: {cause.message}"
    return cause


async def rows(shop: Shop, table: Any, *where: Any, order_by: Any = None) -> list[Any]:
    async with shop.sessions() as s:
        stmt = select(table).where(*where)
        if order_by is not None:
            stmt = stmt.order_by(order_by)
        return list((await s.scalars(stmt)).all())


async def count(shop: Shop, table: Any, *where: Any) -> int:
    async with shop.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(table).where(*where)) or 0)


async def product(shop: Shop, sku: str) -> tuple[int, int]:
    async with shop.sessions() as s:
        p = await s.get(Product, sku)
        assert p is not None
        return p.on_hand, p.reserved


async def items_by_id(shop: Shop, so_id: str) -> dict[str, OrderItem]:
    return {i.id: i for i in await rows(shop, OrderItem, OrderItem.supplier_order_id == so_id)}


async def packages(shop: Shop, so_id: str) -> dict[str, tuple[Package, dict[str, int]]]:
    """tracking_no → (package row, {item_id: qty}) from packages + package_items."""
    out: dict[str, tuple[Package, dict[str, int]]] = {}
    for p in await rows(shop, Package, Package.supplier_order_id == so_id):
        lines = await rows(shop, PackageItem, PackageItem.package_id == p.id)
        out[p.tracking_no] = (p, {li.item_id: li.qty for li in lines})
    return out


async def log_actions(shop: Shop, so_id: str) -> list[str]:
    entries = await rows(shop, OrderLog, OrderLog.supplier_order_id == so_id, order_by=OrderLog.id)
    return [e.action for e in entries]


def view(s: SupplierOrderSnapshot, item_id: str) -> tuple[int, str]:
    (item,) = [i for i in s.items if i.item_id == item_id]
    return item.shipped_qty, item.status


# --- packages and partial shipments ---------------------------------------------------


async def test_packages_partial_shipments_and_stock(shop: Shop) -> None:
    _, placement = await shop.paid_order([("tea-green", 2), ("tea-black", 1), ("pot-clay", 1)])
    so_id = sid(placement, "s1")
    child = await shop.child(so_id)
    ids = item_ids(placement, "s1")
    green, black, pot = ids["tea-green"], ids["tea-black"], ids["pot-clay"]
    assert await product(shop, "tea-green") == (100, 2)

    # One item of qty 2 in two packages, one unit each.
    first = await ship(child, "P1", {green: 1})
    assert first.status == "PENDING_RECEIPT"
    assert view(first, green) == (1, "PARTIALLY_SHIPPED")
    assert view(first, black) == (0, "PENDING_SHIPMENT")
    so_row = await shop.supplier_order_row(so_id)
    assert so_row is not None and so_row.status == "PENDING_RECEIPT"
    db_items = await items_by_id(shop, so_id)
    assert (db_items[green].shipped_qty, db_items[green].status) == (1, "PARTIALLY_SHIPPED")
    assert await product(shop, "tea-green") == (99, 1)

    second = await ship(child, "P2", {green: 1})
    assert view(second, green) == (2, "SHIPPED")
    assert await product(shop, "tea-green") == (98, 0)

    # Two items in one package.
    third = await ship(child, "P3", {black: 1, pot: 1})
    assert [p.tracking_no for p in third.packages] == ["P1", "P2", "P3"]
    assert third.packages[2].items == {black: 1, pot: 1}
    assert all(view(third, i)[1] == "SHIPPED" for i in (green, black, pot))
    assert await product(shop, "tea-black") == (99, 0)
    assert await product(shop, "pot-clay") == (19, 0)

    pkgs = await packages(shop, so_id)
    assert {t: lines for t, (_, lines) in pkgs.items()} == {
        "P1": {green: 1},
        "P2": {green: 1},
        "P3": {black: 1, pot: 1},
    }
    assert {p.status for p, _ in pkgs.values()} == {"shipped"}
    db_items = await items_by_id(shop, so_id)
    assert {(i.shipped_qty, i.status) for i in db_items.values()} == {
        (2, "SHIPPED"),
        (1, "SHIPPED"),
    }
    assert (await log_actions(shop, so_id)).count("shipped") == 3
    shipped_notes = await rows(
        shop, Notification, Notification.supplier_order_id == so_id, Notification.kind == "shipped"
    )
    assert len(shipped_notes) == 3 and {n.recipient_type for n in shipped_notes} == {"customer"}
    await check_invariants(shop.sessions)


async def test_shipping_refusals_change_nothing(shop: Shop) -> None:
    _, placement = await shop.paid_order([("tea-green", 2), ("pot-clay", 1)])
    _, other = await shop.paid_order([("cup-white", 1)])
    so_id = sid(placement, "s1")
    child = await shop.child(so_id)
    green = item_ids(placement, "s1")["tea-green"]
    await ship(child, "P1", {green: 1})
    before = await snap(child)

    # Same tracking number twice on this order; more than is left unshipped; an item
    # listed twice; the same carrier + tracking number as another order's package.
    await refused(ship(child, "P1", {green: 1}), "conflict")
    cause = await refused(ship(child, "P9", {green: 2}), "invalid_input")
    assert "only 1 left" in cause.message
    await refused(
        child.execute_update(
            SupplierOrderWorkflow.ship,
            ShipItems(
                carrier="sf",
                tracking_no="P8",
                items=[ShipLine(item_id=green, qty=1), ShipLine(item_id=green, qty=1)],
            ),
        ),
        "invalid_input",
    )
    await refused(ship(child, "P7", {"nope": 1}), "not_found")
    cup = item_ids(other, "s2")["cup-white"]
    other_child = await shop.child(sid(other, "s2"))
    await ship(other_child, "SHARED-1", {cup: 1})
    await refused(ship(child, "SHARED-1", {green: 1}), "conflict")
    await refused(
        child.execute_update(
            SupplierOrderWorkflow.edit_tracking,
            EditTracking(tracking_no="P1", new_tracking_no="SHARED-1"),
        ),
        "conflict",
    )

    after = await snap(child)
    assert after == before
    assert view(after, green) == (1, "PARTIALLY_SHIPPED")
    assert list(await packages(shop, so_id)) == ["P1"]
    assert (await items_by_id(shop, so_id))[green].shipped_qty == 1
    assert await product(shop, "tea-green") == (99, 1)
    assert (await log_actions(shop, so_id)).count("shipped") == 1
    await check_invariants(shop.sessions)


async def test_tracking_numbers_are_editable_until_receipt(shop: Shop) -> None:
    _, placement = await shop.paid_order([("tea-green", 2), ("pot-clay", 1)])
    so_id = sid(placement, "s1")
    child = await shop.child(so_id)
    ids = item_ids(placement, "s1")
    await ship(child, "P1", {ids["tea-green"]: 2})
    await ship(child, "P2", {ids["pot-clay"]: 1})

    edited = await child.execute_update(
        SupplierOrderWorkflow.edit_tracking,
        EditTracking(tracking_no="P1", new_tracking_no="P1-FIXED", carrier="yto"),
    )
    assert [(p.tracking_no, p.carrier) for p in edited.packages] == [
        ("P1-FIXED", "yto"),
        ("P2", "sf"),
    ]
    pkgs = await packages(shop, so_id)
    assert set(pkgs) == {"P1-FIXED", "P2"} and pkgs["P1-FIXED"][0].carrier == "yto"
    (entry,) = await rows(
        shop, OrderLog, OrderLog.supplier_order_id == so_id, OrderLog.action == "tracking_edited"
    )
    assert entry.detail == {"old": "P1", "new": "P1-FIXED"} and entry.actor == "supplier"

    # Onto a number already used on the order; a package that does not exist.
    await refused(
        child.execute_update(
            SupplierOrderWorkflow.edit_tracking,
            EditTracking(tracking_no="P1-FIXED", new_tracking_no="P2"),
        ),
        "conflict",
    )
    await refused(
        child.execute_update(
            SupplierOrderWorkflow.edit_tracking, EditTracking(tracking_no="P1", new_tracking_no="X")
        ),
        "not_found",
    )

    await child.execute_update(SupplierOrderWorkflow.confirm_receipt, ConfirmReceipt())
    await refused(
        child.execute_update(
            SupplierOrderWorkflow.edit_tracking,
            EditTracking(tracking_no="P2", new_tracking_no="P2-LATE"),
        ),
        "invalid_state",
    )
    assert set(await packages(shop, so_id)) == {"P1-FIXED", "P2"}
    assert [p.tracking_no for p in (await snap(child)).packages] == ["P1-FIXED", "P2"]
    await check_invariants(shop.sessions)


# --- receiver ----------------------------------------------------------------------------


async def test_receiver_changes_only_before_the_first_shipment(shop: Shop) -> None:
    _, placement = await shop.paid_order([("tea-green", 1), ("gift-50", 1)])
    so_id = sid(placement, "s1")
    child = await shop.child(so_id)
    office = Address(
        name="Alice",
        phone="13800000001",
        region="Beijing",
        address="2 Office Rd",
        lat=39.9,
        lon=116.4,
    )
    home = placement.plan.supplier_order(so_id).address
    assert home is not None
    before = await shop.env.get_current_time()
    changed = await child.execute_update(
        SupplierOrderWorkflow.change_receiver, ChangeReceiver(address=office, actor_id="s1")
    )
    after = await shop.env.get_current_time()
    assert changed.address == office
    row = await shop.supplier_order_row(so_id)
    assert row is not None and row.address == office.model_dump(mode="json")
    (entry,) = await rows(
        shop, OrderLog, OrderLog.supplier_order_id == so_id, OrderLog.action == "receiver_changed"
    )
    assert (entry.actor, entry.actor_id) == ("supplier", "s1")
    assert before <= entry.at <= after
    assert entry.detail == {
        "old": home.model_dump(mode="json"),
        "new": office.model_dump(mode="json"),
    }

    await ship(child, "P1", {item_ids(placement, "s1")["tea-green"]: 1})
    cause = await refused(
        child.execute_update(SupplierOrderWorkflow.change_receiver, ChangeReceiver(address=home)),
        "invalid_state",
    )
    assert "before the first shipment" in cause.message
    assert (await snap(child)).address == office
    row = await shop.supplier_order_row(so_id)
    assert row is not None and row.address == office.model_dump(mode="json")

    # A virtual-only supplier order has no receiver at all.
    virtual = await shop.child(sid(placement, "s3"))
    await refused(
        virtual.execute_update(SupplierOrderWorkflow.change_receiver, ChangeReceiver(address=home)),
        "invalid_state",
    )
    assert (await snap(virtual)).address is None
    assert (await log_actions(shop, so_id)).count("receiver_changed") == 1
    await check_invariants(shop.sessions)


# --- virtual goods ------------------------------------------------------------------------


async def test_virtual_goods_are_delivered_at_once_with_method_virtual(shop: Shop) -> None:
    _, placement = await shop.paid_order([("gift-50", 2), ("lic-pro", 1)])
    so_id = sid(placement, "s3")
    plan = placement.plan.supplier_order(so_id)
    assert plan.needs_address is False and plan.address is None
    child = await shop.child(so_id)
    ids = item_ids(placement, "s3")
    lines = {ids["gift-50"]: 2, ids["lic-pro"]: 1}

    # A carrier method for codes and licences is refused.
    cause = await refused(ship(child, "CODES-1", lines), "invalid_input")
    assert "virtual" in cause.message
    sent = await ship(child, "CODES-1", lines, method="virtual", carrier="email")
    (pkg,) = sent.packages
    assert pkg.method == "virtual" and pkg.delivered is True
    assert pkg.located_at == pkg.shipped_at and pkg.lat is None and pkg.lon is None
    assert sent.status == "PENDING_RECEIPT" and {i.status for i in sent.items} == {"SHIPPED"}
    assert sent.address is None

    (row, pkg_lines) = (await packages(shop, so_id))["CODES-1"]
    assert row.status == "delivered" and row.method == "virtual" and row.last_at is not None
    assert pkg_lines == lines
    assert await product(shop, "gift-50") == (998, 0)
    assert await product(shop, "lic-pro") == (999, 0)
    # Receipt follows the same rules as physical goods.
    received = await child.execute_update(SupplierOrderWorkflow.confirm_receipt, ConfirmReceipt())
    assert received.status == "PENDING_REVIEW"
    await check_invariants(shop.sessions)


async def test_physical_and_virtual_goods_never_share_a_package(shop: Shop) -> None:
    async with write_session(shop.sessions) as s:
        s.add(
            Product(
                sku="tea-ebook",
                name="Tea guide (e-book)",
                supplier_id="s1",
                product_type="ebook",
                kind="virtual",
                price=Decimal("9.00"),
                on_hand=50,
                reserved=0,
                active=True,
            )
        )
    _, placement = await shop.paid_order([("tea-green", 1), ("tea-ebook", 1)])
    so_id = sid(placement, "s1")
    assert placement.plan.supplier_order(so_id).needs_address is True
    child = await shop.child(so_id)
    ids = item_ids(placement, "s1")
    tea, book = ids["tea-green"], ids["tea-ebook"]

    for method in ("standard", "virtual"):
        cause = await refused(ship(child, "MIX", {tea: 1, book: 1}, method=method), "invalid_input")
        assert "cannot share a package" in cause.message
    await refused(ship(child, "PHYS", {tea: 1}, method="virtual"), "invalid_input")
    await refused(ship(child, "BOOK", {book: 1}, method="express"), "invalid_input")
    assert (await snap(child)).packages == []
    assert await packages(shop, so_id) == {}

    await ship(child, "PHYS", {tea: 1}, method="express")
    done = await ship(child, "BOOK", {book: 1}, method="virtual", carrier="email")
    assert [(p.method, p.delivered) for p in done.packages] == [
        ("express", False),
        ("virtual", True),
    ]
    pkgs = await packages(shop, so_id)
    assert {t: p.status for t, (p, _) in pkgs.items()} == {"PHYS": "shipped", "BOOK": "delivered"}
    await check_invariants(shop.sessions)


# --- carrier scans ------------------------------------------------------------------------


async def test_carrier_scans_locate_and_deliver_packages(shop: Shop) -> None:
    _, placement = await shop.paid_order([("tea-green", 2)])
    so_id = sid(placement, "s1")
    child = await shop.child(so_id)
    green = item_ids(placement, "s1")["tea-green"]
    await ship(child, "P1", {green: 1})
    shipped = await ship(child, "P2", {green: 1})
    t0 = shipped.packages[0].shipped_at

    def scan(event_id: str, tracking: str, lat: float, lon: float, hours: int, status: str) -> Any:
        return child.signal(
            SupplierOrderWorkflow.tracking,
            TrackingEvent(
                event_id=event_id,
                carrier="sf",
                tracking_no=tracking,
                lat=lat,
                lon=lon,
                status=status,
                at=t0 + timedelta(hours=hours),
            ),
        )

    await scan("e1", "P1", 30.0, 120.0, 2, "in_transit")
    await scan("e1", "P1", 10.0, 10.0, 3, "in_transit")  # a resend: ignored
    await scan("e2", "P1", 31.0, 121.0, 5, "in_transit")
    await scan("e0", "P1", 29.0, 119.0, 1, "in_transit")  # late and older: kept, not applied
    await scan("e-unknown", "NOPE", 1.0, 1.0, 5, "in_transit")  # not this order's package
    # P2: a newer transit scan, then the delivery scan stamped earlier (carrier clock skew).
    await scan("e3", "P2", 31.2, 121.4, 9, "in_transit")
    await scan("e4", "P2", 31.23, 121.47, 8, "delivered")

    async def settled() -> SupplierOrderSnapshot | None:
        # The last scan's row commits (local activity) a moment before the workflow adopts
        # it: wait for both, or the snapshot may still show the scan before.
        s = await snap(child)
        done = await count(shop, TrackingEventRow) == 5 and s.packages[1].delivered
        return s if done else None

    s = await eventually(settled, what="tracking events applied")
    p1, p2 = s.packages
    assert (p1.lat, p1.lon, p1.located_at, p1.delivered) == (
        31.0,
        121.0,
        t0 + timedelta(hours=5),
        False,
    )
    # The delivery scan counts although it is stamped before the last transit scan,
    # and the snapshot and the read model agree on where the package is.
    assert (p2.delivered, p2.lat, p2.lon, p2.located_at) == (
        True,
        31.23,
        121.47,
        t0 + timedelta(hours=8),
    )
    events = await rows(shop, TrackingEventRow, order_by=TrackingEventRow.event_id)
    assert [(e.event_id, e.tracking_no, e.lat) for e in events] == [
        ("e0", "P1", 29.0),
        ("e1", "P1", 30.0),
        ("e2", "P1", 31.0),
        ("e3", "P2", 31.2),
        ("e4", "P2", 31.23),
    ]
    pkgs = await packages(shop, so_id)
    row1, row2 = pkgs["P1"][0], pkgs["P2"][0]
    assert (row1.last_lat, row1.last_lon, row1.status) == (31.0, 121.0, "in_transit")
    assert row1.last_at == t0 + timedelta(hours=5)
    assert row2.status == "delivered"
    assert (row2.last_lat, row2.last_lon, row2.last_at) == (p2.lat, p2.lon, p2.located_at)
    # A scan after delivery never undoes it.
    await scan("e5", "P2", 31.0, 121.0, 10, "in_transit")
    await eventually(lambda: _has_events(shop, 6), what="e5 recorded")
    assert (await snap(child)).packages[1].delivered is True
    assert (await packages(shop, so_id))["P2"][0].status == "delivered"

    # The operation log has one entry per scan the carrier sent (the resent e1 and the
    # other order's package not at all): actor the carrier, the scan's own time in detail,
    # and which scan moved the package or delivered it.
    now = await shop.env.get_current_time()
    entries = await rows(
        shop,
        OrderLog,
        OrderLog.supplier_order_id == so_id,
        OrderLog.action.in_(["tracking_scanned", "package_delivered"]),
        order_by=OrderLog.id,
    )
    hours = {"e0": 1, "e1": 2, "e2": 5, "e3": 9, "e4": 8, "e5": 10}
    assert {
        e.detail["event_id"]: (
            e.action,
            e.detail["tracking_no"],
            e.detail["applied"],
            e.detail["scanned_at"],
        )
        for e in entries
    } == {
        eid: (action, tracking, applied, (t0 + timedelta(hours=hours[eid])).isoformat())
        for eid, action, tracking, applied in [
            ("e1", "tracking_scanned", "P1", True),
            ("e2", "tracking_scanned", "P1", True),
            ("e0", "tracking_scanned", "P1", False),
            ("e3", "tracking_scanned", "P2", True),
            ("e4", "package_delivered", "P2", True),
            ("e5", "tracking_scanned", "P2", True),
        ]
    }
    assert len(entries) == 6
    assert {(e.actor, e.actor_id) for e in entries} == {("carrier", "sf")}
    # `at` is when the platform applied the scan, in the order it did.
    assert all(t0 <= e.at <= now for e in entries)
    assert [e.at for e in entries] == sorted(e.at for e in entries)
    await check_invariants(shop.sessions)


async def _has_events(shop: Shop, n: int) -> bool:
    return await count(shop, TrackingEventRow) == n


# --- remind ------------------------------------------------------------------------------


async def test_remind_at_most_once_per_interval(shop: Shop) -> None:
    policy = Policy()
    _, placement = await shop.paid_order([("cup-white", 1)], policy=policy)
    so_id = sid(placement, "s2")
    child = await shop.child(so_id)

    async def reminders() -> list[Notification]:
        return await rows(
            shop,
            Notification,
            Notification.supplier_order_id == so_id,
            Notification.kind == "ship_reminder",
        )

    first = await child.execute_update(
        SupplierOrderWorkflow.remind, RemindShipment(actor_id="alice")
    )
    allowed = first.deadlines.remind_allowed_at
    assert allowed is not None
    (note,) = await reminders()
    assert (note.recipient_type, note.recipient_id) == ("supplier", "s2")
    assert allowed - note.at == policy.remind_interval
    (entry,) = await rows(
        shop, OrderLog, OrderLog.supplier_order_id == so_id, OrderLog.action == "ship_reminder"
    )
    assert (entry.actor, entry.actor_id, entry.at) == ("customer", "alice", note.at)
    row = await shop.supplier_order_row(so_id)
    assert row is not None and row.last_remind_at == note.at

    cause = await refused(
        child.execute_update(SupplierOrderWorkflow.remind, RemindShipment()), "rate_limited"
    )
    assert cause.details and cause.details[0]["retry_at"] == allowed.isoformat()
    assert len(await reminders()) == 1

    await shop.skip(policy.remind_interval - timedelta(minutes=5))
    await refused(
        child.execute_update(SupplierOrderWorkflow.remind, RemindShipment()), "rate_limited"
    )
    await shop.skip(timedelta(minutes=10))
    again = await child.execute_update(SupplierOrderWorkflow.remind, RemindShipment())
    assert again.deadlines.remind_allowed_at is not None
    assert again.deadlines.remind_allowed_at > allowed
    assert len(await reminders()) == 2
    assert (await log_actions(shop, so_id)).count("ship_reminder") == 2

    # Once something shipped there is nothing to remind about.
    await shop.ship_all(child, placement, so_id)
    await refused(
        child.execute_update(SupplierOrderWorkflow.remind, RemindShipment()), "invalid_state"
    )
    await check_invariants(shop.sessions)


# --- extend receipt ------------------------------------------------------------------------


async def test_extend_receipt_once_moves_auto_confirm(shop: Shop) -> None:
    policy = Policy()
    _, placement = await shop.paid_order([("cup-white", 2)], policy=policy)
    so_id = sid(placement, "s2")
    child = await shop.child(so_id)
    await refused(
        child.execute_update(SupplierOrderWorkflow.extend_receipt, ExtendReceipt()), "invalid_state"
    )
    await shop.ship_all(child, placement, so_id)
    shipped = await snap(child)
    t0 = shipped.packages[0].shipped_at
    assert shipped.deadlines.auto_confirm_at == t0 + policy.auto_confirm_after

    extended = await child.execute_update(
        SupplierOrderWorkflow.extend_receipt, ExtendReceipt(actor_id="alice")
    )
    due = t0 + policy.auto_confirm_after + policy.receipt_extension
    assert extended.deadlines.auto_confirm_at == due
    row = await shop.supplier_order_row(so_id)
    assert row is not None and row.extended is True and row.auto_confirm_at == due
    (entry,) = await rows(
        shop, OrderLog, OrderLog.supplier_order_id == so_id, OrderLog.action == "extend_receipt"
    )
    assert entry.actor == "customer" and entry.detail["auto_confirm_at"] == due.isoformat()
    cause = await refused(
        child.execute_update(SupplierOrderWorkflow.extend_receipt, ExtendReceipt()), "invalid_state"
    )
    assert "already extended" in cause.message

    # Not confirmed at the old deadline, nor just before the new one; confirmed after it.
    await shop.skip(policy.auto_confirm_after + timedelta(hours=1))
    assert (await snap(child)).status == "PENDING_RECEIPT"
    await shop.skip(policy.receipt_extension - timedelta(hours=2))
    assert (await snap(child)).status == "PENDING_RECEIPT"
    await shop.skip(timedelta(hours=2))
    s = await snap(child)
    assert s.status == "PENDING_REVIEW"
    row = await shop.supplier_order_row(so_id)
    assert row is not None and row.status == "PENDING_REVIEW" and row.received_at == due
    assert "receipt_auto_confirmed" in await log_actions(shop, so_id)
    await refused(
        child.execute_update(SupplierOrderWorkflow.extend_receipt, ExtendReceipt()), "invalid_state"
    )
    await check_invariants(shop.sessions)


# --- auto-confirm with items never shipped ---------------------------------------------------


async def test_auto_confirm_closes_and_refunds_what_never_shipped(shop: Shop) -> None:
    policy = Policy()
    handle, placement = await shop.paid_order(
        [("tea-green", 2), ("pot-clay", 1)], coins="10.00", policy=policy
    )
    so_id = sid(placement, "s1")
    plan = placement.plan.supplier_order(so_id)
    tea, pot = (next(i for i in plan.items if i.sku == sku) for sku in ("tea-green", "pot-clay"))
    child = await shop.child(so_id)
    await ship(child, "P1", {tea.item_id: 1})  # the rest never ships
    async with shop.sessions() as s:
        coins_before = (await s.get(Customer, "alice")).coins  # type: ignore[union-attr]

    await shop.skip(policy.auto_confirm_after + timedelta(hours=1))
    s1 = await snap(child)
    assert s1.status == "PENDING_REVIEW"
    assert {(i.sku, i.shipped_qty, i.status) for i in s1.items} == {
        ("tea-green", 1, "CLOSED"),
        ("pot-clay", 0, "CLOSED"),
    }

    async def settled() -> Refund | None:
        async with shop.sessions() as s:
            r = await s.get(Refund, f"refund:{so_id}:undelivered")
            return r if r is not None and r.status == "succeeded" else None

    refund = await eventually(settled, what="refund of the undelivered items")
    # One of two teas and the pot: their money and coins, to the cent.
    assert refund.amount == prorate(tea.money_paid, 1, 2) + pot.money_paid
    assert refund.coins == prorate(tea.coin_share, 1, 2) + pot.coin_share
    assert refund.reason == "undelivered"
    db_items = await items_by_id(shop, so_id)
    assert {(i.sku, i.status, i.refunded_qty) for i in db_items.values()} == {
        ("tea-green", "CLOSED", 1),
        ("pot-clay", "CLOSED", 1),
    }
    assert await product(shop, "tea-green") == (99, 0)
    assert await product(shop, "pot-clay") == (20, 0)
    async with shop.sessions() as s:
        assert (await s.get(Customer, "alice")).coins == coins_before + refund.coins  # type: ignore[union-attr]
    (entry,) = await rows(
        shop, OrderLog, OrderLog.supplier_order_id == so_id, OrderLog.action == "undelivered_closed"
    )
    assert entry.detail["items"] == {tea.item_id: 1, pot.item_id: 1}
    told = await rows(
        shop,
        Notification,
        Notification.supplier_order_id == so_id,
        Notification.kind == "undelivered_closed",
    )
    assert sorted(n.recipient_type for n in told) == ["customer", "supplier"]
    # What the supplier order keeps is the shipped tea's money and the postage's.
    kept = (tea.money_paid - prorate(tea.money_paid, 1, 2)) + (
        plan.postage - plan.postage_coin_share
    )
    assert plan.payable == kept + refund.amount
    await check_invariants(shop.sessions)

    # The order then runs its course: auto-review, after-sales window, finished.
    result = await handle.result()
    assert result.status == "FINISHED"
    order = await shop.order_row(placement.order_no)
    assert order is not None and order.refunded == refund.amount
    await check_invariants(shop.sessions)


# --- reviews --------------------------------------------------------------------------------


async def test_reviews_per_item_complete_the_order(shop: Shop) -> None:
    _, placement = await shop.paid_order([("cup-white", 1), ("plate-blue", 2)])
    so_id = sid(placement, "s2")
    child = await shop.child(so_id)
    ids = item_ids(placement, "s2")
    cup, plate = ids["cup-white"], ids["plate-blue"]
    await shop.ship_all(child, placement, so_id)
    await refused(
        child.execute_update(SupplierOrderWorkflow.review, SubmitReview(item_id=cup, rating=5)),
        "invalid_state",
    )
    await child.execute_update(SupplierOrderWorkflow.confirm_receipt, ConfirmReceipt())

    one = await child.execute_update(
        SupplierOrderWorkflow.review, SubmitReview(item_id=cup, rating=4, text="nice cup")
    )
    assert one.status == "PENDING_REVIEW"
    await refused(
        child.execute_update(SupplierOrderWorkflow.review, SubmitReview(item_id=cup, rating=1)),
        "conflict",
    )
    await refused(
        child.execute_update(SupplierOrderWorkflow.review, SubmitReview(item_id="nope", rating=1)),
        "not_found",
    )
    (review,) = await rows(shop, Review, Review.supplier_order_id == so_id)
    assert (review.item_id, review.rating, review.text, review.auto) == (cup, 4, "nice cup", False)

    done = await child.execute_update(
        SupplierOrderWorkflow.review, SubmitReview(item_id=plate, rating=2, text="chipped")
    )
    assert done.status == "COMPLETED"
    reviews = {r.item_id: r for r in await rows(shop, Review, Review.supplier_order_id == so_id)}
    assert {i: (r.rating, r.auto) for i, r in reviews.items()} == {
        cup: (4, False),
        plate: (2, False),
    }
    row = await shop.supplier_order_row(so_id)
    assert row is not None and row.status == "COMPLETED" and row.completed_at is not None
    assert (await log_actions(shop, so_id)).count("reviewed") == 2
    await refused(
        child.execute_update(SupplierOrderWorkflow.review, SubmitReview(rating=5)), "invalid_state"
    )
    await check_invariants(shop.sessions)


async def test_auto_review_writes_the_default_for_unreviewed_items_only(shop: Shop) -> None:
    policy = Policy()
    _, placement = await shop.paid_order([("cup-white", 1), ("plate-blue", 1)], policy=policy)
    so_id = sid(placement, "s2")
    child = await shop.child(so_id)
    ids = item_ids(placement, "s2")
    cup, plate = ids["cup-white"], ids["plate-blue"]
    await shop.ship_all(child, placement, so_id)
    received = await child.execute_update(SupplierOrderWorkflow.confirm_receipt, ConfirmReceipt())
    due = received.deadlines.auto_review_at
    assert due is not None
    await child.execute_update(
        SupplierOrderWorkflow.review, SubmitReview(item_id=cup, rating=3, text="ok")
    )
    await shop.skip(policy.auto_review_after - timedelta(hours=1))
    assert (await snap(child)).status == "PENDING_REVIEW"
    await shop.skip(timedelta(hours=2))
    assert (await snap(child)).status == "COMPLETED"

    reviews = {r.item_id: r for r in await rows(shop, Review, Review.supplier_order_id == so_id)}
    assert (reviews[cup].text, reviews[cup].rating, reviews[cup].auto) == ("ok", 3, False)
    assert (reviews[plate].text, reviews[plate].rating, reviews[plate].auto) == (
        policy.default_review_text,
        policy.default_review_rating,
        True,
    )
    assert reviews[plate].at == due
    (auto,) = await rows(
        shop, OrderLog, OrderLog.supplier_order_id == so_id, OrderLog.action == "auto_reviewed"
    )
    assert auto.detail == {"items": [plate]} and auto.actor == "system"
    row = await shop.supplier_order_row(so_id)
    assert row is not None and row.status == "COMPLETED" and row.completed_at == due
    await check_invariants(shop.sessions)
