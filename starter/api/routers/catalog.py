"""Catalog (public list, product page and its reviews, admin upsert), customer accounts (admin).

The reviews centre (`GET /products/{sku}/reviews`, DESIGN.md §11) shows who wrote a review
the way Taobao does: a masked name ("a***e", from the customer's display name; "***" when
they have none), never their account id. Automatic reviews (the customer did not review in
time) carry `auto: true` and the platform's default text.
"""

import base64
import binascii
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import Field
from sqlalchemy.exc import IntegrityError

from db import queries
from db.session import write_session
from db.tables import CoinLedger, Customer, Product
from domain.errors import Conflict, InvalidInput, NotFound
from starter.api import views
from starter.api.deps import Admin, Sessions
from starter.api.routers._common import AUTH, errors, link
from starter.api.schemas import CustomerIn, CustomerOut, Out, ProductIn, ProductOut

router = APIRouter(tags=["catalog"])

_GET_PRODUCT = link("/products/{sku}", "get", "Read it back", sku="$request.path.sku")
_GET_REVIEWS = link("/products/{sku}/reviews", "get", "Its reviews", sku="$request.path.sku")
_GET_CUSTOMER = link("/admin/customers/{id}", "get", "Read it back", id="$request.path.id")

Sku = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
CustomerId = Annotated[str, Path(alias="id", min_length=1, max_length=64)]


# --- catalog list (shop) ------------------------------------------------------------------


class ProductPage(Out):
    items: list[ProductOut]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null on the last page"
    )


def encode_cursor(after_sku: str) -> str:
    """An opaque continuation token: clients pass it back, never build it."""
    raw = json.dumps({"after": after_sku}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        after = json.loads(raw)["after"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise InvalidInput("cursor is not one this API returned; start again without it") from None
    if not isinstance(after, str) or not after:
        raise InvalidInput("cursor is not one this API returned; start again without it")
    return after


@router.get(
    "/products",
    response_model=ProductPage,
    responses=errors(422),
    summary="Products on sale, in SKU order (keyset paging)",
)
async def list_products(
    sessions: Sessions,
    supplier_id: Annotated[str | None, Query(max_length=64, description="one supplier")] = None,
    q: Annotated[
        str | None,
        Query(max_length=100, description="part of the name or SKU, any case"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[
        str | None, Query(max_length=400, description="`next_cursor` of the previous page")
    ] = None,
) -> ProductPage:
    """Public: active products only; `next_cursor` continues after the last one shown."""
    after = decode_cursor(cursor) if cursor else None
    async with sessions() as s:
        rows, more_after = await queries.list_products(
            s, supplier_id or None, (q or "").strip() or None, limit, after
        )
    return ProductPage(
        items=[views.product(r) for r in rows],
        next_cursor=encode_cursor(more_after) if more_after else None,
    )


@router.get(
    "/products/{sku}",
    response_model=ProductOut,
    responses={200: {"links": {"GetReviews": _GET_REVIEWS}}, **errors(404)},
)
async def get_product(sku: Sku, sessions: Sessions) -> ProductOut:
    """Public: anyone may read a product."""
    async with sessions() as s:
        row = await queries.get_product(s, sku)
    if row is None:
        raise NotFound(f"no product {sku!r}")
    return views.product(row)


# --- reviews centre --------------------------------------------------------------------------


class ReviewOut(Out):
    rating: int = Field(ge=1, le=5)
    text: str
    auto: bool = Field(
        description="true: written by the platform when the customer did not review in time, "
        "with the default rating and text"
    )
    at: datetime
    reviewer: str = Field(
        description="the reviewer's name masked, e.g. a***e (*** when they have none); "
        "never their account"
    )


class ReviewPage(Out):
    items: list[ReviewOut]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null on the last page"
    )


def masked(name: str) -> str:
    """First and last character with *** between ("alice" → "a***e"), as Taobao shows."""
    name = name.strip()
    if not name:
        return "***"
    return f"{name[0]}***{name[-1]}" if len(name) > 1 else f"{name}***"


def encode_review_cursor(key: queries.ReviewKey) -> str:
    at, item_id = key
    raw = json.dumps({"at": at.isoformat(), "item": item_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_review_cursor(cursor: str) -> queries.ReviewKey:
    bad = "cursor is not one this API returned; start again without it"
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        at = datetime.fromisoformat(raw["at"])
        item_id = raw["item"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise InvalidInput(bad) from None
    if not isinstance(item_id, str) or not item_id or at.tzinfo is None:
        raise InvalidInput(bad)
    return at, item_id


@router.get(
    "/products/{sku}/reviews",
    response_model=ReviewPage,
    responses=errors(404, 422),
    summary="A product's reviews, newest first (keyset paging)",
)
async def list_reviews(
    sku: Sku,
    sessions: Sessions,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[
        str | None, Query(max_length=200, description="`next_cursor` of the previous page")
    ] = None,
) -> ReviewPage:
    """Public: the reviews of one product, automatic ones marked `auto` with their text."""
    after = decode_review_cursor(cursor) if cursor else None
    async with sessions() as s:
        if await queries.get_product(s, sku) is None:
            raise NotFound(f"no product {sku!r}")
        rows, last = await queries.product_reviews(s, sku, limit, after)
    return ReviewPage(
        items=[
            ReviewOut(
                rating=r.rating,
                text=r.text,
                auto=r.auto,
                at=r.at,
                reviewer=masked(r.reviewer_name),
            )
            for r in rows
        ],
        next_cursor=encode_review_cursor(last) if last is not None else None,
    )


@router.put(
    "/admin/products/{sku}",
    response_model=ProductOut,
    responses={
        200: {"links": {"GetProduct": _GET_PRODUCT, "GetReviews": _GET_REVIEWS}},
        201: {
            "description": "Created",
            "model": ProductOut,
            "links": {"GetProduct": _GET_PRODUCT, "GetReviews": _GET_REVIEWS},
        },
        **errors(*AUTH, 409, 422),
    },
    summary="Create or update a product (on_hand may not go below reserved)",
)
async def put_product(
    sku: Sku, body: ProductIn, principal: Admin, sessions: Sessions, response: Response
) -> ProductOut:
    now = datetime.now(UTC)
    try:
        async with write_session(sessions) as s:
            row = await s.get(Product, sku, with_for_update=True)
            if row is None:
                row = Product(sku=sku, reserved=0)
                s.add(row)
                response.status_code = 201
            elif body.on_hand < row.reserved:
                raise Conflict(
                    f"on_hand {body.on_hand} is below the {row.reserved} units reserved by "
                    "open orders",
                    reserved=row.reserved,
                )
            row.name = body.name
            row.supplier_id = body.supplier_id
            row.product_type = body.product_type
            row.kind = body.kind.value
            row.price = body.price
            row.on_hand = body.on_hand
            row.active = body.active
            row.updated_at = now
    except IntegrityError:
        raise Conflict(f"product {sku!r} was created concurrently; retry") from None
    return views.product(row)


@router.get("/admin/customers/{id}", response_model=CustomerOut, responses=errors(*AUTH, 404))
async def get_customer(
    customer_id: CustomerId, principal: Admin, sessions: Sessions
) -> CustomerOut:
    async with sessions() as s:
        row = await queries.get_customer(s, customer_id)
    if row is None:
        raise NotFound(f"no customer {customer_id!r}")
    return views.customer(row)


@router.put(
    "/admin/customers/{id}",
    response_model=CustomerOut,
    responses={
        200: {"links": {"GetCustomer": _GET_CUSTOMER}},
        201: {
            "description": "Created",
            "model": CustomerOut,
            "links": {"GetCustomer": _GET_CUSTOMER},
        },
        **errors(*AUTH, 409, 422),
    },
    summary="Create or update a customer: coin balance (ledgered) and default address",
)
async def put_customer(
    customer_id: CustomerId,
    body: CustomerIn,
    principal: Admin,
    sessions: Sessions,
    response: Response,
) -> CustomerOut:
    now = datetime.now(UTC)
    given = body.model_fields_set
    try:
        async with write_session(sessions) as s:
            row = await s.get(Customer, customer_id, with_for_update=True)
            if row is None:
                row = Customer(id=customer_id, name="", coins=Decimal("0.00"))
                s.add(row)
                response.status_code = 201
            old = row.coins if row.coins is not None else Decimal("0.00")
            if "name" in given and body.name is not None:
                row.name = body.name
            if "default_address" in given:
                row.default_address = (
                    body.default_address.model_dump(mode="json") if body.default_address else None
                )
            if "coins" in given and body.coins is not None and body.coins != old:
                # Every balance change is on the ledger: balance == sum(delta).
                s.add(
                    CoinLedger(
                        customer_id=customer_id,
                        delta=body.coins - old,
                        reason="admin_set",
                        order_no=None,
                        at=now,
                    )
                )
                row.coins = body.coins
    except IntegrityError:
        raise Conflict(f"customer {customer_id!r} was created concurrently; retry") from None
    return views.customer(row)
