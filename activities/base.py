"""What every read-model activity shares: one transaction, applied at most once.

`DbActivities.once` runs a unit of work inside a transaction together with the
insert of its idempotency key, so a retry after a crash or timeout returns the
stored result instead of applying the change twice. Domain errors become
non-retryable ApplicationErrors whose `type` is the stable error code.
"""

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError

from db.session import append_row, write_session
from db.tables import IdempotencyKey, Notification, Order, OrderLog, SupplierOrder
from domain.errors import Conflict, DomainError
from domain.states import (
    CloseReason,
    OrderStatus,
    SupplierOrderStatus,
    order_close_reason,
    order_status,
)

_KEYS: Table = IdempotencyKey.__table__  # type: ignore[assignment]
_STORED = select(_KEYS.c.result).where(_KEYS.c.key == bindparam("key"))

Work = Callable[[AsyncSession], Awaitable[dict[str, Any] | None]]


def domain_failure(err: DomainError) -> ApplicationError:
    return ApplicationError(err.message, err.details or None, type=err.code, non_retryable=True)


class DbActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def once(self, key: str, scope: str, at: datetime, work: Work) -> dict[str, Any] | None:
        try:
            async with write_session(self.sessions) as session:
                conn = await session.connection()
                done = (await conn.execute(_STORED, {"key": key})).first()
                if done is not None:
                    return cast(dict[str, Any] | None, done.result)
                result = await work(session)
                row = {"key": key, "scope": scope, "result": result, "created_at": at}
                append_row(session, IdempotencyKey, row)
                return result
        except DomainError as err:
            raise domain_failure(err) from err
        except IntegrityError as err:
            # Either a concurrent run of the same key won (the retry will find its
            # result) or a business uniqueness rule was hit; only the first is retryable.
            async with self.sessions() as session:
                if await session.get(IdempotencyKey, key) is None and _is_business_conflict(err):
                    raise domain_failure(Conflict(_conflict_message(err))) from err
            raise


def _is_business_conflict(err: IntegrityError) -> bool:
    text = str(err.orig).lower()
    return "uq_packages_tracking" in text or "packages.carrier" in text


def _conflict_message(err: IntegrityError) -> str:
    if _is_business_conflict(err):
        return "this tracking number is already in use for that carrier"
    return "conflicting change"


def log(
    session: AsyncSession,
    order_no: str,
    action: str,
    at: datetime,
    actor: str,
    actor_id: str = "",
    supplier_order_id: str | None = None,
    **detail: Any,
) -> None:
    append_row(
        session,
        OrderLog,
        {
            "order_no": order_no,
            "supplier_order_id": supplier_order_id,
            "actor": actor,
            "actor_id": actor_id,
            "action": action,
            "detail": detail,
            "at": at,
        },
    )


def notify(
    session: AsyncSession,
    dedupe_key: str,
    recipient_type: str,
    recipient_id: str,
    kind: str,
    order_no: str,
    body: str,
    at: datetime,
    supplier_order_id: str | None = None,
) -> None:
    append_row(
        session,
        Notification,
        {
            "dedupe_key": dedupe_key,
            "recipient_type": recipient_type,
            "recipient_id": recipient_id,
            "kind": kind,
            "order_no": order_no,
            "supplier_order_id": supplier_order_id,
            "body": body,
            "at": at,
        },
    )


async def refresh_order_status(session: AsyncSession, order_no: str, at: datetime) -> None:
    """Derive the parent status from its supplier orders (DESIGN.md §2).

    The order row is locked before the siblings are read. Two supplier orders of one order
    finishing at the same moment (two workers, PostgreSQL's READ COMMITTED) otherwise each
    read the other as still open, and the order stayed PAID for ever. With the lock the second
    waits for the first to commit, and its read (a new statement, a new snapshot) sees it.
    """
    await session.flush()
    order = await session.get(Order, order_no, with_for_update=True, populate_existing=True)
    if order is None or order.status == OrderStatus.PENDING_PAYMENT:
        return
    rows = (
        await session.execute(
            select(SupplierOrder.status, SupplierOrder.close_reason).where(
                SupplierOrder.order_no == order_no
            )
        )
    ).all()
    new = order_status([SupplierOrderStatus(r.status) for r in rows], paid=True)
    if new != order.status:
        order.status = new
        detail: dict[str, Any] = {}
        if new is OrderStatus.CLOSED:
            order.closed_at = at
            order.close_reason = order_close_reason(
                CloseReason(r.close_reason) if r.close_reason else None for r in rows
            )
            detail["reason"] = order.close_reason
        log(session, order_no, f"order_{new.lower()}", at, "system", **detail)
