"""Admin: order search (keyset paging), its CSV export, and an order's operation log.

`GET /admin/orders` (DESIGN.md §11 "Admin search") answers with the same order view as
`GET /orders/{no}` (deadlines as the read model has them, like the `GET /orders` list),
newest first, a page at a time: `next_cursor` is an opaque token for the next page, null
on the last one. The admin page (/ui/admin) runs the very same search.

`GET /admin/orders/export.csv` takes the same filters and streams one CSV row per supplier
order of every order the search finds (with `supplier_id`: that supplier's supplier orders
of them), newest order first. It reads the orders in keyset batches, each in a short
session of its own, and writes each batch out before reading the next: memory stays flat
however many rows, and no transaction stays open while a slow client downloads. It is not
a snapshot: an order changing meanwhile shows as it was when its batch was read.
"""

import base64
import binascii
import csv
import io
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import StreamingResponse
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import queries
from db.queries import EXPORT_COLUMNS, OrderKey, OrderSearch
from domain.errors import InvalidInput, NotFound
from domain.states import OrderStatus, OrderType, SupplierOrderStatus
from settings import Settings
from starter.api import views
from starter.api.deps import Admin, Sessions, SettingsDep
from starter.api.routers._common import AUTH, errors
from starter.api.schemas import OrderLogOut, OrderOut, Out

router = APIRouter(prefix="/admin", tags=["admin"])

# Order statuses first, then the supplier orders' own (a status matches either).
STATUSES: tuple[str, ...] = tuple(
    dict.fromkeys([*(s.value for s in OrderStatus), *(s.value for s in SupplierOrderStatus)])
)
ORDER_TYPES: tuple[str, ...] = tuple(t.value for t in OrderType)
MAX_ID = 64
MAX_ORDER_NO = 32


class AdminOrderPage(Out):
    items: list[OrderOut]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null on the last page"
    )


# --- filters and cursor ------------------------------------------------------------------------


def _text(name: str, value: str | None, longest: int) -> str | None:
    """A trimmed filter value; blank means "any" (an empty form field)."""
    value = (value or "").strip()
    if not value:
        return None
    if len(value) > longest:
        raise InvalidInput(f"{name} is longer than {longest} characters")
    return value


def parse_time(name: str, value: str | None, upper: bool = False) -> datetime | None:
    """An ISO-8601 date or date-time, UTC unless it carries an offset.

    A lower bound starts at it (a bare date: midnight UTC). An `upper` bound is inclusive,
    so what is returned is where it ends, exclusive: a bare date takes in that whole day
    (the next midnight), a date-time itself (one microsecond later).
    """
    text = (value or "").strip()
    if not text:
        return None
    if len(text) > 40:
        raise InvalidInput(f"{name} is not an ISO-8601 date or date-time")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        start = datetime.combine(day, time(), tzinfo=UTC)
        return start + timedelta(days=1) if upper else start
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        hint = " (in a URL, write the + of an offset as %2B)" if " " in text else ""
        raise InvalidInput(
            f"{name} {text!r} is not an ISO-8601 date or date-time, "
            f"e.g. 2026-01-31 or 2026-01-31T08:00:00Z{hint}"
        ) from None
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at + timedelta(microseconds=1) if upper else at


def search_filters(
    status: str | None = None,
    customer_id: str | None = None,
    supplier_id: str | None = None,
    order_no: str | None = None,
    created_from: str | None = None,
    created_to: str | None = None,
    order_type: str | None = None,
) -> OrderSearch:
    """The search's filters from their text (query string or form); InvalidInput if bad."""
    chosen = _text("status", status, 40)
    if chosen is not None and chosen not in STATUSES:
        raise InvalidInput(f"unknown status {chosen!r}; one of {', '.join(STATUSES)}")
    kind = _text("order_type", order_type, 16)
    if kind is not None and kind not in ORDER_TYPES:
        raise InvalidInput(f"unknown order_type {kind!r}; one of {', '.join(ORDER_TYPES)}")
    start = parse_time("created_from", created_from)
    end = parse_time("created_to", created_to, upper=True)
    if start is not None and end is not None and start >= end:
        raise InvalidInput("created_from is after created_to: nothing can match")
    return OrderSearch(
        status=chosen,
        customer_id=_text("customer_id", customer_id, MAX_ID),
        supplier_id=_text("supplier_id", supplier_id, MAX_ID),
        order_no=_text("order_no", order_no, MAX_ORDER_NO),
        created_from=start,
        created_before=end,
        order_type=kind,
    )


def encode_cursor(key: OrderKey) -> str:
    """An opaque continuation token: clients pass it back, never build it."""
    at, order_no = key
    raw = json.dumps({"at": at.isoformat(), "no": order_no}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> OrderKey | None:
    if not cursor:
        return None
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        at = datetime.fromisoformat(raw["at"])
        order_no = raw["no"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise InvalidInput("cursor is not one this API returned; start again without it") from None
    if not isinstance(order_no, str) or not order_no or at.tzinfo is None:
        raise InvalidInput("cursor is not one this API returned; start again without it")
    return at, order_no


async def search(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    filters: OrderSearch,
    limit: int,
    cursor: str | None,
) -> AdminOrderPage:
    """One page of the search: order views, newest first, and the next page's cursor."""
    after = decode_cursor(cursor)
    async with sessions() as s:
        rows, last = await queries.search_orders(s, filters, limit, after)
        details = await queries.order_details(s, rows)
    return AdminOrderPage(
        items=[views.order(d, settings.shipping_speeds_kmh) for d in details],
        next_cursor=encode_cursor(last) if last is not None else None,
    )


# --- CSV export -------------------------------------------------------------------------------

EXPORT_BATCH = 1000  # orders read per query (~1.4 rows each)
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
FORMULA_START = frozenset("=+-@\t\r")


def text_cell(value: str) -> str:
    """Text as it is, unless a spreadsheet would read it as a formula: then with a leading
    apostrophe (ids are free text; statuses and types are ours)."""
    return f"'{value}" if value[:1] in FORMULA_START else value


def money_cell(value: Decimal) -> str:
    return f"{value:.2f}"


def time_cell(value: datetime | None) -> str:
    """ISO-8601 in UTC with a Z; nothing as an empty cell."""
    return "" if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _same(value: str) -> str:
    return value


# How each of queries.EXPORT_COLUMNS is written.
_CELLS: tuple[Callable[[Any], str], ...] = (
    text_cell,  # order_no
    text_cell,  # supplier_order_id
    text_cell,  # supplier_id
    text_cell,  # customer_id
    _same,  # order_type
    _same,  # status
    _same,  # supplier_order_status
    money_cell,  # payable
    money_cell,  # paid
    money_cell,  # refunded
    time_cell,  # created_at
    time_cell,  # paid_at
    money_cell,  # supplier_order_payable
)
assert len(_CELLS) == len(EXPORT_COLUMNS)


async def export_csv(
    sessions: async_sessionmaker[AsyncSession], filters: OrderSearch, batch: int = EXPORT_BATCH
) -> AsyncIterator[str]:
    """The CSV, a header and then one chunk per batch of orders."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")

    def flush() -> str:
        text = out.getvalue()
        out.seek(0)
        out.truncate()
        return text

    writer.writerow(EXPORT_COLUMNS)
    yield flush()
    after = None
    cells = _CELLS
    while True:
        async with sessions() as s:
            rows, after = await queries.export_batch(s, filters, batch, after)
        writer.writerows([cell(v) for cell, v in zip(cells, row, strict=True)] for row in rows)
        if rows:
            yield flush()
        if after is None:
            return


class CsvStream(StreamingResponse):
    media_type = "text/csv"


async def order_log_view(sessions: async_sessionmaker[AsyncSession], order_no: str) -> OrderLogOut:
    async with sessions() as s:
        order = await queries.get_order(s, order_no)
        entries = await queries.order_log(s, order_no)
    if order is None and not entries:
        raise NotFound(f"no order {order_no!r}")
    return OrderLogOut(order_no=order_no, entries=[views.log_entry(e) for e in entries])


# --- endpoints ------------------------------------------------------------------------------------


def filter_query(
    status: Annotated[
        str | None,
        Query(
            max_length=40,
            description="the order's status or any of its supplier orders' (with supplier_id: "
            f"that supplier's): {', '.join(STATUSES)}",
        ),
    ] = None,
    customer_id: Annotated[str | None, Query(max_length=MAX_ID)] = None,
    supplier_id: Annotated[
        str | None, Query(max_length=MAX_ID, description="orders with goods from this supplier")
    ] = None,
    created_from: Annotated[
        str | None,
        Query(
            max_length=40,
            description="ISO-8601 date or date-time, inclusive (UTC unless an offset is given)",
        ),
    ] = None,
    created_to: Annotated[
        str | None,
        Query(
            max_length=40,
            description="ISO-8601 date-time, inclusive; a bare date takes in that whole day",
        ),
    ] = None,
    order_no: Annotated[
        str | None, Query(max_length=MAX_ORDER_NO, description="one order number")
    ] = None,
    order_type: Annotated[
        str | None, Query(max_length=16, description=f"one of {', '.join(ORDER_TYPES)}")
    ] = None,
) -> OrderSearch:
    """The search's filters, shared by the search and its export."""
    return search_filters(
        status, customer_id, supplier_id, order_no, created_from, created_to, order_type
    )


Filters = Annotated[OrderSearch, Depends(filter_query)]


@router.get(
    "/orders",
    response_model=AdminOrderPage,
    responses=errors(*AUTH, 422),
    summary="Search orders, newest first (keyset paging)",
)
async def search_orders(
    principal: Admin,
    sessions: Sessions,
    settings: SettingsDep,
    filters: Filters,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[
        str | None, Query(max_length=200, description="`next_cursor` of the previous page")
    ] = None,
) -> AdminOrderPage:
    """Any customer's orders by status, customer, supplier, type, creation time or number."""
    return await search(sessions, settings, filters, limit, cursor)


@router.get(
    "/orders/export.csv",
    response_class=CsvStream,
    responses={
        200: {
            "description": "CSV: a header row, then one row per supplier order, newest order "
            f"first. Columns: {', '.join(EXPORT_COLUMNS)}. Money in decimals, times ISO-8601 "
            "UTC; payable, paid, refunded, created_at and paid_at are the order's.",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        **errors(*AUTH, 422),
    },
    summary="Export the search as CSV, streamed (one row per supplier order)",
)
async def export_orders(principal: Admin, sessions: Sessions, filters: Filters) -> CsvStream:
    """The orders `GET /admin/orders` finds with the same filters, every one of them."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return CsvStream(
        export_csv(sessions, filters),
        headers={
            "Content-Disposition": f'attachment; filename="orders-{stamp}.csv"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/orders/{no}/log", response_model=OrderLogOut, responses=errors(*AUTH, 404))
async def order_log(
    order_no: Annotated[str, Path(alias="no", min_length=1, max_length=32)],
    principal: Admin,
    sessions: Sessions,
) -> OrderLogOut:
    """Every change to the order (actor, time, what), oldest first."""
    return await order_log_view(sessions, order_no)
