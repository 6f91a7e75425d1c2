"""The supplier's own side: paid supplier orders, shipping, receiver change, cancel.

A supplier sees only its own supplier orders, only once paid, and never the
customer's account (no customer id, no coins). Another supplier's id is a 404.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from db import queries
from domain.errors import InvalidInput, NotFound
from domain.messages import (
    CancelSupplierOrder,
    ChangeReceiver,
    EditTracking,
    ShipItems,
    ShipLine,
    SupplierOrderSnapshot,
)
from domain.models import Address
from domain.states import Actor, SupplierOrderStatus
from starter.api import access, views
from starter.api.deps import Ctx, Sessions, SettingsDep, SupplierCtx, SupplierOrAdmin
from starter.api.routers._common import AUTH, MAX_OFFSET, errors
from starter.api.schemas import (
    CancelIn,
    ShipmentIn,
    SupplierPage,
    SupplierViewOut,
    TrackingFixIn,
)
from starter.api.temporal import guarded, supplier_order_workflow_id
from starter.security import Role
from workflows.supplier_order import SupplierOrderWorkflow

router = APIRouter(prefix="/supplier", tags=["supplier"])

SupplierOrderId = Annotated[str, Path(alias="id", min_length=1, max_length=100)]
STATUSES = [s.value for s in SupplierOrderStatus if s is not SupplierOrderStatus.PENDING_PAYMENT]


async def supplier_view(
    sessions: Sessions, settings: SettingsDep, supplier_order_id: str
) -> SupplierViewOut:
    async with sessions() as s:
        row = await queries.get_supplier_order(s, supplier_order_id)
        if row is None:
            raise NotFound(f"no supplier order {supplier_order_id!r}")
        (detail,) = await queries.supplier_order_details(s, [row])
    return views.supplier_view(detail, settings.shipping_speeds_kmh)


@router.get("/orders", response_model=SupplierPage, responses=errors(*AUTH, 422))
async def list_supplier_orders(
    principal: SupplierOrAdmin,
    sessions: Sessions,
    settings: SettingsDep,
    status: Annotated[str | None, Query(description=", ".join(STATUSES))] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> SupplierPage:
    """The supplier's paid orders, newest payment first (an admin sees every supplier's)."""
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"unknown status {status!r}; one of {', '.join(STATUSES)}")
    supplier_id = principal.supplier_id if principal.role is Role.SUPPLIER else None
    async with sessions() as s:
        rows, total = await queries.list_supplier_orders(s, supplier_id, status, limit, offset)
        details = await queries.supplier_order_details(s, rows)
    speeds = settings.shipping_speeds_kmh
    return SupplierPage(
        items=[views.supplier_view(d, speeds) for d in details],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/orders/{id}", response_model=SupplierViewOut, responses=errors(*AUTH, 404))
async def get_supplier_order(
    supplier_order_id: SupplierOrderId,
    principal: SupplierOrAdmin,
    sessions: Sessions,
    settings: SettingsDep,
) -> SupplierViewOut:
    async with sessions() as s:
        row = await queries.get_supplier_order(s, supplier_order_id)
        if row is None or not queries.is_visible_to_supplier(row):
            raise NotFound(f"no supplier order {supplier_order_id!r}")
        await access.supplier_order_for(s, principal, supplier_order_id)
    return await supplier_view(sessions, settings, supplier_order_id)


async def _command(
    ctx: Ctx,
    supplier_order_id: str,
    route: str,
    payload: dict[str, Any],
    call: Callable[[Any, str | None], Awaitable[SupplierOrderSnapshot]],
    status: int = 200,
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
        return status, await supplier_view(ctx.sessions, ctx.settings, row.id)

    return await ctx.run(f"supplier/orders/{supplier_order_id}/{route}", payload, work)


@router.post(
    "/orders/{id}/shipments",
    status_code=201,
    response_model=SupplierViewOut,
    responses=errors(*AUTH, 404, 409, 422, 503, 504),
    summary="Ship items in one package (partial shipments allowed)",
)
async def ship(
    supplier_order_id: SupplierOrderId, body: ShipmentIn, ctx: SupplierCtx
) -> JSONResponse:
    cmd = ShipItems(
        carrier=body.carrier,
        tracking_no=body.tracking_no,
        method=body.method,
        items=[ShipLine(item_id=i.item_id, qty=i.qty) for i in body.items],
        actor_id=ctx.principal.sub,
    )
    return await _command(
        ctx,
        supplier_order_id,
        "ship",
        body.model_dump(mode="json"),
        lambda h, uid: h.execute_update(SupplierOrderWorkflow.ship, cmd, id=uid),
        status=201,
    )


@router.patch(
    "/orders/{id}/shipments/{tracking_no}",
    response_model=SupplierViewOut,
    responses=errors(*AUTH, 404, 409, 422, 503, 504),
    summary="Fix a package's tracking number (until receipt)",
)
async def edit_tracking(
    supplier_order_id: SupplierOrderId,
    tracking_no: Annotated[str, Path(min_length=1, max_length=80)],
    body: TrackingFixIn,
    ctx: SupplierCtx,
) -> JSONResponse:
    cmd = EditTracking(
        tracking_no=tracking_no,
        new_tracking_no=body.tracking_no,
        carrier=body.carrier,
        actor_id=ctx.principal.sub,
    )
    return await _command(
        ctx,
        supplier_order_id,
        "edit-tracking",
        {"tracking_no": tracking_no, **body.model_dump(mode="json")},
        lambda h, uid: h.execute_update(SupplierOrderWorkflow.edit_tracking, cmd, id=uid),
    )


@router.patch(
    "/orders/{id}/receiver",
    response_model=SupplierViewOut,
    responses=errors(*AUTH, 404, 409, 422, 503, 504),
    summary="Change the receiver (before the first shipment)",
)
async def change_receiver(
    supplier_order_id: SupplierOrderId, body: Address, ctx: SupplierCtx
) -> JSONResponse:
    cmd = ChangeReceiver(address=body, actor_id=ctx.principal.sub)
    return await _command(
        ctx,
        supplier_order_id,
        "receiver",
        body.model_dump(mode="json"),
        lambda h, uid: h.execute_update(SupplierOrderWorkflow.change_receiver, cmd, id=uid),
    )


@router.post(
    "/orders/{id}/cancel",
    response_model=SupplierViewOut,
    responses=errors(*AUTH, 404, 409, 422, 503, 504),
    summary="Cancel before shipping (the customer is refunded)",
)
async def supplier_cancel(
    supplier_order_id: SupplierOrderId,
    ctx: SupplierCtx,
    body: Annotated[CancelIn | None, Body()] = None,
) -> JSONResponse:
    reason = body.reason if body else ""
    cmd = CancelSupplierOrder(actor=Actor.SUPPLIER, actor_id=ctx.principal.sub, reason=reason)
    return await _command(
        ctx,
        supplier_order_id,
        "cancel",
        {"reason": reason},
        lambda h, uid: h.execute_update(SupplierOrderWorkflow.cancel, cmd, id=uid),
    )
