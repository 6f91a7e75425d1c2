"""Status enums of DESIGN.md §2 and the pure rules that derive one from another."""

from collections.abc import Iterable
from enum import StrEnum


class OrderStatus(StrEnum):
    """Parent order (what was paid as one)."""

    PENDING_PAYMENT = "PENDING_PAYMENT"
    PAID = "PAID"
    FINISHED = "FINISHED"
    CLOSED = "CLOSED"


class SupplierOrderStatus(StrEnum):
    """Customer-facing status of one supplier order (one record in the app)."""

    PENDING_PAYMENT = "PENDING_PAYMENT"
    PENDING_SHIPMENT = "PENDING_SHIPMENT"
    PENDING_RECEIPT = "PENDING_RECEIPT"
    PENDING_REVIEW = "PENDING_REVIEW"
    COMPLETED = "COMPLETED"
    CLOSED = "CLOSED"

    @property
    def terminal(self) -> bool:
        return self in (SupplierOrderStatus.COMPLETED, SupplierOrderStatus.CLOSED)


class CloseReason(StrEnum):
    USER_CANCELLED = "USER_CANCELLED"
    SUPPLIER_CANCELLED = "SUPPLIER_CANCELLED"
    PAYMENT_TIMEOUT = "PAYMENT_TIMEOUT"
    PAYMENT_FAILED = "PAYMENT_FAILED"


class ItemStatus(StrEnum):
    """Backend (supplier-side) status of one order line."""

    PENDING_SHIPMENT = "PENDING_SHIPMENT"
    PARTIALLY_SHIPPED = "PARTIALLY_SHIPPED"
    SHIPPED = "SHIPPED"
    CLOSED = "CLOSED"


class AfterSaleStatus(StrEnum):
    REQUESTED = "REQUESTED"
    APPROVED = "APPROVED"
    RETURN_SHIPPED = "RETURN_SHIPPED"
    REFUNDED = "REFUNDED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"

    @property
    def open(self) -> bool:
        return self in (
            AfterSaleStatus.REQUESTED,
            AfterSaleStatus.APPROVED,
            AfterSaleStatus.RETURN_SHIPPED,
        )


class AfterSaleType(StrEnum):
    REFUND_ONLY = "refund_only"
    RETURN_REFUND = "return_refund"


class OrderType(StrEnum):
    """Who the order is for (自己购买 / 好友代付 / 任务活动); admin and customer views only."""

    SELF = "self"  # the buyer's own order, paid by the buyer
    FRIEND_PAY = "friend_pay"  # a friend pays it through a single-use pay request
    ACTIVITY = "activity"  # placed from a task or promotion activity


class ProductKind(StrEnum):
    PHYSICAL = "physical"
    VIRTUAL = "virtual"


class Actor(StrEnum):
    CUSTOMER = "customer"
    SUPPLIER = "supplier"
    ADMIN = "admin"
    SYSTEM = "system"
    CARRIER = "carrier"  # logistics scans arrive from the carrier, not from a user


# Which customer-facing transitions exist (DESIGN.md §2). Workflows consult it
# so an illegal jump is a bug caught by tests, never a silent state.
SUPPLIER_ORDER_TRANSITIONS: dict[SupplierOrderStatus, frozenset[SupplierOrderStatus]] = {
    SupplierOrderStatus.PENDING_PAYMENT: frozenset(
        {SupplierOrderStatus.PENDING_SHIPMENT, SupplierOrderStatus.CLOSED}
    ),
    SupplierOrderStatus.PENDING_SHIPMENT: frozenset(
        {SupplierOrderStatus.PENDING_RECEIPT, SupplierOrderStatus.CLOSED}
    ),
    SupplierOrderStatus.PENDING_RECEIPT: frozenset({SupplierOrderStatus.PENDING_REVIEW}),
    SupplierOrderStatus.PENDING_REVIEW: frozenset({SupplierOrderStatus.COMPLETED}),
    SupplierOrderStatus.COMPLETED: frozenset(),
    SupplierOrderStatus.CLOSED: frozenset(),
}


def check_transition(current: SupplierOrderStatus, new: SupplierOrderStatus) -> None:
    if new not in SUPPLIER_ORDER_TRANSITIONS[current]:
        raise ValueError(f"illegal supplier order transition {current} -> {new}")


def item_status(qty: int, shipped_qty: int, closed: bool = False) -> ItemStatus:
    """Item status follows its shipped quantity; a closed line stays closed."""
    if closed:
        return ItemStatus.CLOSED
    if shipped_qty <= 0:
        return ItemStatus.PENDING_SHIPMENT
    if shipped_qty < qty:
        return ItemStatus.PARTIALLY_SHIPPED
    return ItemStatus.SHIPPED


def sub_order_status(items: Iterable[ItemStatus]) -> ItemStatus:
    """A sub-order reads as its least-advanced open item."""
    statuses = list(items)
    open_items = [s for s in statuses if s is not ItemStatus.CLOSED]
    if not open_items:
        return ItemStatus.CLOSED
    if all(s is ItemStatus.SHIPPED for s in open_items):
        return ItemStatus.SHIPPED
    if all(s is ItemStatus.PENDING_SHIPMENT for s in open_items):
        return ItemStatus.PENDING_SHIPMENT
    return ItemStatus.PARTIALLY_SHIPPED


def order_status(children: Iterable[SupplierOrderStatus], paid: bool) -> OrderStatus:
    """Parent status derived from its supplier orders.

    Unpaid → PENDING_PAYMENT. Paid and some child still open → PAID. Every child
    terminal → FINISHED, unless every one of them was closed (nothing was
    delivered), which reads CLOSED.
    """
    statuses = list(children)
    if not paid:
        return OrderStatus.PENDING_PAYMENT
    if not statuses or not all(s.terminal for s in statuses):
        return OrderStatus.PAID
    if all(s is SupplierOrderStatus.CLOSED for s in statuses):
        return OrderStatus.CLOSED
    return OrderStatus.FINISHED


def order_close_reason(reasons: Iterable[CloseReason | None]) -> CloseReason | None:
    """Why a paid order whose supplier orders all closed is closed: their common reason.

    Supplier orders closed for different reasons (one by the customer, one by its
    supplier) leave the parent without a single reason; each record keeps its own.
    """
    distinct = set(reasons)
    return distinct.pop() if len(distinct) == 1 else None
