"""Who may see what: ownership checks on read-model rows.

A caller whose role may use an endpoint but who does not own the object gets
404 `not_found`, exactly as if it did not exist, so ids of other customers'
orders (or other suppliers' supplier orders) cannot be probed. A role that may
not use the endpoint at all gets 403 (see deps.require).
"""

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import queries
from db.tables import AfterSale, Order, SupplierOrder
from domain.errors import InvalidState, NotFound
from domain.states import SupplierOrderStatus
from starter.security import Principal, Role


def _order_missing(order_no: str) -> NotFound:
    return NotFound(f"no order {order_no!r}")


def _so_missing(supplier_order_id: str) -> NotFound:
    return NotFound(f"no supplier order {supplier_order_id!r}")


def _as_missing(after_sale_id: str) -> NotFound:
    return NotFound(f"no after-sales request {after_sale_id!r}")


def can_see_order(principal: Principal, order: Order) -> bool:
    return principal.role is Role.ADMIN or (
        principal.role is Role.CUSTOMER and order.customer_id == principal.sub
    )


def can_see_supplier_order(principal: Principal, row: SupplierOrder) -> bool:
    if principal.role is Role.ADMIN:
        return True
    if principal.role is Role.CUSTOMER:
        return row.customer_id == principal.sub
    return row.supplier_id == principal.supplier_id and queries.is_visible_to_supplier(row)


def can_see_after_sale(principal: Principal, row: AfterSale) -> bool:
    if principal.role is Role.ADMIN:
        return True
    if principal.role is Role.CUSTOMER:
        return row.customer_id == principal.sub
    return row.supplier_id == principal.supplier_id


async def order_for(s: AsyncSession, principal: Principal, order_no: str) -> Order:
    order = await queries.get_order(s, order_no)
    if order is None or not can_see_order(principal, order):
        raise _order_missing(order_no)
    return order


async def supplier_order_for(
    s: AsyncSession, principal: Principal, supplier_order_id: str
) -> SupplierOrder:
    row = await queries.get_supplier_order(s, supplier_order_id)
    if row is None or not can_see_supplier_order(principal, row):
        raise _so_missing(supplier_order_id)
    return row


async def after_sale_for(s: AsyncSession, principal: Principal, after_sale_id: str) -> AfterSale:
    row = await queries.get_after_sale(s, after_sale_id)
    if row is None or not can_see_after_sale(principal, row):
        raise _as_missing(after_sale_id)
    return row


def is_live(row: SupplierOrder) -> bool:
    """Paid and not finished: its workflow runs (or is about to start)."""
    return row.paid_at is not None and row.status not in (
        SupplierOrderStatus.COMPLETED,
        SupplierOrderStatus.CLOSED,
    )


async def commandable_supplier_order(
    sessions: async_sessionmaker[AsyncSession], principal: Principal, supplier_order_id: str
) -> SupplierOrder:
    """A supplier order the caller may command, whose workflow exists (it was paid)."""
    async with sessions() as s:
        row = await supplier_order_for(s, principal, supplier_order_id)
    if row.paid_at is None:
        raise InvalidState(
            f"supplier order {row.id} is {row.status}: it was never paid"
            if row.close_reason
            else f"supplier order {row.id} is waiting for payment"
        )
    return row
