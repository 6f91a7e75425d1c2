"""Request and response bodies of the HTTP API (DESIGN.md §6).

Field names follow the contract; responses carry a few more. Money leaves as a
decimal string with two places, times as ISO-8601 UTC. Request bodies refuse
unknown fields so a misspelt field is an error, not silently ignored (webhook
bodies are the exception: providers add fields).
"""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.actions import Action
from domain.models import Address, GroupInput, OrderLine
from domain.split import MAX_QTY_PER_LINE
from domain.states import (
    AfterSaleStatus,
    AfterSaleType,
    CloseReason,
    ItemStatus,
    OrderStatus,
    OrderType,
    ProductKind,
    SupplierOrderStatus,
)

# Stock per product: the read model's products.on_hand is a 32-bit integer.
MAX_STOCK = 2**31 - 1

MoneyStr = Annotated[str, Field(pattern=r"^-?\d+\.\d{2}$", examples=["12.50"])]
MoneyIn = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2, examples=["10.00"])]


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    pass


# --- errors -----------------------------------------------------------------------------


class ErrorDetail(Out):
    model_config = ConfigDict(extra="allow")

    code: str = Field(examples=["invalid_state"])
    message: str


class ErrorResponse(Out):
    error: ErrorDetail


# --- checkout and submit -------------------------------------------------------------------


class CheckoutIn(In):
    lines: list[OrderLine] = Field(min_length=1)


class CheckoutItemOut(Out):
    sku: str
    name: str
    product_type: str
    kind: ProductKind
    price: MoneyStr
    qty: int
    line_total: MoneyStr


class CheckoutGroupOut(Out):
    supplier_id: str
    needs_address: bool
    address: Address | None
    items: list[CheckoutItemOut]
    subtotal: MoneyStr
    postage: MoneyStr


class CheckoutOut(Out):
    groups: list[CheckoutGroupOut]
    subtotal: MoneyStr
    postage: MoneyStr
    total: MoneyStr
    coins_available: MoneyStr


ORDER_TYPE_DOC = (
    "self: the buyer's own order (default); friend_pay: a friend pays it through the "
    "single-use pay request whose `pay_token` the submit returns; activity: placed from a "
    "task or promotion activity. Shown to the buyer and admins, never to suppliers."
)
SOURCE_DOC = (
    "the catalog zone the line was bought from (ORDERS_SOURCE_ZONES, e.g. `normal`, "
    "`zone-a`); not shown to suppliers"
)


class SubmitIn(In):
    lines: list[OrderLine] = Field(
        min_length=1,
        description="each line: sku, qty and optionally `source`, the catalog zone it was "
        "found in (one of ORDERS_SOURCE_ZONES, default the first, `normal`); an unknown "
        "zone is a 422 `unknown_source` and nothing is reserved",
    )
    coins: MoneyIn = Decimal("0.00")
    groups: list[GroupInput] = Field(default_factory=list)
    order_type: OrderType = Field(default=OrderType.SELF, description=ORDER_TYPE_DOC)


class ItemPreview(Out):
    item_id: str
    sku: str
    name: str
    product_type: str
    kind: ProductKind
    price: MoneyStr
    qty: int
    line_total: MoneyStr
    source: str = Field(description=SOURCE_DOC)


class SubOrderPreview(Out):
    id: str
    product_type: str
    item_ids: list[str]


class SupplierOrderPreview(Out):
    id: str
    supplier_id: str
    status: SupplierOrderStatus
    needs_address: bool
    address: Address | None
    remark: str
    items: list[ItemPreview]
    sub_orders: list[SubOrderPreview]
    subtotal: MoneyStr
    postage: MoneyStr
    coin_share: MoneyStr
    payable: MoneyStr


PAY_TOKEN_DOC = (
    "friend_pay orders only: the single-use token of the order's pay request. Share it; a "
    "logged-in customer other than the buyer reads `GET /pay-requests/{token}` and pays with "
    "`POST /pay-requests/{token}/pay`. It stops working once the order is paid or closed, or "
    "at `pay_deadline`."
)


class PlacedOrder(Out):
    order_no: str
    order_type: OrderType = Field(description=ORDER_TYPE_DOC)
    status: OrderStatus
    payable: MoneyStr
    pay_deadline: datetime
    pay_token: str | None = Field(default=None, description=PAY_TOKEN_DOC)
    subtotal: MoneyStr
    postage: MoneyStr
    coins: MoneyStr
    supplier_orders: list[SupplierOrderPreview]


# --- order records -----------------------------------------------------------------------------


class ItemOut(Out):
    item_id: str
    sku: str
    name: str
    product_type: str
    kind: ProductKind
    price: MoneyStr
    qty: int
    shipped_qty: int
    refunded_qty: int
    status: ItemStatus


class SubOrderOut(Out):
    id: str
    product_type: str
    status: ItemStatus
    items: list[ItemOut]


class OrderItemOut(ItemOut):
    """An item as its buyer and admins see it (suppliers get `ItemOut`: no source)."""

    source: str = Field(description=SOURCE_DOC)


class OrderSubOrderOut(SubOrderOut):
    items: list[OrderItemOut]  # type: ignore[assignment]  # covariant: buyer's items


class Location(Out):
    lat: float
    lon: float
    at: datetime | None


class PackageItemOut(Out):
    item_id: str
    qty: int


class PackageOut(Out):
    tracking_no: str
    carrier: str
    method: str
    status: str = Field(examples=["shipped", "in_transit", "delivered"])
    shipped_at: datetime
    items: list[PackageItemOut]
    location: Location | None
    distance_km: float | None = Field(description="from the last scan to the delivery address")
    eta: datetime | None


class AfterSaleBrief(Out):
    id: str
    item_id: str
    qty: int
    type: AfterSaleType
    status: AfterSaleStatus
    refund_amount: MoneyStr | None = None


class DeadlinesOut(Out):
    auto_confirm_at: datetime | None = None
    auto_review_at: datetime | None = None
    after_sales_until: datetime | None = None
    remind_allowed_at: datetime | None = None
    source: Literal["workflow", "database"] = Field(
        default="database",
        description="'workflow' when read live from the supplier order's workflow",
    )


class SupplierOrderOut(Out):
    """One box of the customer's shopping record."""

    id: str
    order_no: str
    supplier_id: str
    status: SupplierOrderStatus
    close_reason: CloseReason | None
    needs_address: bool
    address: Address | None
    remark: str
    subtotal: MoneyStr
    postage: MoneyStr
    coin_share: MoneyStr
    payable: MoneyStr
    created_at: datetime
    paid_at: datetime | None
    received_at: datetime | None
    completed_at: datetime | None
    extended: bool
    sub_orders: list[OrderSubOrderOut]
    packages: list[PackageOut]
    after_sales: list[AfterSaleBrief]
    deadlines: DeadlinesOut
    actions: list[Action] = Field(
        default_factory=list,
        description="the customer commands the rules allow now (domain/actions.py): "
        "cancel, remind (offered while waiting to ship; a second one inside the interval "
        "is refused with 429 until deadlines.remind_allowed_at), confirm-receipt, "
        "extend-receipt, review, after-sales, buy-again",
    )


PaymentOutcome = Literal[
    "applied", "failed", "refunded_mismatch", "refunded_duplicate", "refunded_late", "unmatched"
]


class PaymentOut(Out):
    """One payment event the provider reported for the order (each event id once)."""

    event_id: str
    amount: MoneyStr
    method: str
    outcome: PaymentOutcome = Field(
        description="applied: paid the order; failed: the payment failed (no money; the "
        "order closed if it was unpaid); refunded_mismatch: not the payable amount; "
        "refunded_duplicate: the order was already paid; refunded_late: the order had "
        "closed (the refunded_* are sent back whole to their payer); unmatched: arrived "
        "after the order stopped listening, recorded for an operator to refund"
    )
    payer_id: str | None = Field(description="who paid; the buyer unless a friend paid")
    at: datetime


class RefundOut(Out):
    """Money (and coins) going back: of a payment not owed, or of what the order kept."""

    id: str
    amount: MoneyStr = Field(description="money back to `payer_id`'s original method")
    coins: MoneyStr = Field(description="coins back to the buyer's balance")
    reason: str = Field(
        examples=["refunded_late", "user_cancelled", "after_sale_refund_only", "undelivered"]
    )
    status: Literal["pending", "succeeded"] = Field(
        description="pending until the payment provider confirms it"
    )
    payer_id: str | None = Field(description="whom the money goes back to: who paid it")
    supplier_order_id: str | None = None
    payment_event_id: str | None = Field(
        default=None, description="the payment refunded whole (money the order never owed)"
    )
    created_at: datetime
    settled_at: datetime | None


class OrderOut(Out):
    order_no: str
    customer_id: str
    order_type: OrderType = Field(description=ORDER_TYPE_DOC)
    status: OrderStatus
    close_reason: CloseReason | None
    subtotal: MoneyStr
    postage: MoneyStr
    coins: MoneyStr
    payable: MoneyStr
    paid: MoneyStr = Field(
        description="all money received for the order: the applied payment and every "
        "payment refunded as a mismatch, a duplicate or a late one"
    )
    refunded: MoneyStr = Field(
        description="all money returned (refunds settled); paid - refunded is what the "
        "order keeps once pending refunds settle"
    )
    coins_refunded: MoneyStr
    payment_method: str | None
    payer_id: str | None = Field(
        default=None,
        description="who paid the order (the buyer, or the friend of a friend_pay order); "
        "money refunds go back to them, coins to the buyer",
    )
    pay_deadline: datetime
    pay_token: str | None = Field(
        default=None,
        description="in `GET /orders/{no}`, to the buyer of an unpaid friend_pay order only "
        "(null in lists and to admins): " + PAY_TOKEN_DOC,
    )
    created_at: datetime
    paid_at: datetime | None
    closed_at: datetime | None
    supplier_orders: list[SupplierOrderOut]
    payments: list[PaymentOut] = Field(
        default_factory=list, description="every payment event, oldest first"
    )
    refunds: list[RefundOut] = Field(default_factory=list, description="oldest first")


class OrderPage(Out):
    items: list[OrderOut]
    total: int
    limit: int
    offset: int


class CancelIn(In):
    reason: str = Field(default="", max_length=500)


class PayIn(In):
    """Simulated payment (dev provider); amount defaults to the payable amount."""

    amount: MoneyIn | None = None
    method: str = Field(default="card", min_length=1, max_length=40)
    status: Literal["succeeded", "failed"] = "succeeded"


class PayRequestItem(Out):
    sku: str
    name: str
    qty: int
    price: MoneyStr
    line_total: MoneyStr


class PayRequestOut(Out):
    """What a friend is asked to pay: no order number, buyer, address or account."""

    amount: MoneyStr = Field(description="what paying it costs (the order's payable)")
    items: list[PayRequestItem]
    deadline: datetime = Field(description="the token stops working then")
    status: Literal["PENDING_PAYMENT"] = Field(
        description="a pay request is shown only while it can be paid"
    )


class PayRequestPaid(Out):
    accepted: bool = True
    event_id: str
    outcome: Literal["signalled", "duplicate", "unmatched"] = Field(
        description="signalled: handed to the order (its record shows the outcome); "
        "duplicate: this event id was already recorded"
    )


class PaymentAccepted(Out):
    accepted: bool = True
    order_no: str
    event_id: str
    outcome: Literal["signalled", "duplicate", "unmatched"] = Field(
        description="signalled: handed to the order; duplicate: this event id was already "
        "recorded; unmatched: the order no longer runs, the payment is recorded for refund"
    )


class ProductRef(Out):
    sku: str
    name: str
    supplier_id: str
    product_type: str
    kind: ProductKind
    price: MoneyStr
    available: int
    active: bool


class CartLineOut(Out):
    sku: str
    qty: int
    name: str | None
    price: MoneyStr | None
    supplier_id: str | None
    active: bool
    added_at: datetime


class SkippedLine(Out):
    sku: str
    reason: str


class BuyAgainOut(Out):
    product: ProductRef | None = Field(
        default=None, description="set when the order had one distinct item"
    )
    added: list[CartLineOut] = Field(default_factory=list)
    skipped: list[SkippedLine] = Field(default_factory=list)
    cart: list[CartLineOut] = Field(default_factory=list)


class CartOut(Out):
    lines: list[CartLineOut]


# --- supplier side ------------------------------------------------------------------------------


class SupplierViewOut(Out):
    """A paid supplier order as its supplier sees it: no customer account info."""

    id: str
    order_no: str
    supplier_id: str
    status: SupplierOrderStatus
    close_reason: CloseReason | None
    needs_address: bool
    address: Address | None = Field(description="the receiver")
    remark: str
    subtotal: MoneyStr
    postage: MoneyStr
    total: MoneyStr
    created_at: datetime
    paid_at: datetime | None
    received_at: datetime | None
    completed_at: datetime | None
    sub_orders: list[SubOrderOut]
    packages: list[PackageOut]
    after_sales: list[AfterSaleBrief]
    deadlines: DeadlinesOut


class SupplierPage(Out):
    items: list[SupplierViewOut]
    total: int
    limit: int
    offset: int


class ShipLineIn(In):
    item_id: str = Field(min_length=1)
    qty: int


class ShipmentIn(In):
    carrier: str = Field(min_length=1, max_length=60)
    tracking_no: str = Field(min_length=1, max_length=80)
    method: str = Field(default="standard", min_length=1, max_length=40)
    items: list[ShipLineIn] = Field(min_length=1)


class TrackingFixIn(In):
    tracking_no: str = Field(min_length=1, max_length=80, description="the corrected number")
    carrier: str | None = Field(default=None, min_length=1, max_length=60)


class ReviewIn(In):
    rating: int = Field(ge=1, le=5)
    text: str = Field(default="", max_length=2000)
    item_id: str | None = Field(default=None, description="one item; all unreviewed when omitted")


class AfterSaleIn(In):
    item_id: str = Field(min_length=1)
    qty: int = Field(gt=0, le=MAX_QTY_PER_LINE)
    type: AfterSaleType
    reason: str = Field(default="", max_length=1000)


class DecisionIn(In):
    reason: str = Field(default="", max_length=1000)


class ReturnShipmentIn(In):
    carrier: str = Field(min_length=1, max_length=60)
    tracking_no: str = Field(min_length=1, max_length=80)


class AfterSaleOut(Out):
    id: str
    order_no: str
    supplier_order_id: str
    supplier_id: str
    item_id: str
    qty: int
    type: AfterSaleType
    reason: str
    status: AfterSaleStatus
    return_carrier: str | None
    return_tracking_no: str | None
    refund_amount: MoneyStr | None
    refund_coins: MoneyStr | None
    created_at: datetime
    updated_at: datetime


# --- webhooks --------------------------------------------------------------------------------------


class PaymentWebhook(BaseModel):
    event_id: str = Field(min_length=1, max_length=200)
    order_no: str = Field(min_length=1, max_length=32)
    status: Literal["succeeded", "failed"]
    amount: Decimal = Field(ge=0, max_digits=14, decimal_places=2)
    method: str = Field(default="card", min_length=1, max_length=40)
    at: datetime | None = None
    payer_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="who paid (e.g. the friend of a friend_pay order); the buyer when absent",
    )


class CarrierWebhook(BaseModel):
    event_id: str = Field(min_length=1, max_length=200)
    carrier: str = Field(min_length=1, max_length=60)
    tracking_no: str = Field(min_length=1, max_length=80)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    status: str = Field(default="in_transit", min_length=1, max_length=32)
    at: datetime


class WebhookAck(Out):
    accepted: bool = True
    outcome: str | None = None


# --- catalog and admin ----------------------------------------------------------------------------


class ProductIn(In):
    name: str = Field(min_length=1, max_length=200)
    supplier_id: str = Field(min_length=1, max_length=64)
    product_type: str = Field(min_length=1, max_length=64)
    kind: ProductKind
    price: MoneyIn
    on_hand: int = Field(ge=0, le=MAX_STOCK)
    active: bool = True


class ProductOut(Out):
    sku: str
    name: str
    supplier_id: str
    product_type: str
    kind: ProductKind
    price: MoneyStr
    on_hand: int
    reserved: int
    available: int
    active: bool
    updated_at: datetime | None


class CustomerIn(In):
    """Fields left out keep their value; `default_address: null` clears the address."""

    name: str | None = Field(default=None, max_length=200)
    coins: MoneyIn | None = None
    default_address: Address | None = None


class CustomerOut(Out):
    id: str
    name: str
    coins: MoneyStr
    default_address: Address | None


class LogEntry(Out):
    id: int
    at: datetime
    actor: str
    actor_id: str
    action: str
    supplier_order_id: str | None
    detail: dict[str, Any]


class OrderLogOut(Out):
    order_no: str
    entries: list[LogEntry]


class NotificationOut(Out):
    id: int
    recipient_type: str
    recipient_id: str
    kind: str
    order_no: str
    supplier_order_id: str | None
    body: str
    at: datetime
    read: bool


class NotificationPage(Out):
    items: list[NotificationOut]
    total: int
    limit: int
    offset: int


class HealthOut(Out):
    status: Literal["ok", "unavailable"]
    database: str
    temporal: str
