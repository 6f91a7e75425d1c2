"""The customer's cart, kept on the server (it follows the customer across devices).

Nothing is reserved by the cart: stock is reserved when the order is submitted, so a
cart may hold more than is in stock (the checkout and the submit say so). Every call
answers with the whole cart, as GET /cart does.
"""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from db import queries
from db.session import write_session
from db.tables import CartLine, Product
from domain.errors import Conflict, NotFound
from domain.split import MAX_QTY_PER_LINE
from starter.api import views
from starter.api.deps import Customer, IdempotencyKey, Sessions
from starter.api.idempotency import run_idempotent
from starter.api.routers._common import AUTH, errors
from starter.api.schemas import CartOut, In

router = APIRouter(tags=["cart"])

SkuText = Annotated[str, Field(min_length=1, max_length=64)]
Qty = Annotated[int, Field(ge=1, le=MAX_QTY_PER_LINE)]
Sku = Annotated[str, Path(min_length=1, max_length=64)]


class CartAddIn(In):
    sku: SkuText
    qty: Qty = 1


class CartQtyIn(In):
    qty: Qty


class CartRemoveLine(In):
    sku: SkuText
    qty: Qty


class CartRemoveIn(In):
    lines: list[CartRemoveLine] = Field(min_length=1, max_length=500)


async def _cart(s: AsyncSession, customer_id: str) -> CartOut:
    return CartOut(lines=[views.cart_line(li, p) for li, p in await queries.cart(s, customer_id)])


@router.post(
    "/cart/lines",
    response_model=CartOut,
    responses=errors(*AUTH, 404, 409, 422),
    summary="Add a product to the cart (sums with a line already there)",
)
async def add_line(
    body: CartAddIn,
    principal: Customer,
    sessions: Sessions,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """The quantity is added to the SKU's line, up to the most one line may hold
    (10000; beyond it the line stays at the maximum). Unknown SKU → 404; a product not
    on sale → 409. Stock is not checked nor reserved here. With an `Idempotency-Key`, a
    retried request adds once."""

    async def add() -> CartOut:
        async with write_session(sessions) as s:
            product = await s.get(Product, body.sku)
            if product is None:
                raise NotFound(f"no product {body.sku!r}", sku=body.sku)
            if not product.active:
                raise Conflict(f"product {body.sku!r} is not on sale", sku=body.sku)
            line = await s.get(CartLine, (principal.sub, body.sku), with_for_update=True)
            if line is None:
                s.add(
                    CartLine(
                        customer_id=principal.sub,
                        sku=body.sku,
                        qty=body.qty,
                        added_at=datetime.now(UTC),
                    )
                )
            else:
                line.qty = min(line.qty + body.qty, MAX_QTY_PER_LINE)
            await s.flush()
            return await _cart(s, principal.sub)

    async def work(_: dict[str, Any]) -> tuple[int, BaseModel]:
        try:
            return 200, await add()
        except IntegrityError:
            # The same SKU was added at the same moment (another tab): now it is a line
            # to add to.
            return 200, await add()

    return await run_idempotent(
        sessions, principal, "cart/lines", idempotency_key, body.model_dump(mode="json"), work
    )


@router.put(
    "/cart/lines/{sku}",
    response_model=CartOut,
    responses=errors(*AUTH, 404, 422),
    summary="Set the quantity of a line in the cart",
)
async def set_line(sku: Sku, body: CartQtyIn, principal: Customer, sessions: Sessions) -> CartOut:
    """The line must be in the cart (404 otherwise); remove it with DELETE."""
    async with write_session(sessions) as s:
        line = await s.get(CartLine, (principal.sub, sku))
        if line is None:
            raise NotFound(f"{sku!r} is not in your cart", sku=sku)
        line.qty = body.qty
        await s.flush()
        return await _cart(s, principal.sub)


@router.delete(
    "/cart/lines/{sku}",
    response_model=CartOut,
    responses=errors(*AUTH, 422),
    summary="Remove a line from the cart",
)
async def remove_line(sku: Sku, principal: Customer, sessions: Sessions) -> CartOut:
    """Idempotent: removing a line that is not there answers with the cart as it is."""
    async with write_session(sessions) as s:
        await s.execute(
            delete(CartLine).where(CartLine.customer_id == principal.sub, CartLine.sku == sku)
        )
        return await _cart(s, principal.sub)


@router.post(
    "/cart/remove",
    response_model=CartOut,
    responses=errors(*AUTH, 422),
    summary="Take quantities out of the cart (what an order just bought)",
)
async def remove_quantities(
    body: CartRemoveIn,
    principal: Customer,
    sessions: Sessions,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Each line's quantity is subtracted from the cart's line for that SKU, which goes
    when nothing is left; SKUs not in the cart are ignored. The checkout page calls it
    with the lines of the order it just placed (keyed by the order number), so units the
    customer added meanwhile, e.g. on another device, stay in the cart."""

    async def work(_: dict[str, Any]) -> tuple[int, BaseModel]:
        wanted: dict[str, int] = {}
        for li in body.lines:
            wanted[li.sku] = wanted.get(li.sku, 0) + li.qty
        async with write_session(sessions) as s:
            # Lines are locked in SKU order, whatever the body's order: two calls taking the
            # same lines in opposite orders would otherwise deadlock (a 500 on PostgreSQL).
            for sku, qty in sorted(wanted.items()):
                line = await s.get(CartLine, (principal.sub, sku), with_for_update=True)
                if line is None:
                    continue
                if line.qty <= qty:
                    await s.delete(line)
                else:
                    line.qty -= qty
            await s.flush()
            return 200, await _cart(s, principal.sub)

    return await run_idempotent(
        sessions, principal, "cart/remove", idempotency_key, body.model_dump(mode="json"), work
    )
