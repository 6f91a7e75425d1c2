"""Supplier webhooks (DESIGN.md §11): a transactional outbox derived from `order_log`,
delivered by Temporal.

Every change to an order appends an `order_log` row in the same transaction as the change
(docs/web.md, "Live updates"), so the log already *is* an outbox: nothing in the order
workflows or their activities knows about webhooks. A `Dispatcher` (one asyncio task per
worker process, started by worker.py) reads the rows after its cursor (`webhook_cursor`),
and for those whose action a supplier cares about (`domain.webhooks.EVENT_TYPES`) and whose
supplier has an endpoint, writes one `webhook_events` row per (row, supplier) with the exact
JSON body every attempt will carry. The event id is derived from the row and the supplier
and is the table's primary key, so two dispatchers, or one restarted, never make a second
event (`INSERT ... ON CONFLICT DO NOTHING`). On PostgreSQL a transaction may commit a lower
log id after a higher one; the cursor stops before such a gap for `gap_wait` (rows after it
are handled already), so a late commit is still seen.

Then it hands every event to Temporal: signal-with-start of the supplier order's
`WebhookDeliveryWorkflow` (`webhook-<supplier_order_id>`, workflows/webhook_delivery.py),
which de-duplicates by event id and delivers its events in order, each with the
`deliver_webhook` activity (activities/webhooks.py) and its retry policy. The persisted
cursor moves past rows only after their events were signalled, so a dispatcher that dies
between the insert and the signal signals them again when it (or another) re-reads them.
"""

import asyncio
import contextlib
import json
import logging
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from db.session import dialect_insert, write_session
from db.tables import (
    AfterSale,
    OrderItem,
    OrderLog,
    SupplierOrder,
    SupplierWebhook,
    WebhookCursor,
    WebhookEvent,
)
from domain.money import money
from domain.webhooks import (
    EVENT_TYPES,
    ORDER_LEVEL_ACTIONS,
    BadTarget,
    Target,
    WebhookDelivery,
    WebhookDeliveryInput,
    WebhookPolicy,
    delivery_workflow_id,
    event_id,
    ip_literal,
    parse_target,
    private_address,
    private_name,
)
from settings import Settings
from workflows.common import ORDER_NO, SUPPLIER_ID

log = logging.getLogger("starter.webhooks")

PENDING, DELIVERED, FAILED, DROPPED = "pending", "delivered", "failed", "dropped"
CURSOR = "order_log"
USER_AGENT = "orders-webhooks/1"
RESOLVE_TIMEOUT = 5.0
MAX_GAPS = 100  # gaps in order_log ids looked up again per round

Resolver = Callable[[str, int], Awaitable[list[str]]]


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(at: datetime | None) -> str | None:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z") if at else None


# --- endpoint checks ----------------------------------------------------------------------


async def resolve_host(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await asyncio.wait_for(
        loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT
    )
    return [str(info[4][0]) for info in infos]


async def check_endpoint(url: str, allow_private: bool, resolve: Resolver = resolve_host) -> Target:
    """The endpoint's target if the platform may call it, else `BadTarget`.

    Unless private targets are allowed, the host must not be a local name and every
    address it resolves to must be public, so a supplier cannot make the platform call
    its own network (checked when the URL is set, and again before every attempt).
    """
    target = parse_target(url)
    if allow_private:
        return target
    if private_name(target.host):
        raise BadTarget(f"{target.host} is a loopback name")
    literal = ip_literal(target.host)
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = await resolve(target.host, target.port)
        except (OSError, TimeoutError, UnicodeError):
            raise BadTarget(f"cannot resolve {target.host}") from None
    if not addresses:
        raise BadTarget(f"cannot resolve {target.host}")
    for address in addresses:
        if private_address(address):
            raise BadTarget(
                f"{target.host} is (or resolves to) a loopback or private-network address "
                f"({address}); set ORDERS_WEBHOOK_ALLOW_PRIVATE=1 to allow it"
            )
    return target


# --- events from order_log rows -----------------------------------------------------------


def _supplier_order_data(so: SupplierOrder, items: Sequence[OrderItem]) -> dict[str, Any]:
    """What a supplier's system needs of its supplier order: never the customer's account
    id, coins or what they paid after coins."""
    return {
        "order_no": so.order_no,
        "supplier_order_id": so.id,
        "supplier_id": so.supplier_id,
        "paid_at": iso(so.paid_at),
        "needs_address": so.needs_address,
        "receiver": so.address,
        "remark": so.remark,
        "subtotal": str(money(so.subtotal)),
        "postage": str(money(so.postage)),
        "items": [
            {
                "item_id": i.id,
                "sku": i.sku,
                "name": i.name,
                "product_type": i.product_type,
                "kind": i.kind,
                "qty": i.qty,
                "price": str(money(i.price)),
                "line_total": str(money(i.line_total)),
            }
            for i in sorted(items, key=lambda i: i.id)
        ],
    }


def _after_sale_data(row: AfterSale | None, detail: dict[str, Any]) -> dict[str, Any]:
    if row is None:  # not expected: the request is written with its log row
        return {"id": detail.get("after_sale_id")}
    return {
        "id": row.id,
        "item_id": row.item_id,
        "qty": row.qty,
        "type": row.type,
        "reason": row.reason,
        "return_carrier": row.return_carrier,
        "return_tracking_no": row.return_tracking_no,
    }


def _event_data(
    entry: OrderLog,
    type_: str,
    so: SupplierOrder,
    items: Sequence[OrderItem],
    after_sales: dict[str, AfterSale],
) -> dict[str, Any]:
    data = _supplier_order_data(so, items)
    detail = entry.detail or {}
    if type_ == "supplier_order.cancelled":
        data["reason"] = detail.get("reason")
        data["cancelled_by"] = entry.actor
    elif type_ == "supplier_order.reminded":
        data["reminded_at"] = iso(entry.at)
    elif type_ == "supplier_order.received":
        data["received_at"] = iso(entry.at)
        data["auto"] = entry.action == "receipt_auto_confirmed"
    elif type_.startswith("after_sale."):
        ref = str(detail.get("after_sale_id") or "")
        data["after_sale"] = _after_sale_data(after_sales.get(ref), detail)
        if entry.actor == "system":
            data["decided_by"] = "system"
    return data


async def events_for(
    s: AsyncSession, entries: Sequence[OrderLog], retry_for: timedelta, now: datetime
) -> list[dict[str, Any]]:
    """`webhook_events` rows for these log rows: one per row and supplier with an endpoint
    (only paid supplier orders: a supplier never hears of an unpaid one)."""
    entries = [e for e in entries if e.action in EVENT_TYPES]
    if not entries:
        return []
    so_ids = {e.supplier_order_id for e in entries if e.supplier_order_id}
    order_nos = {e.order_no for e in entries if e.action in ORDER_LEVEL_ACTIONS}
    sos = (
        await s.scalars(
            select(SupplierOrder)
            .join(SupplierWebhook, SupplierWebhook.supplier_id == SupplierOrder.supplier_id)
            .where(
                or_(SupplierOrder.id.in_(so_ids), SupplierOrder.order_no.in_(order_nos)),
                SupplierOrder.paid_at.is_not(None),
            )
        )
    ).all()
    if not sos:
        return []
    by_id = {so.id: so for so in sos}
    items: dict[str, list[OrderItem]] = {so.id: [] for so in sos}
    for item in (
        await s.scalars(select(OrderItem).where(OrderItem.supplier_order_id.in_(list(by_id))))
    ).all():
        items[item.supplier_order_id].append(item)
    refs = {
        str(e.detail.get("after_sale_id"))
        for e in entries
        if e.action.startswith("after_sale_") and (e.detail or {}).get("after_sale_id")
    }
    after_sales = {
        a.id: a for a in (await s.scalars(select(AfterSale).where(AfterSale.id.in_(refs)))).all()
    }
    rows: list[dict[str, Any]] = []
    for entry in entries:
        type_ = EVENT_TYPES[entry.action]
        if entry.action in ORDER_LEVEL_ACTIONS:
            targets = [so for so in sos if so.order_no == entry.order_no]
        else:
            one = by_id.get(entry.supplier_order_id or "")
            targets = [one] if one is not None else []
        for so in targets:
            eid = event_id(entry.order_no, entry.id, so.supplier_id)
            body = {
                "id": eid,
                "type": type_,
                "created_at": iso(entry.at),
                "data": _event_data(entry, type_, so, items[so.id], after_sales),
            }
            rows.append(
                {
                    "id": eid,
                    "supplier_id": so.supplier_id,
                    "supplier_order_id": so.id,
                    "order_no": entry.order_no,
                    "log_id": entry.id,
                    "type": type_,
                    "body": json.dumps(body, ensure_ascii=False, separators=(",", ":")),
                    "state": PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "retry_until": now + retry_for,
                    "created_at": now,
                }
            )
    return rows


def _insert_ignoring_duplicates(s: AsyncSession, table: Any) -> Any:
    return dialect_insert(s.get_bind().dialect.name, table).on_conflict_do_nothing()


# --- the dispatcher -----------------------------------------------------------------------


def delivery_policy(settings: Settings) -> WebhookPolicy:
    """The retry policy a delivery workflow starts with (and keeps while it runs)."""
    return WebhookPolicy(
        backoff_s=settings.webhook_backoff.total_seconds() or 1.0,
        backoff_max_s=settings.webhook_backoff_max.total_seconds() or 1.0,
        retry_for_s=settings.webhook_retry_for.total_seconds() or 1.0,
        timeout_s=settings.webhook_timeout.total_seconds(),
        allow_private=settings.webhook_allow_private,
    )


async def signal_delivery(
    client: Client,
    task_queue: str,
    policy: WebhookPolicy,
    event: dict[str, Any],
    key: str | None = None,
) -> WorkflowHandle[Any, Any]:
    """Signal-with-start the event's delivery workflow with one delivery of it.

    `event`: the row's supplier_order_id, supplier_id, order_no, id and log_id. `key`
    de-duplicates in the workflow (default the event id: signalling an event twice queues it
    once); a redelivery passes a fresh one. Search attributes: OrderNo and SupplierId only.
    """
    return await client.start_workflow(
        "WebhookDeliveryWorkflow",
        WebhookDeliveryInput(
            supplier_order_id=event["supplier_order_id"],
            supplier_id=event["supplier_id"],
            order_no=event["order_no"],
            policy=policy,
        ),
        id=delivery_workflow_id(event["supplier_order_id"]),
        task_queue=task_queue,
        start_signal="deliver",
        start_signal_args=[
            WebhookDelivery(key=key or event["id"], event_id=event["id"], log_id=event["log_id"])
        ],
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(ORDER_NO, event["order_no"]),
                SearchAttributePair(SUPPLIER_ID, event["supplier_id"]),
            ]
        ),
    )


class Dispatcher:
    """Turns order_log into webhook events and hands them to Temporal (see the module's doc).

    `run()` until `stop()`. Any number of dispatchers may share one database.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        client: Client,
        *,
        task_queue: str | None = None,
        batch: int = 500,
        gap_wait: float = 60.0,
        concurrency: int = 16,
    ) -> None:
        self.sessions = sessions
        self.client = client
        self.task_queue = task_queue or settings.task_queue
        self.policy = delivery_policy(settings)
        self.retry_for = settings.webhook_retry_for
        self.poll = settings.webhook_poll_interval.total_seconds()
        self.batch = batch
        self.gap_wait = gap_wait
        self.concurrency = concurrency
        self.name = f"{socket.gethostname()[:40]}:{uuid.uuid4().hex[:12]}"
        self._read_to = 0  # the highest order_log id this dispatcher has read
        self._gaps: dict[tuple[int, int], float] = {}  # missing log ids → first seen
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    # --- loop -------------------------------------------------------------------------

    async def run(self) -> None:
        log.info("webhook dispatcher %s started", self.name)
        try:
            while not self._stopping.is_set():
                more = False
                try:
                    more = await self.derive()
                except Exception:
                    log.exception("webhook dispatcher: a round failed; trying again shortly")
                if not more:
                    await self._nap(self.poll)
        finally:
            log.info("webhook dispatcher %s stopped", self.name)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def _nap(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    # --- derive events and signal them ----------------------------------------------------

    async def _cursor(self) -> int:
        async with self.sessions() as s:
            last = await s.scalar(select(WebhookCursor.last_id).where(WebhookCursor.name == CURSOR))
        if last is not None:
            return int(last)
        # First run on this database: start at the newest row (history is not replayed).
        async with write_session(self.sessions) as s:
            newest = int(await s.scalar(select(func.coalesce(func.max(OrderLog.id), 0))) or 0)
            await s.execute(
                _insert_ignoring_duplicates(s, WebhookCursor).values(
                    name=CURSOR, last_id=newest, updated_at=utcnow()
                )
            )
        async with self.sessions() as s:
            last = await s.scalar(select(WebhookCursor.last_id).where(WebhookCursor.name == CURSOR))
        return int(last or 0)

    async def derive(self) -> bool:
        """Order_log rows after the cursor → events → signals, one batch. True when there
        may be more.

        Rows are read after the highest id this dispatcher has read (`_read_to`), plus any
        that filled a gap since; the persisted cursor stays before the oldest gap younger
        than `gap_wait`, so a restarted dispatcher reads the late row too. Inserting an
        event twice is a no-op and a workflow queues an event id once, so re-reading rows is
        harmless. Nothing is remembered (in memory or in the cursor) until the round's
        events were signalled: a round that fails is done again.
        """
        low = await self._cursor()
        read_to, gaps_now = self._read_to, dict(self._gaps)
        if low > read_to:  # first round, or another dispatcher went further
            read_to = low
            gaps_now = {(max(a, low + 1), b): t for (a, b), t in gaps_now.items() if b > low}
        gaps = list(gaps_now)[:MAX_GAPS]
        async with self.sessions() as s:
            fresh = list(
                (
                    await s.scalars(
                        select(OrderLog)
                        .where(OrderLog.id > read_to)
                        .order_by(OrderLog.id)
                        .limit(self.batch)
                    )
                ).all()
            )
            filled = (
                list(
                    (
                        await s.scalars(
                            select(OrderLog)
                            .where(or_(*(OrderLog.id.between(a, b) for a, b in gaps)))
                            .order_by(OrderLog.id)
                        )
                    ).all()
                )
                if gaps
                else []
            )
        now_mono = time.monotonic()
        for entry in filled:  # a late commit: its id is no longer missing
            for (a, b), seen in list(gaps_now.items()):
                if a <= entry.id <= b:
                    del gaps_now[(a, b)]
                    if a < entry.id:
                        gaps_now[(a, entry.id - 1)] = seen
                    if entry.id < b:
                        gaps_now[(entry.id + 1, b)] = seen
        previous = read_to
        for entry in fresh:
            if entry.id > previous + 1:  # ids not (yet) visible: a later commit, or a rollback
                gaps_now[(previous + 1, entry.id - 1)] = now_mono
            previous = entry.id
        read_to = previous
        # Gaps older than gap_wait are rolled-back ids: the cursor passes them.
        gaps_now = {k: t for k, t in gaps_now.items() if now_mono - t < self.gap_wait}
        advanced = min((a - 1 for a, _ in gaps_now), default=read_to)
        entries = sorted(filled + fresh, key=lambda e: e.id)
        if not entries and advanced <= low:
            self._read_to, self._gaps = read_to, gaps_now
            return False
        now = utcnow()
        rows: list[dict[str, Any]] = []
        if entries:
            async with write_session(self.sessions) as s:
                rows = await events_for(s, entries, self.retry_for, now)
                if rows:
                    await s.execute(_insert_ignoring_duplicates(s, WebhookEvent), rows)
        await self.signal(rows)
        if advanced > low:
            async with write_session(self.sessions) as s:
                await s.execute(
                    update(WebhookCursor)
                    .where(WebhookCursor.name == CURSOR, WebhookCursor.last_id < advanced)
                    .values(last_id=advanced, updated_at=now)
                )
        self._read_to, self._gaps = read_to, gaps_now
        if rows:
            log.info("webhook events: %d from %d order_log rows", len(rows), len(entries))
        return len(fresh) == self.batch

    async def signal(self, rows: Sequence[dict[str, Any]]) -> None:
        """Each event to its supplier order's delivery workflow: one supplier order's in log
        order, different supplier orders side by side (`concurrency` at a time)."""
        by_order: dict[str, list[dict[str, Any]]] = {}
        for row in sorted(rows, key=lambda r: r["log_id"]):
            by_order.setdefault(row["supplier_order_id"], []).append(row)
        limit = asyncio.Semaphore(self.concurrency)

        async def one_order(events: list[dict[str, Any]]) -> None:
            async with limit:
                for event in events:
                    await signal_delivery(self.client, self.task_queue, self.policy, event)

        async with asyncio.TaskGroup() as group:
            for events in by_order.values():
                group.create_task(one_order(events))
