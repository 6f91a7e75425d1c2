"""Pydantic contracts of the catalog and of an order's priced plan."""

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from domain.states import OrderType, ProductKind


class Model(BaseModel):
    """Base for every contract: unknown fields are errors, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Address(Model):
    name: str = Field(min_length=1, max_length=100)
    phone: str = Field(min_length=3, max_length=40)
    region: str = Field(min_length=1, max_length=200)
    address: str = Field(min_length=1, max_length=500)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)


class OrderLine(Model):
    sku: str = Field(min_length=1, max_length=64)
    # Validated by the domain (InvalidInput) rather than here, so a bad quantity is
    # the same typed error whether it came through the API or a workflow input.
    qty: int
    # The catalog zone the customer found the product in (普通商品 / 活动区域 ...), for
    # zone statistics; one of the policy's source zones, the first of them when omitted.
    source: str | None = Field(default=None, min_length=1, max_length=32)


class GroupInput(Model):
    """Per-supplier choices on the submit form."""

    supplier_id: str
    address: Address | None = None
    remark: str = Field(default="", max_length=500)


class SubmitOrder(Model):
    customer_id: str
    lines: list[OrderLine] = Field(min_length=1)
    coins: Decimal = Decimal("0.00")
    groups: list[GroupInput] = Field(default_factory=list)
    order_type: OrderType = OrderType.SELF
    # friend_pay only: SHA-256 (hex) of the pay request's token. The token itself never
    # enters Temporal or the database; whoever holds it may pay the order.
    pay_token_hash: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class CatalogProduct(Model):
    sku: str
    name: str
    supplier_id: str
    product_type: str
    kind: ProductKind
    price: Decimal
    on_hand: int = 0
    reserved: int = 0
    active: bool = True

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class CustomerAccount(Model):
    id: str
    coins: Decimal = Decimal("0.00")
    default_address: Address | None = None


class ItemPlan(Model):
    item_id: str
    sku: str
    name: str
    product_type: str
    kind: ProductKind
    price: Decimal
    qty: int
    line_total: Decimal
    # Coins spent on this line; the rest of line_total was paid in money.
    coin_share: Decimal
    source: str = "normal"  # catalog zone of the line (plans from before zones: normal)

    @property
    def money_paid(self) -> Decimal:
        return self.line_total - self.coin_share


class SubOrderPlan(Model):
    id: str
    product_type: str
    item_ids: list[str]


class SupplierOrderPlan(Model):
    id: str
    supplier_id: str
    needs_address: bool
    address: Address | None
    remark: str = ""
    items: list[ItemPlan]
    sub_orders: list[SubOrderPlan]
    subtotal: Decimal
    postage: Decimal
    postage_coin_share: Decimal
    coin_share: Decimal
    payable: Decimal

    @property
    def total(self) -> Decimal:
        return self.subtotal + self.postage


class OrderPlan(Model):
    order_no: str
    customer_id: str
    order_type: OrderType = OrderType.SELF
    supplier_orders: list[SupplierOrderPlan]
    subtotal: Decimal
    postage: Decimal
    coins: Decimal
    payable: Decimal

    def supplier_order(self, supplier_order_id: str) -> SupplierOrderPlan:
        for so in self.supplier_orders:
            if so.id == supplier_order_id:
                return so
        raise KeyError(supplier_order_id)


class CheckoutItem(Model):
    sku: str
    name: str
    product_type: str
    kind: ProductKind
    price: Decimal
    qty: int
    line_total: Decimal


class CheckoutGroup(Model):
    """One supplier's box on the submit form."""

    supplier_id: str
    needs_address: bool
    address: Address | None
    items: list[CheckoutItem]
    subtotal: Decimal
    postage: Decimal
