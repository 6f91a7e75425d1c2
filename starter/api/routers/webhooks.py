"""Webhooks from the payment provider and the carriers (HMAC-SHA256 of the raw body).

The signature is checked on the exact bytes received, before the body is even
parsed: a bad or missing `X-Signature` is a 401 and nothing is signalled.
"""

from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, ValidationError
from temporalio.service import RPCError, RPCStatusCode

from db import queries
from domain.errors import InvalidInput, InvalidState, NotFound
from domain.messages import PaymentEvent, TrackingEvent
from domain.supplier_rules import VIRTUAL_METHOD
from starter.api.admission import Admitted
from starter.api.deps import Gateway, Sessions, SettingsDep
from starter.api.errors import ApiError, from_rpc_error
from starter.api.payments import deliver_payment
from starter.api.routers._common import errors
from starter.api.schemas import CarrierWebhook, PaymentWebhook, WebhookAck
from starter.api.temporal import supplier_order_workflow_id
from starter.security import verify_signature
from workflows.supplier_order import SupplierOrderWorkflow

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

M = TypeVar("M", bound=BaseModel)
Signature = Annotated[
    str | None,
    Header(alias="X-Signature", description="hex HMAC-SHA256 of the raw body"),
]


def _body_doc(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


async def _verified(request: Request, secret: str, signature: str | None, model: type[M]) -> M:
    raw = await request.body()
    if not verify_signature(secret, raw, signature):
        raise ApiError(401, "invalid_signature", "missing or wrong X-Signature")
    try:
        return model.model_validate_json(raw)
    except ValidationError as err:
        problems = err.errors()
        where = ".".join(str(p) for p in problems[0]["loc"]) if problems else ""
        what = problems[0]["msg"] if problems else "invalid"
        raise InvalidInput(
            f"malformed webhook body: {where + ': ' if where else ''}{what}"
        ) from None


@router.post(
    "/payment",
    status_code=202,
    response_model=WebhookAck,
    responses=errors(401, 404, 409, 422, 503),
    openapi_extra=_body_doc(PaymentWebhook),
    summary="Payment provider: succeeded/failed (de-duplicated by event_id)",
)
async def payment_webhook(
    request: Request,
    _: Admitted,
    sessions: Sessions,
    gateway: Gateway,
    settings: SettingsDep,
    x_signature: Signature = None,
) -> WebhookAck:
    body = await _verified(request, settings.webhook_secret, x_signature, PaymentWebhook)
    event = PaymentEvent(
        event_id=body.event_id,
        status=body.status,
        amount=body.amount,
        method=body.method,
        at=body.at,
        payer_id=body.payer_id,
    )
    result = await deliver_payment(sessions, gateway, body.order_no, event)
    return WebhookAck(outcome=result.outcome)


@router.post(
    "/carrier",
    status_code=202,
    response_model=WebhookAck,
    responses=errors(401, 404, 409, 422, 503),
    openapi_extra=_body_doc(CarrierWebhook),
    summary="Carrier scan: the package's position (de-duplicated by event_id)",
)
async def carrier_webhook(
    request: Request,
    _: Admitted,
    sessions: Sessions,
    gateway: Gateway,
    settings: SettingsDep,
    x_signature: Signature = None,
) -> WebhookAck:
    body = await _verified(request, settings.webhook_secret, x_signature, CarrierWebhook)
    async with sessions() as s:
        pkg = await queries.package_by_tracking(s, body.carrier, body.tracking_no)
    if pkg is None:
        raise NotFound(f"no package {body.carrier} {body.tracking_no}")
    if pkg.method == VIRTUAL_METHOD:
        # A virtual delivery is a code handed over at once: there is no parcel to locate.
        raise InvalidState(f"{body.tracking_no} is a virtual delivery: it has no parcel to track")
    client = await gateway.client()
    handle = client.get_workflow_handle(supplier_order_workflow_id(pkg.supplier_order_id))
    event = TrackingEvent(
        event_id=body.event_id,
        carrier=body.carrier,
        tracking_no=body.tracking_no,
        lat=body.lat,
        lon=body.lon,
        status=body.status,
        at=body.at,
    )
    try:
        await handle.signal(SupplierOrderWorkflow.tracking, event)
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            # The supplier order finished (after-sales window over): nothing follows
            # the package any more. Acknowledge so the carrier stops retrying.
            return WebhookAck(outcome="order_finished")
        raise from_rpc_error(err) from None
    return WebhookAck(outcome="signalled")
