"""Supplier webhook deliveries, run by `WebhookDeliveryWorkflow` (workflows/webhook_delivery.py).

`deliver_webhook` is a regular activity: one signed POST per attempt, recorded in
`webhook_attempts`. A 2xx marks the event delivered; anything else (another status, a
timeout, a refused target) raises a retryable error, and Temporal's retry policy brings the
next attempt. It is idempotent: an event that is no longer pending (delivered, given up,
dropped) is not sent again. `give_up_webhook` (a local activity) marks an event failed when
its retry window is over.
"""

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from db.session import write_session
from db.tables import SupplierWebhook, WebhookAttempt, WebhookEvent
from domain.webhooks import (
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    BadTarget,
    DeliverWebhookParams,
    signature_header,
)
from starter.webhooks import (
    DELIVERED,
    DROPPED,
    FAILED,
    PENDING,
    USER_AGENT,
    Resolver,
    check_endpoint,
    resolve_host,
)

log = logging.getLogger("starter.webhooks")

NOT_DELIVERED = "WebhookNotDelivered"


def _secrets(hook: SupplierWebhook, now: datetime) -> list[str]:
    secrets = [hook.secret]
    until = hook.previous_secret_until
    if hook.previous_secret and until is not None and until > now:
        secrets.append(hook.previous_secret)
    return secrets


class WebhookActivities:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        resolve: Resolver = resolve_host,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.sessions = sessions
        self.resolve = resolve
        self.transport = transport

    @activity.defn
    async def deliver_webhook(self, p: DeliverWebhookParams) -> str:
        """One attempt: the event's state afterwards (`delivered`, or what it already was)."""
        now = datetime.now(UTC)
        async with write_session(self.sessions) as s:
            event = await s.get(WebhookEvent, p.event_id, with_for_update=True)
            if event is None:
                raise ApplicationError(f"no webhook event {p.event_id}", non_retryable=True)
            if event.state != PENDING:
                return event.state  # delivered already (a retry after a lost answer), or settled
            hook = await s.get(SupplierWebhook, event.supplier_id)
            if hook is None:  # the endpoint was removed meanwhile
                event.state = DROPPED
                return DROPPED
            event.attempts += 1
            attempt, body, type_, supplier_id = (
                event.attempts,
                event.body,
                event.type,
                hook.supplier_id,
            )
            url, secrets = hook.url, _secrets(hook, now)
        status: int | None = None
        error: str | None = None
        started = time.monotonic()
        try:
            async with asyncio.timeout(p.timeout_s + 1):
                await check_endpoint(url, p.allow_private, self.resolve)
                raw = body.encode()
                headers = {
                    "Content-Type": "application/json",
                    EVENT_ID_HEADER: p.event_id,
                    EVENT_TYPE_HEADER: type_,
                    SIGNATURE_HEADER: signature_header(secrets, int(time.time()), raw),
                }
                async with (
                    httpx.AsyncClient(
                        timeout=httpx.Timeout(p.timeout_s),
                        follow_redirects=False,  # a redirect could point anywhere, the local network too
                        headers={"User-Agent": USER_AGENT},
                        transport=self.transport,
                        trust_env=False,
                    ) as client,
                    # Streamed and closed unread: only the status counts, however big the answer.
                    client.stream("POST", url, content=raw, headers=headers) as answer,
                ):
                    status = answer.status_code
        except BadTarget as err:
            error = f"refused: {err}"
        except (TimeoutError, httpx.TimeoutException):
            error = f"timed out after {p.timeout_s:g}s"
        except httpx.HTTPError as err:
            error = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        took = int((time.monotonic() - started) * 1000)
        ok = status is not None and 200 <= status < 300
        if status is not None and not ok:
            error = f"answered HTTP {status}"
        done = datetime.now(UTC)
        async with write_session(self.sessions) as s:
            s.add(
                WebhookAttempt(
                    event_id=p.event_id,
                    supplier_id=supplier_id,
                    attempt=attempt,
                    status_code=status,
                    error=error[:500] if error else None,
                    duration_ms=took,
                    at=done,
                )
            )
            if ok:
                await s.execute(
                    update(WebhookEvent)
                    .where(WebhookEvent.id == p.event_id, WebhookEvent.state == PENDING)
                    .values(state=DELIVERED, delivered_at=done)
                    .execution_options(synchronize_session=False)
                )
        outcome = "delivered" if ok else (error or "failed")
        log.log(
            logging.INFO if ok else logging.WARNING,
            "webhook %s (%s) to %s: attempt %d %s",
            p.event_id,
            type_,
            supplier_id,
            attempt,
            outcome,
        )
        if not ok:
            raise ApplicationError(f"attempt {attempt}: {outcome}", type=NOT_DELIVERED)
        return DELIVERED

    @activity.defn
    async def give_up_webhook(self, event_id: str) -> None:
        """The retry window is over: a still pending event becomes `failed`."""
        async with write_session(self.sessions) as s:
            result: Any = await s.execute(
                update(WebhookEvent)
                .where(WebhookEvent.id == event_id, WebhookEvent.state == PENDING)
                .values(state=FAILED)
                .execution_options(synchronize_session=False)
            )
        if getattr(result, "rowcount", 0):
            log.warning("webhook %s: giving up", event_id)
