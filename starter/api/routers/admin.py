"""Admin: an order's operation log."""

from typing import Annotated

from fastapi import APIRouter, Path

from db import queries
from domain.errors import NotFound
from starter.api import views
from starter.api.deps import Admin, Sessions
from starter.api.routers._common import AUTH, errors
from starter.api.schemas import OrderLogOut

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get("/orders/{no}/log", response_model=OrderLogOut, responses=errors(*AUTH, 404))
async def order_log(
    order_no: Annotated[str, Path(alias="no", min_length=1, max_length=32)],
    principal: Admin,
    sessions: Sessions,
) -> OrderLogOut:
    """Every change to the order (actor, time, what), oldest first."""
    async with sessions() as s:
        order = await queries.get_order(s, order_no)
        entries = await queries.order_log(s, order_no)
    if order is None and not entries:
        raise NotFound(f"no order {order_no!r}")
    return OrderLogOut(order_no=order_no, entries=[views.log_entry(e) for e in entries])
