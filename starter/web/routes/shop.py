"""The customer's shop, product, cart and checkout pages (DESIGN.md §9).

They read through the API's own handlers and queries (the catalog list, the product and its
reviews, the cart, the checkout forms of POST /checkout), so a page never shows a price, a
split, postage or a reviewer the API would not; every change is a call of the API from the
page's script (POST/PUT/DELETE /cart/lines, POST /orders, POST /cart/remove).

`/ui/products/{sku}` (anyone) is a product's card and its reviews centre, newest first
(`GET /products/{sku}/reviews`, 10 a page). Test ids: `product-page` (attr `data-sku`),
`review` (attrs `data-auto`, `data-rating`) with `review-rating`, `review-text`,
`review-reviewer`, `review-at`, `review-auto`; `no-reviews`, `next-reviews`,
`first-reviews`; the shop card's `product-link`.
"""

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated
from urllib.parse import urlencode

from annotated_types import MaxLen
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from db import queries
from db.tables import CartLine, Product
from domain.errors import DomainError
from domain.models import GroupInput, OrderLine
from domain.money import ZERO, money
from domain.split import MAX_QTY_PER_LINE, postage_for
from domain.states import ProductKind
from starter.api.deps import Sessions, SettingsDep
from starter.api.routers import catalog as catalog_api
from starter.api.routers import checkout as checkout_api
from starter.api.schemas import CheckoutIn, CheckoutOut
from starter.security import Role
from starter.web import render
from starter.web.session import CustomerViewer, MaybeViewer, login_url

router = APIRouter(prefix="/ui", include_in_schema=False)


def _max_length(model: type[BaseModel], name: str) -> int | None:
    """A field's max_length as the API validates it (for the input's maxlength)."""
    for rule in model.model_fields[name].metadata:
        if isinstance(rule, MaxLen):
            return int(rule.max_length)
    return None


SHOP_PAGE_SIZE = 12


def _shop_url(**params: str | int | None) -> str:
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return "/ui/shop" + (f"?{urlencode(kept)}" if kept else "")


@router.get("/shop")
async def shop(
    request: Request,
    viewer: MaybeViewer,
    sessions: Sessions,
    q: Annotated[str | None, Query(max_length=100)] = None,
    supplier_id: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = SHOP_PAGE_SIZE,
) -> Response:
    """Anyone may browse; adding to the cart needs a customer's login."""
    q = (q or "").strip() or None
    supplier_id = supplier_id or None
    customer = viewer is not None and viewer.role is Role.CUSTOMER
    page = await catalog_api.list_products(sessions, supplier_id, q, limit, cursor)
    async with sessions() as s:
        suppliers = await queries.catalog_suppliers(s)
        cart = await queries.cart(s, viewer.sub) if customer and viewer else []
    size = limit if limit != SHOP_PAGE_SIZE else None
    here = _shop_url(q=q, supplier_id=supplier_id, cursor=cursor, limit=size)
    return render.page(
        request,
        viewer,
        "shop.html",
        products=page.items,
        q=q or "",
        supplier_id=supplier_id or "",
        suppliers=suppliers,
        filtered=bool(q or supplier_id),
        first_url=_shop_url(q=q, supplier_id=supplier_id, limit=size) if cursor else None,
        next_url=(
            _shop_url(q=q, supplier_id=supplier_id, cursor=page.next_cursor, limit=size)
            if page.next_cursor
            else None
        ),
        customer=customer,
        login_to_buy=login_url(here),
        cart_count=sum(line.qty for line, _ in cart),
        cart_lines=len(cart),
        max_qty=MAX_QTY_PER_LINE,
        self_url=here,
    )


REVIEWS_PAGE_SIZE = 10


@router.get("/products/{sku}")
async def product_page(
    request: Request,
    viewer: MaybeViewer,
    sessions: Sessions,
    sku: Annotated[str, Path(min_length=1, max_length=64)],
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Anyone: the product (buyable as on its shop card) and its reviews, newest first."""
    product = await catalog_api.get_product(sku, sessions)
    reviews = await catalog_api.list_reviews(sku, sessions, REVIEWS_PAGE_SIZE, cursor)
    customer = viewer is not None and viewer.role is Role.CUSTOMER
    here = f"/ui/products/{sku}"
    return render.page(
        request,
        viewer,
        "product.html",
        product=product,
        reviews=reviews.items,
        first_url=here if cursor else None,
        next_url=(
            f"{here}?{urlencode({'cursor': reviews.next_cursor})}" if reviews.next_cursor else None
        ),
        customer=customer,
        login_to_buy=login_url(here),
        max_qty=MAX_QTY_PER_LINE,
    )


@dataclass
class CartRow:
    line: CartLine
    product: Product | None

    @property
    def problem(self) -> str | None:
        """Why checkout would refuse this line (msgid), if it would."""
        if self.product is None:
            return "No longer in the catalog"
        if not self.product.active:
            return "Not on sale any more"
        return None

    @property
    def available(self) -> int:
        return max(self.product.on_hand - self.product.reserved, 0) if self.product else 0

    @property
    def short(self) -> bool:
        return self.problem is None and self.line.qty > self.available

    @property
    def total(self) -> Decimal:
        return money(self.product.price * self.line.qty) if self.product else ZERO


@dataclass
class CartGroup:
    supplier_id: str
    rows: list[CartRow] = field(default_factory=list)
    postage: Decimal = ZERO

    @property
    def subtotal(self) -> Decimal:
        return sum((r.total for r in self.rows if r.problem is None), ZERO)


@router.get("/cart")
async def cart_page(
    request: Request, viewer: CustomerViewer, sessions: Sessions, settings: SettingsDep
) -> Response:
    async with sessions() as s:
        lines = await queries.cart(s, viewer.sub)
    policy = settings.policy()
    groups: dict[str, CartGroup] = {}
    for line, product in lines:
        key = product.supplier_id if product else ""
        groups.setdefault(key, CartGroup(key)).rows.append(CartRow(line, product))
    for g in groups.values():
        physical = any(
            r.problem is None and r.product and r.product.kind == ProductKind.PHYSICAL.value
            for r in g.rows
        )
        # The postage rule itself (domain.split), so the estimate is what checkout charges.
        g.postage = postage_for(g.subtotal, physical, policy)
    ordered = sorted(groups.values(), key=lambda g: (g.supplier_id == "", g.supplier_id))
    subtotal = sum((g.subtotal for g in ordered), ZERO)
    postage = sum((g.postage for g in ordered), ZERO)
    rows = [r for g in ordered for r in g.rows]
    return render.page(
        request,
        viewer,
        "cart.html",
        groups=ordered,
        subtotal=subtotal,
        postage=postage,
        total=subtotal + postage,
        count=sum(r.line.qty for r in rows),
        blocked=any(r.problem or r.short for r in rows),
        max_qty=MAX_QTY_PER_LINE,
        free_postage_from=policy.free_postage_from,
    )


@router.get("/checkout")
async def checkout_page(
    request: Request, viewer: CustomerViewer, sessions: Sessions, settings: SettingsDep
) -> Response:
    """The per-supplier forms, from the cart, by the API's own POST /checkout handler."""
    async with sessions() as s:
        lines = await queries.cart(s, viewer.sub)
    out: CheckoutOut | None = None
    refusal: str | None = None
    if lines:
        body = CheckoutIn(lines=[OrderLine(sku=line.sku, qty=line.qty) for line, _ in lines])
        try:
            out = await checkout_api.checkout(body, viewer.principal, sessions, settings)
        except DomainError as err:
            refusal = err.message
    return render.page(
        request,
        viewer,
        "checkout.html",
        checkout=out,
        refusal=refusal,
        empty=not lines,
        box_totals=[Decimal(g.subtotal) + Decimal(g.postage) for g in out.groups] if out else [],
        total_cents=int(Decimal(out.total) * 100) if out else 0,
        max_remark=_max_length(GroupInput, "remark"),
    )
