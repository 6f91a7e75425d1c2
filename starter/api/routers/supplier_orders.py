"""The customer's commands on one supplier order (one record of the shopping list)."""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from db import queries
from domain.errors import NotFound
from domain.messages import (
    AfterSaleRef,
    CancelSupplierOrder,
    ConfirmReceipt,
    ExtendReceipt,
    RemindShipment,
    RequestAfterSale,
    SubmitReview,
    SupplierOrderSnapshot,
)
from domain.states import Actor
from starter.api import access, views
from starter.api.deps import Ctx, CustomerCtx, Sessions, SettingsDep
from starter.api.errors import ApiError
from starter.api.routers._common import AUTH, errors, link
from starter.api.schemas import AfterSaleIn, AfterSaleOut, CancelIn, ReviewIn, SupplierOrderOut
from starter.api.temporal import guarded, supplier_order_workflow_id
from workflows.supplier_order import SupplierOrderWorkflow

router = APIRouter(prefix="/supplier-orders", tags=["supplier orders (customer)"])

SupplierOrderId = Annotated[str, Path(alias="id", min_length=1, max_length=100)]
COMMAND_ERRORS = errors(*AUTH, 404, 409, 422, 503, 504)
_AFTER_SALE = "$response.body#/id"


async def customer_view(
    sessions: Sessions, settings: SettingsDep, supplier_order_id: str
) -> SupplierOrderOut:
    async with sessions() as s:
        row = await queries.get_supplier_order(s, supplier_order_id)
        if row is None:
            raise NotFound(f"no supplier order {supplier_order_id!r}")
        (detail,) = await queries.supplier_order_details(s, [row])
    return views.supplier_order(detail, settings.shipping_speeds_kmh)


async def _command(
    ctx: Ctx,
    supplier_order_id: str,
    route: str,
    payload: dict[str, Any],
    call: Callable[[Any, str | None], Awaitable[SupplierOrderSnapshot]],
) -> JSONResponse:
    """Ownership check, then the workflow update, then the refreshed record."""

    async def work(_: dict[str, Any]) -> tuple[int, BaseModel]:
        row = await access.commandable_supplier_order(
            ctx.sessions, ctx.principal, supplier_order_id
        )
        client = await ctx.gateway.client()
        handle = client.get_workflow_handle(supplier_order_workflow_id(row.id))
        await guarded(
            lambda: call(handle, ctx.update_id(f"{route}:{row.id}")),
            gone=f"supplier order {row.id} is {row.status} and no longer takes commands",
            starting=access.is_live(row),
        )
        return 200, await customer_view(ctx.sessions, ctx.settings, row.id)

    return await ctx.run(f"supplier-orders/{supplier_order_id}/{route}", payload, work)


@router.post(
    "/{id}/cancel",
    response_model=SupplierOrderOut,
    responses=COMMAND_ERRORS,
    summary="Cancel a paid supplier order before it ships (refund, stock and coins back)",
)
async def cancel(
    supplier_order_id: SupplierOrderId,
    ctx: CustomerCtx,
    body: Annotated[CancelIn | None, Body()] = None,
) -> JSONResponse:
    reason = body.reason if body else ""
    cmd = CancelSupplierOrder(actor=Actor.CUSTOMER, actor_id=ctx.principal.sub, reason=reason)
    return await _command(
        ctx,
        supplier_order_id,
        "cancel",
        {"reason": reason},
        lambda h, uid: h.execute_update(SupplierOrderWorkflow.cancel, cmd, id=uid),
    )


@router.post(
    "/{id}/remind",
    response_model=SupplierOrderOut,
    responses=errors(*AUTH, 404, 409, 429, 503, 504),
    summary="Remind the supplier to ship (at most once per interval; 429 with retry_at)",
)
async def remind(supplier_order_id: SupplierOrderId, ctx: CustomerCtx) -> JSONResponse:
    cmd = RemindShipment(actor_id=ctx.principal.sub)
    return await _command(
        ctx,
        supplier_order_id,
        "remind",
        {},
        lambda h, uid: h.execute_update(SupplierOrderWorkflow.remind, cmd, id=uid),
    )


@router.post(
    "/{id}/confirm-receipt",
    response_model=SupplierOrderOut,
    responses=COMMAND_ERRORS,
    summary="Confirm receipt (refused while any item is unshipped)",
)
async def confirm_receipt(supplier_order_id: SupplierOrderId, ctx: CustomerCtx) -> JSONResponse:
    cmd = ConfirmReceipt(actor_id=ctx.principal.sub)
    return await _command(
        ctx,
        supplier_order_id,
        "confirm-receipt",
        {},
        lambda h, uid: h.execute_update(SupplierOrderWorkflow.confirm_receipt, cmd, id=uid),
    )


@router.post(
    "/{id}/extend-receipt",
    response_model=SupplierOrderOut,
    responses=COMMAND_ERRORS,
    summary="Extend the auto-confirm deadline once",
)
async def extend_receipt(supplier_order_id: SupplierOrderId, ctx: CustomerCtx) -> JSONResponse:
    cmd = ExtendReceipt(actor_id=ctx.principal.sub)
    return await _command(
        ctx,
        supplier_order_id,
        "extend-receipt",
        {},
        lambda h, uid: h.execute_update(SupplierOrderWorkflow.extend_receipt, cmd, id=uid),
    )


@router.post(
    "/{id}/reviews",
    response_model=SupplierOrderOut,
    responses=COMMAND_ERRORS,
    summary="Review the received goods (all unreviewed items, or one)",
)
async def review(
    supplier_order_id: SupplierOrderId, body: ReviewIn, ctx: CustomerCtx
) -> JSONResponse:
    cmd = SubmitReview(
        item_id=body.item_id, rating=body.rating, text=body.text, actor_id=ctx.principal.sub
    )
    return await _command(
        ctx,
        supplier_order_id,
        "review",
        body.model_dump(mode="json"),
        lambda h, uid: h.execute_update(SupplierOrderWorkflow.review, cmd, id=uid),
    )


@router.post(
    "/{id}/after-sales",
    status_code=201,
    response_model=AfterSaleOut,
    responses={
        **COMMAND_ERRORS,
        201: {
            "links": {
                name: link(f"/after-sales/{{id}}{suffix}", method, text, id=_AFTER_SALE)
                for name, suffix, method, text in (
                    ("GetAfterSale", "", "get", "Read the request"),
                    ("Approve", "/approve", "post", "The supplier approves it"),
                    ("Reject", "/reject", "post", "The supplier rejects it"),
                    ("Withdraw", "/cancel", "post", "The customer withdraws it"),
                )
            }
        },
    },
    summary="Ask for a refund or a return of shipped items",
)
async def request_after_sale(
    supplier_order_id: SupplierOrderId, body: AfterSaleIn, ctx: CustomerCtx
) -> JSONResponse:
    cmd = RequestAfterSale(
        item_id=body.item_id,
        qty=body.qty,
        type=body.type,
        reason=body.reason,
        actor_id=ctx.principal.sub,
    )

    async def work(_: dict[str, Any]) -> tuple[int, BaseModel]:
        row = await access.commandable_supplier_order(
            ctx.sessions, ctx.principal, supplier_order_id
        )
        client = await ctx.gateway.client()
        handle = client.get_workflow_handle(supplier_order_workflow_id(row.id))
        ref: AfterSaleRef = await guarded(
            lambda: handle.execute_update(
                SupplierOrderWorkflow.request_after_sale,
                cmd,
                id=ctx.update_id(f"after-sale:{row.id}"),
            ),
            gone=f"supplier order {row.id} is {row.status} and its after-sales window is over",
            starting=access.is_live(row),
        )
        async with ctx.sessions() as s:
            after_sale = await queries.get_after_sale(s, ref.id)
        if after_sale is None:  # written by the update's activity before it returned
            raise ApiError(500, "internal", f"after-sales request {ref.id} was not recorded")
        return 201, views.after_sale(after_sale)

    return await ctx.run(
        f"supplier-orders/{supplier_order_id}/after-sales", body.model_dump(mode="json"), work
    )
