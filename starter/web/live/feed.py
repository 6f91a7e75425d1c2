"""The change feed: `order_log` rows read from the read model, joined to who may see them.

One query shape serves both the watcher's tick and a reconnecting page's replay: a batch of
log rows (`log_batch`) joined to its order's customer and to the supplier orders it concerns
(`changes_query`), folded into one `Change` per row (`to_changes`), keeping as targets only
the suppliers that may see the row (paid, and the row from the payment on). `replay_filter`
narrows a replay to the rows a grant's topics may match.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, and_, exists, false, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased
from sqlalchemy.sql import Subquery

from db.tables import Order, OrderLog, SupplierOrder
from domain.states import SupplierOrderStatus
from starter.web.live.events import Change, Target
from starter.web.live.topics import Grant

# Order-level log rows that concern every supplier of the order: the payment that makes
# their supplier orders "paid" (written in the same transaction). Other order-level rows
# (derived order status, refunds of extra payments, buy again...) are the customer's.
FANOUT_TO_SUPPLIERS = ("payment_applied",)


def log_batch(
    where: Sequence[ColumnElement[bool]], limit: int, newest_first: bool = False
) -> Subquery:
    return (
        select(
            OrderLog.id,
            OrderLog.order_no,
            OrderLog.supplier_order_id,
            OrderLog.action,
            OrderLog.at,
        )
        .where(*where)
        .order_by(OrderLog.id.desc() if newest_first else OrderLog.id)
        .limit(limit)
        .subquery("batch")
    )


def changes_query(batch: Subquery) -> Select[Any]:
    """The batch's rows with their customer and the supplier orders they concern.

    A row about a supplier order joins that one (`own`); a payment row joins every supplier
    order of its order (`fanout`, one result row each). Index lookups only: orders and
    supplier_orders by primary key, supplier_orders by order_no.
    """
    own = aliased(SupplierOrder, name="own")
    fan = aliased(SupplierOrder, name="fanout")
    return (
        select(
            batch.c.id,
            batch.c.order_no,
            batch.c.supplier_order_id,
            batch.c.action,
            batch.c.at,
            Order.customer_id,
            own.supplier_id.label("own_supplier_id"),
            own.paid_at.label("own_paid_at"),
            own.status.label("own_status"),
            fan.id.label("fan_id"),
            fan.supplier_id.label("fan_supplier_id"),
            fan.paid_at.label("fan_paid_at"),
            fan.status.label("fan_status"),
        )
        .select_from(batch)
        .outerjoin(Order, Order.order_no == batch.c.order_no)
        .outerjoin(own, own.id == batch.c.supplier_order_id)
        .outerjoin(
            fan,
            and_(
                batch.c.supplier_order_id.is_(None),
                batch.c.action.in_(FANOUT_TO_SUPPLIERS),
                fan.order_no == batch.c.order_no,
            ),
        )
        .order_by(batch.c.id, fan.id)
    )


def _visible_to_supplier(paid_at: datetime | None, status: str | None, at: datetime) -> bool:
    """Paid, and the row is from the payment on (nothing from before it)."""
    return (
        paid_at is not None
        and status is not None
        and status != SupplierOrderStatus.PENDING_PAYMENT
        and at >= paid_at
    )


def to_changes(rows: Iterable[Row[Any]]) -> list[Change]:
    found: dict[int, tuple[Row[Any], list[Target]]] = {}
    for r in rows:
        _, targets = found.setdefault(r.id, (r, []))
        if r.supplier_order_id is not None and r.own_supplier_id is not None:
            if _visible_to_supplier(r.own_paid_at, r.own_status, r.at):
                targets.append(Target(r.own_supplier_id, r.supplier_order_id))
        elif r.fan_id is not None and _visible_to_supplier(r.fan_paid_at, r.fan_status, r.at):
            targets.append(Target(r.fan_supplier_id, r.fan_id))
    return [
        Change(
            id=r.id,
            order_no=r.order_no,
            supplier_order_id=r.supplier_order_id,
            action=r.action,
            customer_id=r.customer_id,
            suppliers=tuple(targets),
        )
        for r, targets in found.values()
    ]


def replay_filter(grant: Grant) -> ColumnElement[bool]:
    """SQL for "a row this grant's topics may match" (event_for decides exactly)."""
    admin, orders, customers, suppliers = grant.split()
    if admin:
        return true()
    conds: list[ColumnElement[bool]] = []
    if orders:
        conds.append(OrderLog.order_no.in_(orders))
    if customers:
        conds.append(
            exists().where(Order.order_no == OrderLog.order_no, Order.customer_id.in_(customers))
        )
    if suppliers:
        conds.append(
            exists().where(
                SupplierOrder.supplier_id.in_(suppliers),
                SupplierOrder.paid_at.is_not(None),
                or_(
                    SupplierOrder.id == OrderLog.supplier_order_id,
                    and_(
                        OrderLog.supplier_order_id.is_(None),
                        OrderLog.action.in_(FANOUT_TO_SUPPLIERS),
                        SupplierOrder.order_no == OrderLog.order_no,
                    ),
                ),
            )
        )
    return or_(*conds) if conds else false()


async def newest_id(sessions: async_sessionmaker[AsyncSession]) -> int:
    """The id of the newest change in the feed (0 while there is none)."""
    async with sessions() as s:
        newest = await s.scalar(select(func.max(OrderLog.id)))
    return int(newest or 0)
