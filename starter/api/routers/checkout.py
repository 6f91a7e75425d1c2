"""POST /checkout (per-supplier forms) and GET /cart."""

from decimal import Decimal

from fastapi import APIRouter

from db import queries
from domain.models import CustomerAccount
from domain.split import checkout_groups
from starter.api import views
from starter.api.deps import Customer, Sessions, SettingsDep
from starter.api.routers._common import AUTH, errors
from starter.api.schemas import CartOut, CheckoutGroupOut, CheckoutIn, CheckoutItemOut, CheckoutOut

router = APIRouter(tags=["checkout"])


@router.post(
    "/checkout",
    response_model=CheckoutOut,
    responses=errors(*AUTH, 409, 422),
    summary="Cart lines → one form per supplier (address pre-filled, postage)",
)
async def checkout(
    body: CheckoutIn, principal: Customer, sessions: Sessions, settings: SettingsDep
) -> CheckoutOut:
    async with sessions() as s:
        catalog = await queries.catalog(s, (line.sku for line in body.lines))
        account = await queries.account(s, principal.sub)
    # No account yet: an empty one (no coins, no default address) still prices the cart.
    account = account or CustomerAccount(id=principal.sub)
    groups = checkout_groups(body.lines, catalog, account, settings.policy())
    subtotal = sum((g.subtotal for g in groups), Decimal("0"))
    postage = sum((g.postage for g in groups), Decimal("0"))
    return CheckoutOut(
        groups=[
            CheckoutGroupOut(
                supplier_id=g.supplier_id,
                needs_address=g.needs_address,
                address=g.address,
                items=[
                    CheckoutItemOut(
                        sku=i.sku,
                        name=i.name,
                        product_type=i.product_type,
                        kind=i.kind,
                        price=views.m(i.price),
                        qty=i.qty,
                        line_total=views.m(i.line_total),
                    )
                    for i in g.items
                ],
                subtotal=views.m(g.subtotal),
                postage=views.m(g.postage),
            )
            for g in groups
        ],
        subtotal=views.m(subtotal),
        postage=views.m(postage),
        total=views.m(subtotal + postage),
        coins_available=views.m(account.coins),
    )


@router.get("/cart", response_model=CartOut, responses=errors(*AUTH))
async def get_cart(principal: Customer, sessions: Sessions) -> CartOut:
    async with sessions() as s:
        lines = await queries.cart(s, principal.sub)
    return CartOut(lines=[views.cart_line(line, p) for line, p in lines])
