"""Orders: submit, shopping records, cancel while unpaid, dev payment, buy again."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from db import queries
from db.session import write_session
from db.tables import CartLine, OrderLog
from domain.errors import Conflict, InvalidInput, InvalidState, NotFound
from domain.ids import new_order_no
from domain.messages import (
    CancelOrder,
    Deadlines,
    OrderInput,
    PaymentEvent,
    SnapshotQuery,
    SupplierOrderSnapshot,
)
from domain.models import OrderPlan, SubmitOrder
from domain.policy import Policy
from domain.split import MAX_QTY_PER_LINE, build_plan
from domain.states import Actor, OrderStatus, OrderType, SupplierOrderStatus
from starter.api import access, views
from starter.api.deps import CustomerCtx, CustomerOrAdmin, Gateway, Sessions, SettingsDep
from starter.api.pay_tokens import pay_token, shown_to_buyer, token_hash
from starter.api.payments import deliver_payment
from starter.api.routers._common import AUTH, MAX_OFFSET, errors, link
from starter.api.schemas import (
    BuyAgainOut,
    CancelIn,
    OrderOut,
    OrderPage,
    PayIn,
    PaymentAccepted,
    PlacedOrder,
    SkippedLine,
    SubmitIn,
)
from starter.api.temporal import (
    QUERY_TIMEOUT,
    PlacementRefused,
    TemporalGateway,
    guarded,
    order_workflow_id,
    start_order,
    supplier_order_workflow_id,
)
from starter.security import Role
from workflows.order import OrderWorkflow
from workflows.supplier_order import SupplierOrderWorkflow

router = APIRouter(tags=["orders"])

OrderNo = Annotated[str, Path(alias="no", min_length=1, max_length=32)]
_NO = "$response.body#/order_no"
ORDER_LINKS = {
    "GetOrder": link("/orders/{no}", "get", "Read the order", no=_NO),
    "PayOrder": link("/orders/{no}/pay", "post", "Pay it (dev payment)", no=_NO),
    "CancelOrder": link("/orders/{no}/cancel", "post", "Cancel it while unpaid", no=_NO),
}
STATUSES = sorted({s.value for s in OrderStatus} | {s.value for s in SupplierOrderStatus})


async def price_order(
    sessions: Sessions, order_no: str, request: SubmitOrder, policy: Policy
) -> OrderPlan:
    """The order as submitting it would place it: catalog prices, splits, coins (no writes)."""
    async with sessions() as s:
        catalog = await queries.catalog(s, (line.sku for line in request.lines))
        account = await queries.account(s, request.customer_id)
    if account is None:
        raise NotFound(f"no customer account {request.customer_id!r}; an admin creates it")
    return build_plan(order_no, request, catalog, account, policy)


def run_summary(plan: OrderPlan) -> tuple[str, str]:
    """Summary and details of the order's run in the Temporal UI."""
    summary = (
        f"Order {plan.order_no} · {plan.customer_id} · "
        f"{len(plan.supplier_orders)} supplier(s) · pay {plan.payable}"
    )
    details = (
        f"**Customer** {plan.customer_id}  \n"
        + "".join(
            f"**{so.supplier_id}** "
            + ", ".join(f"{i.sku} x{i.qty}" for i in so.items)
            + f" = {so.subtotal} + postage {so.postage}  \n"
            for so in plan.supplier_orders
        )
        + f"**Coins** {plan.coins} · **Payable** {plan.payable}"
    )
    return summary, details


# --- submit ---------------------------------------------------------------------------------


@router.post(
    "/orders",
    status_code=201,
    response_model=PlacedOrder,
    responses={
        **errors(*AUTH, 404, 409, 422, 503, 504),
        201: {"links": ORDER_LINKS},
    },
    summary="Submit an order: reserve stock, deduct coins, wait for payment",
)
async def submit(body: SubmitIn, ctx: CustomerCtx) -> JSONResponse:
    request = SubmitOrder(
        customer_id=ctx.principal.sub,
        lines=body.lines,
        coins=body.coins,
        groups=body.groups,
        order_type=body.order_type,
    )

    async def work(seed: dict[str, Any]) -> tuple[int, BaseModel]:
        order_no = str(seed["order_no"])
        policy = ctx.settings.policy()
        token: str | None = None
        placing = request
        if request.order_type is OrderType.FRIEND_PAY:
            # The order is placed with the token's hash only (pay_tokens.py).
            token = pay_token(ctx.settings.jwt_secret, order_no)
            placing = request.model_copy(update={"pay_token_hash": token_hash(token)})
        # Pre-check with the same pure rules the placement activity runs: bad input
        # is refused here, before Temporal is touched and with nothing written.
        plan = await price_order(ctx.sessions, order_no, placing, policy)
        summary, details = run_summary(plan)
        client = await ctx.gateway.client()
        try:
            placement = await start_order(
                client,
                ctx.settings.task_queue,
                order_no,
                OrderInput(order_no=order_no, request=placing, policy=policy),
                policy,
                summary=summary,
                details=details,
            )
        except PlacementRefused as refused:
            # Someone else took the stock (or the coins changed) between the check
            # and the placement: the same check on fresh data names the reason.
            await price_order(ctx.sessions, order_no, placing, policy)
            raise Conflict(f"the order could not be placed: {refused.message}") from None
        placed = views.placed(placement)
        placed.pay_token = token
        return 201, placed

    return await ctx.run(
        "submit", body.model_dump(mode="json"), work, seed=lambda: {"order_no": new_order_no()}
    )


# --- records ------------------------------------------------------------------------------------


@router.get("/orders", response_model=OrderPage, responses=errors(*AUTH, 422))
async def list_orders(
    principal: CustomerOrAdmin,
    sessions: Sessions,
    settings: SettingsDep,
    status: Annotated[
        str | None,
        Query(description=f"order or supplier-order status: {', '.join(STATUSES)}"),
    ] = None,
    customer_id: Annotated[str | None, Query(description="admin only")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> OrderPage:
    """Shopping records, newest first: the caller's own (a customer) or anyone's (admin)."""
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"unknown status {status!r}; one of {', '.join(STATUSES)}")
    owner = principal.sub if principal.role is Role.CUSTOMER else customer_id
    async with sessions() as s:
        rows, total = await queries.list_orders(s, owner, status, limit, offset)
        details = await queries.order_details(s, rows)
    speeds = settings.shipping_speeds_kmh
    return OrderPage(
        items=[views.order(d, speeds) for d in details], total=total, limit=limit, offset=offset
    )


async def _live_deadlines(
    gateway: TemporalGateway, supplier_order_ids: list[str]
) -> dict[str, Deadlines]:
    """Deadlines as the workflows compute them now; empty when Temporal does not answer."""
    client = gateway.connected
    if client is None or not supplier_order_ids:
        return {}

    async def one(so_id: str) -> SupplierOrderSnapshot:
        handle = client.get_workflow_handle(supplier_order_workflow_id(so_id))
        return await handle.query(
            SupplierOrderWorkflow.snapshot,
            SnapshotQuery(),
            rpc_timeout=timedelta(seconds=QUERY_TIMEOUT),
        )

    try:
        found = await asyncio.wait_for(
            asyncio.gather(*(one(i) for i in supplier_order_ids), return_exceptions=True),
            QUERY_TIMEOUT + 0.5,
        )
    except TimeoutError:
        return {}
    return {
        so_id: snap.deadlines
        for so_id, snap in zip(supplier_order_ids, found, strict=True)
        if isinstance(snap, SupplierOrderSnapshot)
    }


async def order_view(
    sessions: Sessions,
    settings: SettingsDep,
    gateway: TemporalGateway | None,
    order_no: str,
) -> OrderOut:
    async with sessions() as s:
        order = await queries.get_order(s, order_no)
        if order is None:
            raise NotFound(f"no order {order_no!r}")
        (detail,) = await queries.order_details(s, [order])
    live: dict[str, Deadlines] = {}
    if gateway is not None:
        running = [
            so.row.id
            for so in detail.supplier_orders
            if so.row.paid_at is not None and so.row.status != SupplierOrderStatus.CLOSED
        ]
        live = await _live_deadlines(gateway, running)
    return views.order(detail, settings.shipping_speeds_kmh, live)


@router.get(
    "/orders/{no}",
    response_model=OrderOut,
    responses={
        **errors(*AUTH, 404),
        200: {
            "links": {
                "GetFirstSupplierOrder": link(
                    "/supplier/orders/{id}",
                    "get",
                    "The first supplier order, as its supplier (or an admin) sees it",
                    id="$response.body#/supplier_orders/0/id",
                ),
                "ConfirmFirstReceipt": link(
                    "/supplier-orders/{id}/confirm-receipt",
                    "post",
                    "Confirm receipt of the first supplier order",
                    id="$response.body#/supplier_orders/0/id",
                ),
            }
        },
    },
)
async def get_order(
    order_no: OrderNo,
    principal: CustomerOrAdmin,
    sessions: Sessions,
    settings: SettingsDep,
    gateway: Gateway,
    live: Annotated[
        bool, Query(description="read deadlines live from the workflows (falls back to the DB)")
    ] = True,
) -> OrderOut:
    """One shopping record: a box per supplier order with sub-orders, packages and ETA,
    the payments and refunds of the order; its buyer also gets an open pay request's token."""
    async with sessions() as s:
        order = await access.order_for(s, principal, order_no)
    out = await order_view(sessions, settings, gateway if live else None, order_no)
    if principal.role is Role.CUSTOMER and principal.sub == order.customer_id:
        out.pay_token = shown_to_buyer(settings.jwt_secret, order)
    return out


# --- commands -------------------------------------------------------------------------------------


@router.post(
    "/orders/{no}/cancel",
    response_model=OrderOut,
    responses=errors(*AUTH, 404, 409, 422, 503, 504),
    summary="Cancel an unpaid order (stock and coins go back)",
)
async def cancel_order(
    order_no: OrderNo, ctx: CustomerCtx, body: Annotated[CancelIn | None, Body()] = None
) -> JSONResponse:
    reason = body.reason if body else ""

    async def work(_: dict[str, Any]) -> tuple[int, BaseModel]:
        async with ctx.sessions() as s:
            order = await access.order_for(s, ctx.principal, order_no)
        if order.status != OrderStatus.PENDING_PAYMENT:
            raise InvalidState(
                f"only unpaid orders can be cancelled here (order is {order.status}); "
                "cancel a paid supplier order instead"
            )
        client = await ctx.gateway.client()
        handle = client.get_workflow_handle(order_workflow_id(order_no))
        await guarded(
            lambda: handle.execute_update(
                OrderWorkflow.cancel,
                CancelOrder(actor=Actor.CUSTOMER, actor_id=ctx.principal.sub, reason=reason),
                id=ctx.update_id("cancel-order"),
            ),
            gone=f"order {order_no} is closed",
        )
        return 200, await order_view(ctx.sessions, ctx.settings, None, order_no)

    return await ctx.run(
        f"orders/{order_no}/cancel", {"order_no": order_no, "reason": reason}, work
    )


@router.post(
    "/orders/{no}/pay",
    status_code=202,
    response_model=PaymentAccepted,
    responses=errors(*AUTH, 404, 409, 422, 503),
    summary="Simulated payment (dev provider): the same path as the payment webhook",
)
async def pay(
    order_no: OrderNo, ctx: CustomerCtx, body: Annotated[PayIn | None, Body()] = None
) -> JSONResponse:
    body = body or PayIn()

    async def work(_: dict[str, Any]) -> tuple[int, BaseModel]:
        async with ctx.sessions() as s:
            order = await access.order_for(s, ctx.principal, order_no)
        if order.status != OrderStatus.PENDING_PAYMENT:
            raise InvalidState(f"order {order_no} is {order.status}: nothing to pay")
        # Event ids are global at the provider; scope the key by order so one
        # customer key reused on two orders is two events.
        event_id = f"dev-{order_no}-{ctx.idempotency_key or uuid.uuid4().hex}"
        event = PaymentEvent(
            event_id=event_id,
            status=body.status,
            amount=body.amount if body.amount is not None else order.payable,
            method=body.method,
            at=datetime.now(UTC),
            payer_id=ctx.principal.sub,
        )
        return 202, await deliver_payment(ctx.sessions, ctx.gateway, order_no, event)

    return await ctx.run(
        f"orders/{order_no}/pay", {"order_no": order_no, **body.model_dump(mode="json")}, work
    )


@router.post(
    "/orders/{no}/buy-again",
    response_model=BuyAgainOut,
    responses=errors(*AUTH, 404, 422),
    summary="One distinct item → its product; several → added to the cart",
)
async def buy_again(order_no: OrderNo, ctx: CustomerCtx) -> JSONResponse:
    principal = ctx.principal

    async def work(_: dict[str, Any]) -> tuple[int, BaseModel]:
        now = datetime.now(UTC)
        async with write_session(ctx.sessions) as s:
            await access.order_for(s, principal, order_no)
            items = await queries.order_items(s, order_no)
            wanted: dict[str, int] = {}
            for item in items:
                wanted[item.sku] = wanted.get(item.sku, 0) + item.qty
            found = await queries.products(s, wanted)
            if len(wanted) == 1:
                (sku,) = wanted
                product = found.get(sku)
                if product is None:
                    return 200, BuyAgainOut(
                        skipped=[SkippedLine(sku=sku, reason="no longer in the catalog")]
                    )
                skipped = [] if product.active else [SkippedLine(sku=sku, reason="not on sale")]
                return 200, BuyAgainOut(product=views.product_ref(product), skipped=skipped)
            out = BuyAgainOut()
            added: dict[str, int] = {}
            for sku, qty in wanted.items():
                product = found.get(sku)
                if product is None or not product.active:
                    reason = "no longer in the catalog" if product is None else "not on sale"
                    out.skipped.append(SkippedLine(sku=sku, reason=reason))
                    continue
                line = await s.get(CartLine, (principal.sub, sku))
                if line is None:
                    line = CartLine(customer_id=principal.sub, sku=sku, qty=qty, added_at=now)
                    s.add(line)
                    added[sku] = qty
                else:
                    before = line.qty
                    line.qty = min(line.qty + qty, MAX_QTY_PER_LINE)
                    added[sku] = line.qty - before
                out.added.append(views.cart_line(line, product))
            if out.added:
                # The cart changed: the operation log says so in the same transaction.
                s.add(
                    OrderLog(
                        order_no=order_no,
                        actor=Actor.CUSTOMER,
                        actor_id=principal.sub,
                        action="buy_again",
                        detail={
                            "added": added,
                            "skipped": [li.sku for li in out.skipped],
                        },
                        at=now,
                    )
                )
            await s.flush()
            out.cart = [views.cart_line(li, p) for li, p in await queries.cart(s, principal.sub)]
        return 200, out

    return await ctx.run(f"orders/{order_no}/buy-again", {"order_no": order_no}, work)
