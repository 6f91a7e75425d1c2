"""Supplier webhooks (DESIGN.md §11): a transactional outbox derived from `order_log`.

Every change to an order appends an `order_log` row in the same transaction as the change
(docs/web.md, "Live updates"), so the log already *is* an outbox: nothing in the
workflows or activities knows about webhooks. A `Dispatcher` (one asyncio task per worker
process, started by worker.py) does two things in a loop:

1. **Derive events.** It reads the rows after its cursor (`webhook_cursor`), and for those
   whose action a supplier cares about (`domain.webhooks.EVENT_TYPES`) and whose supplier
   has an endpoint, writes one `webhook_events` row per (row, supplier) with the exact JSON
   body every attempt will carry. The event id is derived from the row and the supplier
   and is the table's primary key, so two dispatchers, or one restarted, never make a
   second event (`INSERT ... ON CONFLICT DO NOTHING`). On PostgreSQL a transaction may
   commit a lower log id after a higher one; the cursor stops before such a gap for
   `gap_wait` (rows after it are handled already), so a late commit is still seen.
2. **Deliver.** It claims due events with a lease (`UPDATE ... WHERE lease_until < now`,
   one row at a time, so any number of dispatchers share the work) and POSTs them, signed,
   with a timeout on every call. An event is due only when every earlier event of its
   supplier order has been delivered or given up: suppliers see a supplier order's events
   in order. A 2xx delivers; anything else is retried with exponential backoff until
   `ORDERS_WEBHOOK_RETRY_FOR` after the event was made, then the event is given up
   (`failed`). Every attempt is recorded (`webhook_attempts`). A dispatcher that dies
   mid-delivery leaves its lease to expire and another sends the event again: delivery is
   at least once, and receivers de-duplicate by `X-Orders-Event-Id`.

Deliveries run beside the workflows, never inside them: a supplier's endpoint being slow
or down delays nothing but its own events (at most `per_supplier` of its deliveries are in
flight at once, so it cannot take every slot either).
"""

import asyncio
import contextlib
import functools
import json
import logging
import random
import socket
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Select, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from db.session import write_session
from db.tables import (
    AfterSale,
    OrderItem,
    OrderLog,
    SupplierOrder,
    SupplierWebhook,
    WebhookAttempt,
    WebhookCursor,
    WebhookEvent,
)
from domain.money import money
from domain.webhooks import (
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    EVENT_TYPES,
    ORDER_LEVEL_ACTIONS,
    SIGNATURE_HEADER,
    BadTarget,
    Target,
    event_id,
    ip_literal,
    parse_target,
    private_address,
    private_name,
    retry_delay,
    signature_header,
)
from settings import Settings

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
    dialect = s.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    raise RuntimeError(f"webhook outbox: unsupported database {dialect!r}")


# --- the dispatcher -----------------------------------------------------------------------


class Dispatcher:
    """Turns order_log into webhook events and delivers them (see the module's doc).

    `run()` until `stop()`. Any number of dispatchers may share one database.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        *,
        concurrency: int = 32,
        per_supplier: int = 4,
        batch: int = 500,
        gap_wait: float = 60.0,
        resolve: Resolver = resolve_host,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.sessions = sessions
        self.allow_private = settings.webhook_allow_private
        self.retry_for = settings.webhook_retry_for
        self.backoff = settings.webhook_backoff
        self.backoff_max = settings.webhook_backoff_max
        self.timeout = settings.webhook_timeout.total_seconds()
        self.poll = settings.webhook_poll_interval.total_seconds()
        self.concurrency = concurrency
        self.per_supplier = per_supplier
        self.batch = batch
        self.gap_wait = gap_wait
        self.resolve = resolve
        self.transport = transport
        self.lease = timedelta(seconds=self.timeout + 30)
        self.name = f"{socket.gethostname()[:40]}:{uuid.uuid4().hex[:12]}"
        self._inflight: dict[str, tuple[str, asyncio.Task[None]]] = {}
        self._read_to = 0  # the highest order_log id this dispatcher has read
        self._gaps: dict[tuple[int, int], float] = {}  # missing log ids → first seen
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._client: httpx.AsyncClient | None = None

    # --- loop -------------------------------------------------------------------------

    async def run(self) -> None:
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout),
            follow_redirects=False,  # a redirect could point anywhere, the local network too
            headers={"User-Agent": USER_AGENT},
            transport=self.transport,
            trust_env=False,
        )
        log.info("webhook dispatcher %s started", self.name)
        try:
            while not self._stopping.is_set():
                more = False
                try:
                    more = await self.derive()
                    await self.dispatch()
                except Exception:
                    log.exception("webhook dispatcher: a round failed; trying again shortly")
                if not more:
                    await self._nap(self.poll)
        finally:
            await self._drain()
            await self._client.aclose()
            log.info("webhook dispatcher %s stopped", self.name)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def _nap(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    async def _drain(self) -> None:
        """Deliveries in flight may finish (they have their timeout); the rest is cancelled
        and its leases expire, so another dispatcher sends those events again."""
        tasks = [task for _, task in self._inflight.values()]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=self.timeout + 2)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    # --- 1. derive events ---------------------------------------------------------------

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
        """Order_log rows after the cursor → events, one batch. True when there may be more.

        Rows are read after the highest id this dispatcher has read (`_read_to`), plus any
        that filled a gap since; the persisted cursor stays before the oldest gap younger
        than `gap_wait`, so a restarted dispatcher reads the late row too. Inserting an
        event twice is a no-op, so re-reading rows is harmless.
        """
        low = await self._cursor()
        if low > self._read_to:  # first round, or another dispatcher went further
            self._read_to = low
            self._gaps = {(max(a, low + 1), b): t for (a, b), t in self._gaps.items() if b > low}
        gaps = list(self._gaps)[:MAX_GAPS]
        async with self.sessions() as s:
            fresh = list(
                (
                    await s.scalars(
                        select(OrderLog)
                        .where(OrderLog.id > self._read_to)
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
            for (a, b), seen in list(self._gaps.items()):
                if a <= entry.id <= b:
                    del self._gaps[(a, b)]
                    if a < entry.id:
                        self._gaps[(a, entry.id - 1)] = seen
                    if entry.id < b:
                        self._gaps[(entry.id + 1, b)] = seen
        previous = self._read_to
        for entry in fresh:
            if entry.id > previous + 1:  # ids not (yet) visible: a later commit, or a rollback
                self._gaps[(previous + 1, entry.id - 1)] = now_mono
            previous = entry.id
        self._read_to = previous
        # Gaps older than gap_wait are rolled-back ids: the cursor passes them.
        self._gaps = {k: t for k, t in self._gaps.items() if now_mono - t < self.gap_wait}
        advanced = min((a - 1 for a, _ in self._gaps), default=self._read_to)
        entries = filled + fresh
        if not entries and advanced <= low:
            return False
        now = utcnow()
        rows: list[dict[str, Any]] = []
        async with write_session(self.sessions) as s:
            if entries:
                rows = await events_for(s, entries, self.retry_for, now)
                if rows:
                    await s.execute(_insert_ignoring_duplicates(s, WebhookEvent), rows)
            if advanced > low:
                await s.execute(
                    update(WebhookCursor)
                    .where(WebhookCursor.name == CURSOR, WebhookCursor.last_id < advanced)
                    .values(last_id=advanced, updated_at=now)
                )
        if rows:
            log.info("webhook events: %d from %d order_log rows", len(rows), len(entries))
        return len(fresh) == self.batch

    # --- 2. deliver ---------------------------------------------------------------------

    def _due(self, now: datetime, limit: int, full: Iterable[str]) -> Select[str, str]:
        """Due events, oldest due first; none of the suppliers in `full` (at their cap)."""
        e = aliased(WebhookEvent)
        earlier = aliased(WebhookEvent)
        blocked = exists().where(
            earlier.supplier_order_id == e.supplier_order_id,
            earlier.supplier_id == e.supplier_id,
            earlier.state == PENDING,
            earlier.log_id < e.log_id,
        )
        return (
            select(e.id, e.supplier_id)
            .where(
                e.state == PENDING,
                e.next_attempt_at <= now,
                or_(e.lease_until.is_(None), e.lease_until < now),
                ~blocked,
                e.supplier_id.not_in(list(full)),
            )
            .order_by(e.next_attempt_at, e.log_id)
            .limit(limit)
        )

    async def dispatch(self) -> int:
        """Claim due events (leases) and start their deliveries; how many were started."""
        free = self.concurrency - len(self._inflight)
        if free <= 0:
            return 0
        now = utcnow()
        busy = Counter(supplier for supplier, _ in self._inflight.values())
        full = [supplier for supplier, n in busy.items() if n >= self.per_supplier]
        async with self.sessions() as s:
            due = [(str(r[0]), str(r[1])) for r in await s.execute(self._due(now, free * 4, full))]
        picked: list[tuple[str, str]] = []
        for eid, supplier_id in due:
            if eid in self._inflight or busy[supplier_id] >= self.per_supplier:
                continue
            busy[supplier_id] += 1
            picked.append((eid, supplier_id))
            if len(picked) >= free:
                break
        if not picked:
            return 0
        claimed = await self._claim(picked, now)
        for eid, supplier_id in claimed:
            task = asyncio.create_task(self._deliver(eid), name=f"webhook {eid}")
            self._inflight[eid] = (supplier_id, task)
            task.add_done_callback(functools.partial(self._finished, eid))
        return len(claimed)

    def _finished(self, eid: str, _task: "asyncio.Task[None]") -> None:
        self._inflight.pop(eid, None)
        self._wake.set()  # its successor may be due now

    async def _claim(
        self, picked: Iterable[tuple[str, str]], now: datetime
    ) -> list[tuple[str, str]]:
        earlier = aliased(WebhookEvent)
        claimed = []
        async with write_session(self.sessions) as s:
            for eid, supplier_id in picked:
                result = await s.execute(
                    update(WebhookEvent)
                    .where(
                        WebhookEvent.id == eid,
                        WebhookEvent.state == PENDING,
                        or_(WebhookEvent.lease_until.is_(None), WebhookEvent.lease_until < now),
                        ~exists().where(
                            earlier.supplier_order_id == WebhookEvent.supplier_order_id,
                            earlier.supplier_id == WebhookEvent.supplier_id,
                            earlier.state == PENDING,
                            earlier.log_id < WebhookEvent.log_id,
                        ),
                    )
                    .values(
                        lease_until=now + self.lease,
                        lease_owner=self.name,
                        attempts=WebhookEvent.attempts + 1,
                    )
                    .execution_options(synchronize_session=False)
                )
                if getattr(result, "rowcount", 0) == 1:
                    claimed.append((eid, supplier_id))
        return claimed

    def _secrets(self, hook: SupplierWebhook, now: datetime) -> list[str]:
        secrets = [hook.secret]
        until = hook.previous_secret_until
        if hook.previous_secret and until is not None and until > now:
            secrets.append(hook.previous_secret)
        return secrets

    async def _deliver(self, eid: str) -> None:
        try:
            await self._attempt(eid)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhook %s: delivery failed unexpectedly; its lease will expire", eid)

    async def _attempt(self, eid: str) -> None:
        async with self.sessions() as s:
            event = await s.get(WebhookEvent, eid)
            hook = await s.get(SupplierWebhook, event.supplier_id) if event else None
        if event is None or event.lease_owner != self.name or event.state != PENDING:
            return
        if hook is None:  # the endpoint was removed meanwhile
            await self._settle(event, DROPPED, None, None, 0, record=False)
            return
        assert self._client is not None
        status: int | None = None
        error: str | None = None
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout + 1):
                await check_endpoint(hook.url, self.allow_private, self.resolve)
                body = event.body.encode()
                stamp = int(time.time())
                headers = {
                    "Content-Type": "application/json",
                    EVENT_ID_HEADER: event.id,
                    EVENT_TYPE_HEADER: event.type,
                    SIGNATURE_HEADER: signature_header(self._secrets(hook, utcnow()), stamp, body),
                }
                # Streamed and closed unread: only the status counts, however big the answer.
                async with self._client.stream(
                    "POST", hook.url, content=body, headers=headers
                ) as answer:
                    status = answer.status_code
        except BadTarget as err:
            error = f"refused: {err}"
        except (TimeoutError, httpx.TimeoutException):
            error = f"timed out after {self.timeout:g}s"
        except httpx.HTTPError as err:
            error = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        took = int((time.monotonic() - started) * 1000)
        ok = status is not None and 200 <= status < 300
        if status is not None and not ok:
            error = f"answered HTTP {status}"
        await self._settle(event, DELIVERED if ok else PENDING, status, error, took)

    async def _settle(
        self,
        event: WebhookEvent,
        outcome: str,
        status: int | None,
        error: str | None,
        took_ms: int,
        record: bool = True,
    ) -> None:
        now = utcnow()
        values: dict[str, Any] = {"lease_until": None, "lease_owner": None}
        if outcome == PENDING:
            delay = retry_delay(
                event.attempts, self.backoff, self.backoff_max, random.uniform(0.8, 1.2)
            )
            if now >= event.retry_until:
                values["state"] = FAILED
            else:
                values["next_attempt_at"] = min(now + delay, event.retry_until)
        else:
            values["state"] = outcome
            if outcome == DELIVERED:
                values["delivered_at"] = now
        async with write_session(self.sessions) as s:
            if record:
                s.add(
                    WebhookAttempt(
                        event_id=event.id,
                        supplier_id=event.supplier_id,
                        attempt=event.attempts,
                        status_code=status,
                        error=error[:500] if error else None,
                        duration_ms=took_ms,
                        at=now,
                    )
                )
            # Only while the lease is still ours: past it another dispatcher owns the event.
            await s.execute(
                update(WebhookEvent)
                .where(
                    WebhookEvent.id == event.id,
                    WebhookEvent.lease_owner == self.name,
                    WebhookEvent.state == PENDING,
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        level = logging.INFO if outcome == DELIVERED else logging.WARNING
        if values.get("state") == FAILED:
            log.warning(
                "webhook %s to %s: giving up after %d attempts",
                event.id,
                event.supplier_id,
                event.attempts,
            )
        elif record:
            log.log(
                level,
                "webhook %s (%s) to %s: attempt %d %s",
                event.id,
                event.type,
                event.supplier_id,
                event.attempts,
                "delivered" if outcome == DELIVERED else (error or "failed"),
            )
