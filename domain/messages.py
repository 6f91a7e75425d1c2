"""One pydantic model per workflow input, signal, update, query and activity call.

These are the Temporal-facing contracts; the API, the workflows and the
activities all import them from here so each side agrees on the shape.
"""

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import Field

from domain.models import Address, Model, OrderPlan, SubmitOrder, SupplierOrderPlan
from domain.policy import Policy
from domain.states import (
    Actor,
    AfterSaleStatus,
    AfterSaleType,
    CloseReason,
    ItemStatus,
    OrderStatus,
    SupplierOrderStatus,
)

# --- OrderWorkflow -------------------------------------------------------------


class OrderInput(Model):
    order_no: str
    request: SubmitOrder
    policy: Policy = Policy()


class GetPlacement(Model):
    """Update sent with start: answers once stock is reserved and coins deducted."""


class Placement(Model):
    order_no: str
    status: OrderStatus
    plan: OrderPlan
    pay_deadline: datetime


class PaymentEvent(Model):
    """Signal from the payment provider (webhook or the dev provider)."""

    event_id: str = Field(min_length=1, max_length=200)
    status: Literal["succeeded", "failed"]
    amount: Decimal
    method: str = Field(default="card", max_length=40)
    at: datetime | None = None
    # Who paid: a friend paying a friend_pay order, or the buyer. None: the buyer.
    payer_id: str | None = Field(default=None, max_length=64)


class CancelOrder(Model):
    actor: Actor = Actor.CUSTOMER
    actor_id: str = ""
    reason: str = ""


class SnapshotQuery(Model):
    """Argument of every snapshot query (kept a model so it can grow)."""


class ChildRef(Model):
    id: str
    supplier_id: str
    workflow_id: str
    status: SupplierOrderStatus
    close_reason: CloseReason | None = None


class PaymentRecord(Model):
    event_id: str
    status: str
    amount: Decimal
    outcome: str


class OrderSnapshot(Model):
    order_no: str
    customer_id: str
    status: OrderStatus
    close_reason: CloseReason | None = None
    payable: Decimal = Decimal("0")
    paid: Decimal = Decimal("0")
    pay_deadline: datetime | None = None
    rejected: str | None = None
    supplier_orders: list[ChildRef] = Field(default_factory=list)
    payments: list[PaymentRecord] = Field(default_factory=list)


class OrderResult(Model):
    order_no: str
    status: OrderStatus | None
    close_reason: CloseReason | None = None
    rejected: str | None = None
    supplier_orders: list[ChildRef] = Field(default_factory=list)


# --- SupplierOrderWorkflow ------------------------------------------------------


class ItemState(Model):
    item_id: str
    sku: str
    qty: int
    shipped_qty: int = 0
    closed: bool = False
    reviewed: bool = False
    # Quantity under after-sales requests that are open or ended in a refund.
    after_sale_qty: int = 0


class PackageState(Model):
    tracking_no: str
    carrier: str
    method: str
    items: dict[str, int]
    shipped_at: datetime
    delivered: bool = False
    lat: float | None = None
    lon: float | None = None
    located_at: datetime | None = None


class AfterSaleRef(Model):
    id: str
    item_id: str
    qty: int
    type: AfterSaleType
    status: AfterSaleStatus


class SupplierOrderState(Model):
    """Everything the workflow knows; carried across continue-as-new."""

    status: SupplierOrderStatus = SupplierOrderStatus.PENDING_SHIPMENT
    close_reason: CloseReason | None = None
    address: Address | None = None
    items: dict[str, ItemState]
    packages: list[PackageState] = Field(default_factory=list)
    last_tracking_at: datetime | None = None
    extended: bool = False
    received_at: datetime | None = None
    completed_at: datetime | None = None
    last_remind_at: datetime | None = None
    after_sales: dict[str, AfterSaleRef] = Field(default_factory=dict)
    after_sale_seq: int = 0
    # Auto-confirm stops while an after-sales request is open: the clock is
    # shifted by the time spent paused once the last request ends.
    paused_at: datetime | None = None
    paused_seconds: float = 0.0
    seen_events: list[str] = Field(default_factory=list)


class SupplierOrderInput(Model):
    order_no: str
    customer_id: str
    plan: SupplierOrderPlan
    policy: Policy = Policy()
    paid_at: datetime
    payment_method: str = "card"
    state: SupplierOrderState | None = None


class ShipLine(Model):
    item_id: str
    qty: int


class ShipItems(Model):
    carrier: str = Field(min_length=1, max_length=60)
    tracking_no: str = Field(min_length=1, max_length=80)
    method: str = Field(default="standard", max_length=40)
    items: list[ShipLine] = Field(min_length=1)
    actor_id: str = ""


class EditTracking(Model):
    tracking_no: str
    new_tracking_no: str = Field(min_length=1, max_length=80)
    carrier: str | None = None
    actor_id: str = ""


class ChangeReceiver(Model):
    address: Address
    actor_id: str = ""


class CancelSupplierOrder(Model):
    actor: Actor
    actor_id: str = ""
    reason: str = ""


class RemindShipment(Model):
    actor_id: str = ""


class ConfirmReceipt(Model):
    actor_id: str = ""


class ExtendReceipt(Model):
    actor_id: str = ""


class SubmitReview(Model):
    item_id: str | None = None
    rating: int = Field(ge=1, le=5)
    text: str = Field(default="", max_length=2000)
    actor_id: str = ""


class RequestAfterSale(Model):
    item_id: str
    qty: int
    type: AfterSaleType
    reason: str = Field(default="", max_length=1000)
    actor_id: str = ""


class TrackingEvent(Model):
    """Signal from a carrier webhook."""

    event_id: str = Field(min_length=1, max_length=200)
    carrier: str
    tracking_no: str
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    status: str = "in_transit"
    at: datetime


class AfterSaleEnded(Model):
    """Signal from an after-sales workflow to its supplier order."""

    after_sale_id: str
    status: AfterSaleStatus
    refunded_qty: int = 0


class Deadlines(Model):
    auto_confirm_at: datetime | None = None
    auto_review_at: datetime | None = None
    after_sales_until: datetime | None = None
    remind_allowed_at: datetime | None = None


class ItemView(Model):
    item_id: str
    sku: str
    qty: int
    shipped_qty: int
    status: ItemStatus


class SupplierOrderSnapshot(Model):
    id: str
    order_no: str
    supplier_id: str
    status: SupplierOrderStatus
    close_reason: CloseReason | None = None
    items: list[ItemView]
    packages: list[PackageState]
    after_sales: list[AfterSaleRef]
    deadlines: Deadlines
    address: Address | None = None


class SupplierOrderResult(Model):
    id: str
    status: SupplierOrderStatus
    close_reason: CloseReason | None = None


# --- AfterSaleWorkflow ------------------------------------------------------------


class AfterSaleInput(Model):
    id: str
    order_no: str
    customer_id: str
    supplier_id: str
    supplier_order_id: str
    item_id: str
    qty: int
    type: AfterSaleType
    reason: str = ""
    policy: Policy = Policy()


class AfterSaleDecision(Model):
    """Approve or reject, by the supplier."""

    approve: bool
    reason: str = ""
    actor_id: str = ""


class ReturnShipment(Model):
    carrier: str = Field(min_length=1, max_length=60)
    tracking_no: str = Field(min_length=1, max_length=80)
    actor_id: str = ""


class ReceiveReturn(Model):
    actor_id: str = ""


class CancelAfterSale(Model):
    actor_id: str = ""


class AfterSaleSnapshot(Model):
    id: str
    supplier_order_id: str
    item_id: str
    qty: int
    type: AfterSaleType
    status: AfterSaleStatus
    refund_amount: Decimal | None = None
    refund_coins: Decimal | None = None
    approve_deadline: datetime | None = None
    return_deadline: datetime | None = None  # ship back by then, or the request closes
    receive_deadline: datetime | None = None  # confirm the parcel by then, or it is refunded
