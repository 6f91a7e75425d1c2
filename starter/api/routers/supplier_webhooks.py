"""Admin: suppliers' webhook endpoints and their deliveries (DESIGN.md §11).

The endpoint is set here; events are made by the dispatcher (starter/webhooks.py), which
runs in the worker processes, and delivered by Temporal (workflows/webhook_delivery.py).
A redelivery signals the event's delivery workflow. The secret is stored to sign deliveries and never
shown again; replacing it keeps the old one signing beside the new one (a second `v1` in
`X-Orders-Signature`) for ORDERS_WEBHOOK_SECRET_OVERLAP, so a supplier can switch its
receiver over without losing a delivery.
"""

import base64
import binascii
import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import Field
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from db.session import write_session
from db.tables import SupplierWebhook, WebhookAttempt, WebhookEvent
from domain.errors import Conflict, InvalidInput, NotFound
from domain.webhooks import BadTarget
from starter.api.deps import Admin, Gateway, Sessions, SettingsDep
from starter.api.routers._common import AUTH, errors, link
from starter.api.schemas import Out
from starter.webhooks import DROPPED, PENDING, check_endpoint, delivery_policy, signal_delivery

router = APIRouter(prefix="/admin/suppliers", tags=["supplier webhooks"])

SupplierId = Annotated[str, Path(alias="id", min_length=1, max_length=64)]
EventId = Annotated[str, Path(min_length=1, max_length=40)]
_GET_WEBHOOK = link("/admin/suppliers/{id}/webhook", "get", "Read it back", id="$request.path.id")
_DELIVERIES = link(
    "/admin/suppliers/{id}/deliveries", "get", "Its delivery attempts", id="$request.path.id"
)


class WebhookIn(Out):
    url: str = Field(
        min_length=1,
        max_length=2000,
        description="http(s) URL events are POSTed to; loopback and private-network "
        "targets are refused unless ORDERS_WEBHOOK_ALLOW_PRIVATE=1",
        examples=["https://erp.example.com/orders-webhook"],
    )
    secret: str = Field(
        min_length=16,
        max_length=256,
        description="signs every delivery (X-Orders-Signature); never shown again",
    )


class WebhookOut(Out):
    supplier_id: str
    url: str
    created_at: datetime
    updated_at: datetime
    previous_secret_until: datetime | None = Field(
        description="while a replaced secret still signs beside the new one; null otherwise"
    )


class DeliveryOut(Out):
    event_id: str
    type: str
    attempt: int = Field(description="1 for the first attempt of the event, then 2, 3...")
    status_code: int | None = Field(description="the endpoint's answer; null if none came")
    error: str | None = Field(description="why the attempt failed; null when it delivered")
    at: datetime
    duration_ms: int
    order_no: str
    supplier_order_id: str
    event_state: str = Field(
        description="the event's state now: pending, delivered, failed (given up) or dropped "
        "(the endpoint was removed)"
    )


class DeliveryPage(Out):
    items: list[DeliveryOut] = Field(description="newest first")
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next (older) page; null on the last page"
    )


class RedeliveryOut(Out):
    event_id: str
    type: str
    state: Literal["pending"]
    next_attempt_at: datetime


def _view(row: SupplierWebhook) -> WebhookOut:
    until = row.previous_secret_until
    return WebhookOut(
        supplier_id=row.supplier_id,
        url=row.url,
        created_at=row.created_at,
        updated_at=row.updated_at,
        previous_secret_until=until if until and until > datetime.now(UTC) else None,
    )


@router.put(
    "/{id}/webhook",
    response_model=WebhookOut,
    responses={
        200: {"links": {"GetWebhook": _GET_WEBHOOK, "Deliveries": _DELIVERIES}},
        201: {
            "description": "Created",
            "model": WebhookOut,
            "links": {"GetWebhook": _GET_WEBHOOK, "Deliveries": _DELIVERIES},
        },
        **errors(*AUTH, 409, 422),
    },
    summary="Set a supplier's webhook endpoint and signing secret",
)
async def put_webhook(
    supplier_id: SupplierId,
    body: WebhookIn,
    principal: Admin,
    sessions: Sessions,
    settings: SettingsDep,
    response: Response,
) -> WebhookOut:
    """Events of this supplier's paid supplier orders are POSTed to `url` from now on,
    signed with `secret`. A new secret replaces the old one, which keeps signing beside
    it for ORDERS_WEBHOOK_SECRET_OVERLAP (1 day by default)."""
    url = body.url.strip()
    try:
        await check_endpoint(url, settings.webhook_allow_private)
    except BadTarget as err:
        raise InvalidInput(f"url: {err}") from None
    now = datetime.now(UTC)
    try:
        async with write_session(sessions) as s:
            row = await s.get(SupplierWebhook, supplier_id, with_for_update=True)
            if row is None:
                row = SupplierWebhook(supplier_id=supplier_id, created_at=now)
                row.secret = body.secret
                s.add(row)
                response.status_code = 201
            elif row.secret != body.secret:
                overlap = settings.webhook_secret_overlap
                row.previous_secret = row.secret if overlap else None
                row.previous_secret_until = now + overlap if overlap else None
                row.secret = body.secret
            row.url = url
            row.updated_at = now
    except IntegrityError:
        raise Conflict(f"the webhook of {supplier_id!r} was set concurrently; retry") from None
    return _view(row)


@router.get(
    "/{id}/webhook",
    response_model=WebhookOut,
    responses=errors(*AUTH, 404),
    summary="A supplier's webhook endpoint (never its secret)",
)
async def get_webhook(supplier_id: SupplierId, principal: Admin, sessions: Sessions) -> WebhookOut:
    async with sessions() as s:
        row = await s.get(SupplierWebhook, supplier_id)
    if row is None:
        raise NotFound(f"supplier {supplier_id!r} has no webhook")
    return _view(row)


@router.delete(
    "/{id}/webhook",
    status_code=204,
    responses=errors(*AUTH, 404),
    summary="Remove a supplier's webhook; events not yet delivered are dropped",
)
async def delete_webhook(supplier_id: SupplierId, principal: Admin, sessions: Sessions) -> Response:
    async with write_session(sessions) as s:
        row = await s.get(SupplierWebhook, supplier_id, with_for_update=True)
        if row is None:
            raise NotFound(f"supplier {supplier_id!r} has no webhook")
        await s.delete(row)
        await s.execute(
            update(WebhookEvent)
            .where(WebhookEvent.supplier_id == supplier_id, WebhookEvent.state == PENDING)
            .values(state=DROPPED)
        )
    return Response(status_code=204)


def _encode_cursor(attempt_id: int) -> str:
    return base64.urlsafe_b64encode(f"a:{attempt_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = raw.partition(":")
        attempt_id = int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput("cursor is not one this API returned; start again without it") from None
    if kind != "a" or not 0 < attempt_id < 2**63:
        raise InvalidInput("cursor is not one this API returned; start again without it")
    return attempt_id


@router.get(
    "/{id}/deliveries",
    response_model=DeliveryPage,
    responses=errors(*AUTH, 422),
    summary="Every delivery attempt to a supplier's endpoint, newest first (keyset paging)",
)
async def list_deliveries(
    supplier_id: SupplierId,
    principal: Admin,
    sessions: Sessions,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=100, description="`next_cursor` of the previous page")
    ] = None,
    event_id: Annotated[
        str | None, Query(max_length=40, description="only the attempts of this event")
    ] = None,
) -> DeliveryPage:
    query = (
        select(WebhookAttempt, WebhookEvent)
        .join(WebhookEvent, WebhookEvent.id == WebhookAttempt.event_id)
        .where(WebhookAttempt.supplier_id == supplier_id)
        .order_by(WebhookAttempt.id.desc())
        .limit(limit + 1)
    )
    if cursor:
        query = query.where(WebhookAttempt.id < _decode_cursor(cursor))
    if event_id:
        query = query.where(WebhookAttempt.event_id == event_id)
    async with sessions() as s:
        rows = (await s.execute(query)).all()
    page = rows[:limit]
    items = [
        DeliveryOut(
            event_id=a.event_id,
            type=e.type,
            attempt=a.attempt,
            status_code=a.status_code,
            error=a.error,
            at=a.at,
            duration_ms=a.duration_ms,
            order_no=e.order_no,
            supplier_order_id=e.supplier_order_id,
            event_state=e.state,
        )
        for a, e in page
    ]
    more = len(rows) > limit
    return DeliveryPage(
        items=items, next_cursor=_encode_cursor(page[-1][0].id) if more and page else None
    )


@router.post(
    "/{id}/deliveries/{event_id}/redeliver",
    status_code=202,
    response_model=RedeliveryOut,
    responses=errors(*AUTH, 404),
    summary="Send an event again (delivered, given up or dropped ones too)",
)
async def redeliver(
    supplier_id: SupplierId,
    event_id: EventId,
    principal: Admin,
    sessions: Sessions,
    settings: SettingsDep,
    gateway: Gateway,
) -> RedeliveryOut:
    """The event goes back to `pending` with the same id and body and its supplier order's
    delivery workflow is signalled with a fresh delivery of it, retried as a new event would
    be (for ORDERS_WEBHOOK_RETRY_FOR). It waits, as always, for the earlier events of its
    supplier order still pending."""
    now = datetime.now(UTC)
    async with write_session(sessions) as s:
        hook = await s.get(SupplierWebhook, supplier_id)
        event = await s.get(WebhookEvent, event_id, with_for_update=True)
        if event is None or event.supplier_id != supplier_id:
            raise NotFound(f"no event {event_id!r} for supplier {supplier_id!r}")
        if hook is None:
            raise NotFound(f"supplier {supplier_id!r} has no webhook to send it to")
        event.state = PENDING
        event.next_attempt_at = now
        event.retry_until = now + settings.webhook_retry_for
        row = {
            "id": event.id,
            "supplier_id": event.supplier_id,
            "supplier_order_id": event.supplier_order_id,
            "order_no": event.order_no,
            "log_id": event.log_id,
        }
    await signal_delivery(
        await gateway.client(),
        settings.task_queue,
        delivery_policy(settings),
        row,
        key=f"{event.id}/{uuid.uuid4().hex[:12]}",
    )
    return RedeliveryOut(
        event_id=event.id, type=event.type, state="pending", next_attempt_at=event.next_attempt_at
    )
