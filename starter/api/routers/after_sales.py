"""After-sales requests: the supplier decides and receives returns, the customer ships
them back or withdraws. Each step is an update of the request's own workflow."""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from db import queries
from domain.errors import NotFound
from domain.messages import (
    AfterSaleDecision,
    AfterSaleSnapshot,
    CancelAfterSale,
    ReceiveReturn,
    ReturnShipment,
)
from starter.api import access, views
from starter.api.deps import Ctx, CustomerCtx, Party, Sessions, SupplierCtx
from starter.api.routers._common import AUTH, errors
from starter.api.schemas import AfterSaleOut, DecisionIn, ReturnShipmentIn
from starter.api.temporal import after_sale_workflow_id, guarded
from workflows.after_sale import AfterSaleWorkflow

router = APIRouter(prefix="/after-sales", tags=["after-sales"])

AfterSaleId = Annotated[str, Path(alias="id", min_length=1, max_length=120)]
COMMAND_ERRORS = errors(*AUTH, 404, 409, 422, 503, 504)


async def _view(sessions: Sessions, after_sale_id: str) -> AfterSaleOut:
    async with sessions() as s:
        row = await queries.get_after_sale(s, after_sale_id)
    if row is None:
        raise NotFound(f"no after-sales request {after_sale_id!r}")
    return views.after_sale(row)


async def _command(
    ctx: Ctx,
    after_sale_id: str,
    route: str,
    payload: dict[str, Any],
    call: Callable[[Any, str | None], Awaitable[AfterSaleSnapshot]],
) -> JSONResponse:
    """Ownership check, then the update of the request's workflow, then the refreshed request."""

    async def work(_: dict[str, Any]) -> tuple[int, BaseModel]:
        async with ctx.sessions() as s:
            row = await access.after_sale_for(s, ctx.principal, after_sale_id)
        client = await ctx.gateway.client()
        handle = client.get_workflow_handle(after_sale_workflow_id(row.id))
        await guarded(
            lambda: call(handle, ctx.update_id(f"{route}:{row.id}")),
            gone=f"after-sales request {row.id} is {row.status} and closed",
        )
        return 200, await _view(ctx.sessions, row.id)

    return await ctx.run(f"after-sales/{after_sale_id}/{route}", payload, work)


@router.get("/{id}", response_model=AfterSaleOut, responses=errors(*AUTH, 404))
async def get_after_sale(
    after_sale_id: AfterSaleId, principal: Party, sessions: Sessions
) -> AfterSaleOut:
    async with sessions() as s:
        row = await access.after_sale_for(s, principal, after_sale_id)
    return views.after_sale(row)


@router.post(
    "/{id}/approve",
    response_model=AfterSaleOut,
    responses=COMMAND_ERRORS,
    summary="Supplier approves (a refund-only request is refunded at once)",
)
async def approve(
    after_sale_id: AfterSaleId, ctx: SupplierCtx, body: Annotated[DecisionIn | None, Body()] = None
) -> JSONResponse:
    reason = body.reason if body else ""
    cmd = AfterSaleDecision(approve=True, reason=reason, actor_id=ctx.principal.sub)
    return await _command(
        ctx,
        after_sale_id,
        "approve",
        {"reason": reason},
        lambda h, uid: h.execute_update(AfterSaleWorkflow.decide, cmd, id=uid),
    )


@router.post(
    "/{id}/reject",
    response_model=AfterSaleOut,
    responses=COMMAND_ERRORS,
    summary="Supplier rejects the request",
)
async def reject(
    after_sale_id: AfterSaleId, ctx: SupplierCtx, body: Annotated[DecisionIn | None, Body()] = None
) -> JSONResponse:
    reason = body.reason if body else ""
    cmd = AfterSaleDecision(approve=False, reason=reason, actor_id=ctx.principal.sub)
    return await _command(
        ctx,
        after_sale_id,
        "reject",
        {"reason": reason},
        lambda h, uid: h.execute_update(AfterSaleWorkflow.decide, cmd, id=uid),
    )


@router.post(
    "/{id}/return-shipment",
    response_model=AfterSaleOut,
    responses=COMMAND_ERRORS,
    summary="Customer ships the goods back (return_refund, once approved)",
)
async def return_shipment(
    after_sale_id: AfterSaleId, body: ReturnShipmentIn, ctx: CustomerCtx
) -> JSONResponse:
    cmd = ReturnShipment(
        carrier=body.carrier, tracking_no=body.tracking_no, actor_id=ctx.principal.sub
    )
    return await _command(
        ctx,
        after_sale_id,
        "return-shipment",
        body.model_dump(mode="json"),
        lambda h, uid: h.execute_update(AfterSaleWorkflow.return_shipment, cmd, id=uid),
    )


@router.post(
    "/{id}/receive-return",
    response_model=AfterSaleOut,
    responses=COMMAND_ERRORS,
    summary="Supplier confirms the returned goods arrived → refund",
)
async def receive_return(after_sale_id: AfterSaleId, ctx: SupplierCtx) -> JSONResponse:
    cmd = ReceiveReturn(actor_id=ctx.principal.sub)
    return await _command(
        ctx,
        after_sale_id,
        "receive-return",
        {},
        lambda h, uid: h.execute_update(AfterSaleWorkflow.receive_return, cmd, id=uid),
    )


@router.post(
    "/{id}/cancel",
    response_model=AfterSaleOut,
    responses=COMMAND_ERRORS,
    summary="Customer withdraws the request",
)
async def cancel(after_sale_id: AfterSaleId, ctx: CustomerCtx) -> JSONResponse:
    cmd = CancelAfterSale(actor_id=ctx.principal.sub)
    return await _command(
        ctx,
        after_sale_id,
        "cancel",
        {},
        lambda h, uid: h.execute_update(AfterSaleWorkflow.cancel, cmd, id=uid),
    )
