"""Catalog (public product page, admin upsert) and customer accounts (admin)."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Path, Response
from sqlalchemy.exc import IntegrityError

from db import queries
from db.session import write_session
from db.tables import CoinLedger, Customer, Product
from domain.errors import Conflict, NotFound
from starter.api import views
from starter.api.deps import Admin, Sessions
from starter.api.routers._common import AUTH, errors
from starter.api.schemas import CustomerIn, CustomerOut, ProductIn, ProductOut

router = APIRouter(tags=["catalog"])

Sku = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
CustomerId = Annotated[str, Path(alias="id", min_length=1, max_length=64)]


@router.get("/products/{sku}", response_model=ProductOut, responses=errors(404))
async def get_product(sku: Sku, sessions: Sessions) -> ProductOut:
    """Public: anyone may read a product."""
    async with sessions() as s:
        row = await queries.get_product(s, sku)
    if row is None:
        raise NotFound(f"no product {sku!r}")
    return views.product(row)


@router.put(
    "/admin/products/{sku}",
    response_model=ProductOut,
    responses={201: {"description": "Created", "model": ProductOut}, **errors(*AUTH, 409, 422)},
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
    responses={201: {"description": "Created", "model": CustomerOut}, **errors(*AUTH, 409, 422)},
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
