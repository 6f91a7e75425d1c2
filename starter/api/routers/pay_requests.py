"""Friend pays (代付, DESIGN.md §11): a friend_pay order's pay request.

The buyer shares the `pay_token` the submit returned. Any logged-in customer holding it
reads what is to be paid (amount, items, deadline, status: never the order number, the
buyer, the address or the account) and any customer but the buyer pays it, through the same
path as the payment webhook, as its payer. The order records who paid; its money refunds go
back to that payer, its coins to the buyer. An unknown token and one used up (the order was
paid, cancelled or closed, or its payment deadline passed) are the same 404.
"""

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import queries
from db.tables import Order
from domain.errors import NotFound
from domain.messages import PaymentEvent
from starter.api import views
from starter.api.deps import Customer, CustomerCtx, Sessions
from starter.api.errors import forbidden
from starter.api.pay_tokens import is_open, token_hash
from starter.api.payments import deliver_payment
from starter.api.routers._common import AUTH, errors
from starter.api.schemas import PayIn, PayRequestOut, PayRequestPaid

router = APIRouter(prefix="/pay-requests", tags=["pay requests"])

Token = Annotated[
    str, Path(min_length=1, max_length=200, description="the `pay_token` the buyer shared")
]
GONE = (
    "no open pay request for this token: unknown, already paid, cancelled or closed, "
    "or past its payment deadline"
)


async def open_request(sessions: async_sessionmaker[AsyncSession], token: str) -> Order:
    async with sessions() as s:
        order = await queries.order_by_pay_token(s, token_hash(token))
    if order is None or not is_open(order):
        raise NotFound(GONE)
    return order


@router.get(
    "/{token}",
    response_model=PayRequestOut,
    responses=errors(*AUTH, 404, 422),
    summary="What a friend is asked to pay: amount, items, deadline, status",
)
async def read_pay_request(token: Token, _: Customer, sessions: Sessions) -> PayRequestOut:
    """Any logged-in customer holding the token; 404 once it is used up or expired."""
    order = await open_request(sessions, token)
    async with sessions() as s:
        items = await queries.order_items(s, order.order_no)
    return views.pay_request(order, items)


@router.post(
    "/{token}/pay",
    status_code=202,
    response_model=PayRequestPaid,
    responses=errors(*AUTH, 404, 409, 422, 503),
    summary="Pay a friend's order (dev provider): the same path as the payment webhook",
)
async def pay_pay_request(
    token: Token, ctx: CustomerCtx, body: Annotated[PayIn | None, Body()] = None
) -> JSONResponse:
    """A customer other than the buyer (the buyer gets 403 and pays with
    `POST /orders/{no}/pay`). The amount defaults to the request's; a payment that arrives
    when the order no longer needs it (another friend paid first) is refunded to its payer."""
    body = body or PayIn()
    digest = token_hash(token)
    payer = ctx.principal.sub

    async def work(_: dict[str, Any]) -> tuple[int, BaseModel]:
        order = await open_request(ctx.sessions, token)
        if order.customer_id == payer:
            raise forbidden(
                "you placed this order: a friend pays it through this pay request; "
                f"to pay it yourself use POST /orders/{order.order_no}/pay"
            )
        key = ctx.idempotency_key
        # Event ids are global at the provider: one per payer and key (or per call).
        suffix = (
            hashlib.sha256(f"{payer}\n{key}".encode()).hexdigest()[:32] if key else uuid.uuid4().hex
        )
        event = PaymentEvent(
            event_id=f"dev-payreq-{digest[:16]}-{suffix}",
            status=body.status,
            amount=body.amount if body.amount is not None else order.payable,
            method=body.method,
            at=datetime.now(UTC),
            payer_id=payer,
        )
        accepted = await deliver_payment(ctx.sessions, ctx.gateway, order.order_no, event)
        return 202, PayRequestPaid(event_id=accepted.event_id, outcome=accepted.outcome)

    return await ctx.run(
        f"pay-requests/{digest[:16]}/pay",
        {"token": digest, **body.model_dump(mode="json")},
        work,
    )
