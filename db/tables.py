"""The relational read model (DESIGN.md §5). Written only by activities."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

Money = Numeric(14, 2)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and always read back timezone-aware.

    PostgreSQL keeps the offset; SQLite drops it, and a naive value read back would
    not compare with the aware times workflows and webhooks carry.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON}


class Product(Base):
    __tablename__ = "products"
    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    supplier_id: Mapped[str] = mapped_column(String(64), index=True)
    product_type: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    price: Mapped[Decimal] = mapped_column(Money)
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime | None]


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    coins: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    default_address: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class CoinLedger(Base):
    """Every coin movement, so balances can be audited: balance == sum(delta)."""

    __tablename__ = "coin_ledger"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    delta: Mapped[Decimal] = mapped_column(Money)
    reason: Mapped[str] = mapped_column(String(64))
    order_no: Mapped[str | None] = mapped_column(String(32), nullable=True)
    at: Mapped[datetime]


class Order(Base):
    __tablename__ = "orders"
    order_no: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    close_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    subtotal: Mapped[Decimal] = mapped_column(Money)
    postage: Mapped[Decimal] = mapped_column(Money)
    coins: Mapped[Decimal] = mapped_column(Money)
    payable: Mapped[Decimal] = mapped_column(Money)
    paid: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    refunded: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    coins_refunded: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    payment_method: Mapped[str | None] = mapped_column(String(40), nullable=True)
    pay_deadline: Mapped[datetime]
    created_at: Mapped[datetime]
    paid_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    plan: Mapped[dict[str, Any]] = mapped_column(JSON)
    # self | friend_pay | activity (domain.states.OrderType); admin and customer views only.
    order_type: Mapped[str] = mapped_column(String(16), default="self", server_default="self")
    # Who paid the order (the buyer, or the friend of a friend_pay order): money refunds of
    # the order go back to them, coins to the buyer. Set when a payment is applied.
    payer_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # friend_pay: SHA-256 (hex) of the pay request's token; the token itself is not stored.
    pay_token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)

    # Newest first, keyset-paged on (created_at, order_no): the admin search and the lists.
    __table_args__ = (
        Index("ix_orders_created_at_order_no", "created_at", "order_no"),
        # The admin search's filters, each walked newest first (migration 0008).
        Index("ix_orders_customer_created", "customer_id", "created_at", "order_no"),
        Index("ix_orders_status_created", "status", "created_at", "order_no"),
        Index("ix_orders_type_created", "order_type", "created_at", "order_no"),
        Index("ix_orders_pay_token_hash", "pay_token_hash", unique=True),
    )


class SupplierOrder(Base):
    __tablename__ = "supplier_orders"
    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    order_no: Mapped[str] = mapped_column(ForeignKey("orders.order_no"), index=True)
    supplier_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    close_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    needs_address: Mapped[bool] = mapped_column(Boolean)
    address: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    remark: Mapped[str] = mapped_column(Text, default="")
    subtotal: Mapped[Decimal] = mapped_column(Money)
    postage: Mapped[Decimal] = mapped_column(Money)
    coin_share: Mapped[Decimal] = mapped_column(Money)
    payable: Mapped[Decimal] = mapped_column(Money)
    created_at: Mapped[datetime]
    paid_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    received_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    auto_confirm_at: Mapped[datetime | None]
    auto_review_at: Mapped[datetime | None]
    extended: Mapped[bool] = mapped_column(Boolean, default=False)
    last_remind_at: Mapped[datetime | None]

    # created_at and order_no are the order's (written together at placement): the admin
    # search walks a supplier's, or a status's, supplier orders in its order's keyset order.
    __table_args__ = (
        Index(
            "ix_supplier_orders_supplier_status_created",
            "supplier_id",
            "status",
            "created_at",
            "order_no",
        ),
        Index("ix_supplier_orders_supplier_created", "supplier_id", "created_at", "order_no"),
        Index("ix_supplier_orders_status_created", "status", "created_at", "order_no"),
    )


class SubOrder(Base):
    __tablename__ = "sub_orders"
    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    supplier_order_id: Mapped[str] = mapped_column(ForeignKey("supplier_orders.id"), index=True)
    product_type: Mapped[str] = mapped_column(String(64))


class OrderItem(Base):
    __tablename__ = "order_items"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_no: Mapped[str] = mapped_column(ForeignKey("orders.order_no"), index=True)
    supplier_order_id: Mapped[str] = mapped_column(ForeignKey("supplier_orders.id"), index=True)
    sub_order_id: Mapped[str] = mapped_column(ForeignKey("sub_orders.id"))
    sku: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    product_type: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    price: Mapped[Decimal] = mapped_column(Money)
    qty: Mapped[int] = mapped_column(Integer)
    shipped_qty: Mapped[int] = mapped_column(Integer, default=0)
    refunded_qty: Mapped[int] = mapped_column(Integer, default=0)
    line_total: Mapped[Decimal] = mapped_column(Money)
    coin_share: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(32))
    # The catalog zone the customer found the product in (ORDERS_SOURCE_ZONES).
    source: Mapped[str] = mapped_column(String(32), default="normal", server_default="normal")


class Package(Base):
    __tablename__ = "packages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    supplier_order_id: Mapped[str] = mapped_column(ForeignKey("supplier_orders.id"), index=True)
    carrier: Mapped[str] = mapped_column(String(60))
    tracking_no: Mapped[str] = mapped_column(String(80))
    method: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(32), default="shipped")
    last_lat: Mapped[float | None]
    last_lon: Mapped[float | None]
    last_at: Mapped[datetime | None]
    shipped_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("carrier", "tracking_no", name="uq_packages_tracking"),)


class PackageItem(Base):
    __tablename__ = "package_items"
    package_id: Mapped[int] = mapped_column(ForeignKey("packages.id"), primary_key=True)
    item_id: Mapped[str] = mapped_column(ForeignKey("order_items.id"), primary_key=True)
    qty: Mapped[int] = mapped_column(Integer)


class TrackingEventRow(Base):
    __tablename__ = "tracking_events"
    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    package_id: Mapped[int] = mapped_column(ForeignKey("packages.id"), index=True)
    carrier: Mapped[str] = mapped_column(String(60))
    tracking_no: Mapped[str] = mapped_column(String(80))
    lat: Mapped[float]
    lon: Mapped[float]
    status: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]


class Payment(Base):
    __tablename__ = "payments"
    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    order_no: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(Money)
    method: Mapped[str] = mapped_column(String(40))
    # applied | failed | refunded_mismatch | refunded_duplicate | refunded_late (| unmatched,
    # recorded by the API when the order's workflow no longer runs)
    outcome: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]
    # Who paid (the provider's payer, or the customer who paid through the dev provider).
    payer_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Refund(Base):
    __tablename__ = "refunds"
    id: Mapped[str] = mapped_column(String(250), primary_key=True)
    order_no: Mapped[str] = mapped_column(String(32), index=True)
    supplier_order_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    after_sale_id: Mapped[str | None] = mapped_column(String(120), nullable=True)
    payment_event_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    coins: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    method: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    provider_ref: Mapped[str | None] = mapped_column(String(120), nullable=True)
    created_at: Mapped[datetime]
    settled_at: Mapped[datetime | None]
    # Whom the money goes back to: the payer of the refunded payment (coins, if any, go
    # back to the buyer's balance whoever paid).
    payer_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


class AfterSale(Base):
    __tablename__ = "after_sales"
    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    order_no: Mapped[str] = mapped_column(String(32), index=True)
    supplier_order_id: Mapped[str] = mapped_column(ForeignKey("supplier_orders.id"), index=True)
    supplier_id: Mapped[str] = mapped_column(String(64), index=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    item_id: Mapped[str] = mapped_column(ForeignKey("order_items.id"))
    qty: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20))
    return_carrier: Mapped[str | None] = mapped_column(String(60), nullable=True)
    return_tracking_no: Mapped[str | None] = mapped_column(String(80), nullable=True)
    refund_amount: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    refund_coins: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Review(Base):
    __tablename__ = "reviews"
    item_id: Mapped[str] = mapped_column(ForeignKey("order_items.id"), primary_key=True)
    supplier_order_id: Mapped[str] = mapped_column(ForeignKey("supplier_orders.id"), index=True)
    # The reviewed item's product (order_items.sku, copied): the reviews centre's key.
    sku: Mapped[str] = mapped_column(String(64))
    rating: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    auto: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[datetime]

    # A product's reviews newest first, keyset-paged on (at, item_id) (migration 0006).
    __table_args__ = (Index("ix_reviews_sku_at_item", "sku", "at", "item_id"),)


class Notification(Base):
    """Supplier inbox and customer messages; dedupe_key makes each event appear once."""

    __tablename__ = "notifications"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(300), unique=True)
    recipient_type: Mapped[str] = mapped_column(String(16))
    recipient_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(40))
    order_no: Mapped[str] = mapped_column(String(32))
    supplier_order_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    body: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime]
    read: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (Index("ix_notifications_recipient", "recipient_type", "recipient_id"),)


class OrderLog(Base):
    __tablename__ = "order_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_no: Mapped[str] = mapped_column(String(32), index=True)
    supplier_order_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    actor: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(60))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime]


class IdempotencyKey(Base):
    """Activities and API requests that already ran, with what they returned."""

    __tablename__ = "idempotency_keys"
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    scope: Mapped[str] = mapped_column(String(60))
    request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime]


class CartLine(Base):
    __tablename__ = "cart_lines"
    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    qty: Mapped[int] = mapped_column(Integer)
    added_at: Mapped[datetime]


# --- supplier webhooks (DESIGN.md §11; written by the API and the dispatcher, starter/webhooks.py)


class SupplierWebhook(Base):
    """A supplier's endpoint. The secret signs deliveries and is never shown again."""

    __tablename__ = "supplier_webhooks"
    supplier_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(256))
    # While a secret is being replaced the old one signs too (a second v1), until then.
    previous_secret: Mapped[str | None] = mapped_column(String(256), nullable=True)
    previous_secret_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WebhookEvent(Base):
    """The outbox: one event for one supplier, made from one order_log row (`log_id`).

    `state`: pending → delivered (a 2xx), failed (gave up after ORDERS_WEBHOOK_RETRY_FOR) or
    dropped (the endpoint was removed). Delivery is WebhookDeliveryWorkflow's (one per
    supplier order, events in `log_id` order); `attempts` counts its attempts.
    """

    __tablename__ = "webhook_events"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    supplier_id: Mapped[str] = mapped_column(String(64))
    supplier_order_id: Mapped[str] = mapped_column(String(100))
    order_no: Mapped[str] = mapped_column(String(32))
    log_id: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(60))
    body: Mapped[str] = mapped_column(Text)  # the exact JSON sent on every attempt
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    retry_until: Mapped[datetime]
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_webhook_events_sequence", "supplier_order_id", "log_id"),
        Index("ix_webhook_events_supplier", "supplier_id", "state"),
    )


class WebhookAttempt(Base):
    """Every delivery attempt, answered or not (`GET /admin/suppliers/{id}/deliveries`)."""

    __tablename__ = "webhook_attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("webhook_events.id"), index=True)
    supplier_id: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    duration_ms: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime]

    __table_args__ = (Index("ix_webhook_attempts_supplier", "supplier_id", "id"),)


class WebhookCursor(Base):
    """How far the dispatchers have turned order_log into events (every id ≤ last_id)."""

    __tablename__ = "webhook_cursor"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_id: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime]
