"""The caller's inbox: a supplier's order notices, a customer's messages."""

from typing import Annotated

from fastapi import APIRouter, Query

from db import queries
from starter.api import views
from starter.api.deps import Party, Sessions
from starter.api.routers._common import MAX_OFFSET, errors
from starter.api.schemas import NotificationPage
from starter.security import Role

router = APIRouter(tags=["notifications"])


@router.get("/notifications", response_model=NotificationPage, responses=errors(401, 422))
async def list_notifications(
    principal: Party,
    sessions: Sessions,
    order_no: Annotated[str | None, Query(max_length=32)] = None,
    recipient_type: Annotated[str | None, Query(description="admin only")] = None,
    recipient_id: Annotated[str | None, Query(description="admin only")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> NotificationPage:
    """Newest first. Suppliers and customers see their own; an admin sees all (filterable)."""
    if principal.role is Role.SUPPLIER:
        recipient_type, recipient_id = "supplier", principal.supplier_id
    elif principal.role is Role.CUSTOMER:
        recipient_type, recipient_id = "customer", principal.sub
    async with sessions() as s:
        rows, total = await queries.list_notifications(
            s, recipient_type, recipient_id, order_no, limit, offset
        )
    return NotificationPage(
        items=[views.notification(n) for n in rows], total=total, limit=limit, offset=offset
    )
