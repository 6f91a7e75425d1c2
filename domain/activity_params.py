"""One pydantic model per activity call. Every call carries an idempotency `key`
derived from the workflow id and the event, so a retried activity is applied once."""

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import Field

from domain.messages import (
    AfterSaleInput,
    EditTracking,
    PaymentEvent,
    ShipItems,
    TrackingEvent,
)
from domain.models import Address, Model, SubmitOrder
from domain.policy import Policy
from domain.states import Actor, AfterSaleStatus, CloseReason


class Keyed(Model):
    key: str
    order_no: str
    at: datetime
    actor: Actor = Actor.SYSTEM
    actor_id: str = ""


class PlaceOrderParams(Keyed):
    request: SubmitOrder
    policy: Policy
    pay_deadline: datetime


PaymentOutcomeKind = Literal["applied", "failed", "mismatch", "duplicate", "late"]


class PaymentParams(Keyed):
    event: PaymentEvent
    outcome: PaymentOutcomeKind


class RefundRef(Model):
    refund_id: str | None = None
    amount: Decimal = Decimal("0")
    coins: Decimal = Decimal("0")


class CloseOrderParams(Keyed):
    reason: CloseReason


class SupplierOrderParams(Keyed):
    supplier_order_id: str


class ShipmentParams(SupplierOrderParams):
    shipment: ShipItems
    auto_confirm_at: datetime | None


class EditTrackingParams(SupplierOrderParams):
    edit: EditTracking


class ReceiverParams(SupplierOrderParams):
    address: Address


class CancelSupplierOrderParams(SupplierOrderParams):
    reason: CloseReason


class ReminderParams(SupplierOrderParams):
    supplier_id: str


class DeadlineParams(SupplierOrderParams):
    """Receipt extension or an after-sales pause moved the auto-confirm deadline."""

    action: Literal["extend_receipt", "deadline_moved"]
    auto_confirm_at: datetime | None


class ReceiptParams(SupplierOrderParams):
    auto: bool
    auto_review_at: datetime


class ReviewLine(Model):
    item_id: str
    rating: int = Field(ge=1, le=5)
    text: str


class ReviewParams(SupplierOrderParams):
    reviews: list[ReviewLine]
    auto: bool
    completed: bool


class TrackingParams(SupplierOrderParams):
    event: TrackingEvent


class IssueRefundParams(Model):
    refund_id: str


class AfterSaleOpenParams(Keyed):
    request: AfterSaleInput


class AfterSaleUpdateParams(Keyed):
    after_sale_id: str
    status: AfterSaleStatus
    note: str = ""
    return_carrier: str | None = None
    return_tracking_no: str | None = None


class AfterSaleRefundParams(Keyed):
    after_sale_id: str
