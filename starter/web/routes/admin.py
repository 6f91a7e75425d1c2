"""The admin's terminal (DESIGN.md §9): order search, each order's runs in the Temporal UI,
and its operation log.

`/ui/admin` runs exactly the search of `GET /admin/orders` (the same filters, parsing,
refusals and keyset cursor; starter/api/routers/admin.py) and lists what it finds newest
first, with a link to the next page. `/ui/admin/orders/{no}/log` shows what `GET
/admin/orders/{no}/log` returns. Both are for admins only (a 403 page for anyone else);
both refresh by themselves when an order changes (the `admin` and `order:<no>` topics).

Test ids: `admin-search` (the form), `admin-results` (the live region), `admin-order-row`
(attrs `data-order-no`, `data-status`) with `order-status` (attr `data-status`),
`supplier-status` (attrs `data-supplier-id`, `data-status`), `order-link`,
`temporal-link`, `log-link`; `next-page`, `first-page`, `no-results`, `error-message`.
Log page: `order-no`, `log-entries`, `log-entry` (attrs `data-action`, `data-actor`).
"""

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from domain.errors import InvalidInput, NotFound
from domain.states import OrderStatus, SupplierOrderStatus
from settings import Settings
from starter.api.deps import Sessions, SettingsDep
from starter.api.routers.admin import (
    ORDER_TYPES,
    AdminOrderPage,
    order_log_view,
    search,
    search_filters,
)
from starter.api.schemas import LogEntry, OrderOut
from starter.web import live, render
from starter.web.session import AdminViewer

router = APIRouter(
    prefix="/ui", include_in_schema=False, dependencies=[Depends(live.note_position)]
)

PAGE_SIZE = 20
FILTERS = (
    "order_no",
    "customer_id",
    "supplier_id",
    "status",
    "order_type",
    "created_from",
    "created_to",
)

# The status select: the order's own statuses, then those only a supplier order has
# (a status matches the order's or any of its supplier orders').
STATUS_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Order status", tuple(s.value for s in OrderStatus)),
    (
        "Supplier order status",
        tuple(
            s.value for s in SupplierOrderStatus if s.value not in {o.value for o in OrderStatus}
        ),
    ),
)

# Close reasons as an operator reads them (the customer's pages say "Cancelled by you").
CLOSE_REASON_WORDS: dict[str, str] = {
    "USER_CANCELLED": "Cancelled by the customer",
    "SUPPLIER_CANCELLED": "Cancelled by the supplier",
    "PAYMENT_TIMEOUT": "Not paid in time",
    "PAYMENT_FAILED": "Payment failed",
}
ACTOR_WORDS: dict[str, str] = {
    "customer": "Customer",
    "supplier": "Supplier",
    "admin": "Administrator",
    "system": "System",
    "carrier": "Carrier",
}


def temporal_link(settings: Settings, order_no: str) -> str:
    """The order's workflows (the order's, its supplier orders', after-sales) in the Temporal UI."""
    namespace = quote(settings.temporal_namespace, safe="")
    query = quote(f'OrderNo="{order_no}"', safe="")
    return f"{settings.temporal_ui_base()}/namespaces/{namespace}/workflows?query={query}"


def admin_href(params: dict[str, str], **extra: str) -> str:
    """/ui/admin with the non-empty filters (and `extra`: cursor, fragment)."""
    chosen = {k: v for k, v in {**params, **extra}.items() if v}
    return "/ui/admin" + (f"?{urlencode(chosen)}" if chosen else "")


def export_href(form: dict[str, str]) -> str:
    """GET /admin/orders/export.csv with the page's filters (the cookie authenticates it)."""
    chosen = {k: v for k, v in form.items() if v}
    return "/admin/orders/export.csv" + (f"?{urlencode(chosen)}" if chosen else "")


def page_size(text: str) -> int:
    """`?limit=` (1 to 100, as in the API); PAGE_SIZE when absent."""
    if not text:
        return PAGE_SIZE
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise InvalidInput("limit is a whole number from 1 to 100")
    return int(text)


@dataclass(frozen=True)
class Row:
    order: OrderOut
    temporal: str
    close_reason: str | None


@router.get("/admin")
async def admin_page(
    request: Request,
    viewer: AdminViewer,
    sessions: Sessions,
    settings: SettingsDep,
) -> Response:
    # Read by hand, not as typed parameters: a bad value is shown next to the form
    # (the API's own message), never a bare JSON 422.
    query = request.query_params
    form = {name: query.get(name, "").strip() for name in FILTERS}
    cursor = query.get("cursor", "").strip()
    limit = query.get("limit", "").strip()
    error: str | None = None
    found: AdminOrderPage | None = None
    try:
        if len(cursor) > 200:
            raise InvalidInput("cursor is not one this API returned; start again without it")
        size = page_size(limit)
        filters = search_filters(**form)
        found = await search(sessions, settings, filters, size, cursor or None)
    except InvalidInput as err:
        error = err.message
    paging = {**form, "limit": limit}
    rows = [
        Row(
            order=o,
            temporal=temporal_link(settings, o.order_no),
            close_reason=CLOSE_REASON_WORDS.get(o.close_reason.value) if o.close_reason else None,
        )
        for o in (found.items if found else [])
    ]
    next_cursor = found.next_cursor if found else None
    return render.page(
        request,
        viewer,
        "admin.html",
        status_code=422 if error else 200,
        form=form,
        status_groups=STATUS_GROUPS,
        order_types=ORDER_TYPES,
        error=error,
        export_href=None if error else export_href(form),
        rows=rows,
        searched=found is not None,
        cursor=cursor,
        next_href=admin_href(paging, cursor=next_cursor) if next_cursor else None,
        first_href=admin_href(paging) if cursor else None,
        live_src=admin_href(paging, cursor=cursor, fragment="admin_results"),
        live_topics="admin",
    )


# --- operation log ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryView:
    entry: LogEntry
    at_text: str
    detail: list[tuple[str, str]]


def detail_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def entry_view(e: LogEntry) -> EntryView:
    return EntryView(
        entry=e,
        at_text=e.at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        detail=[(str(k), detail_text(v)) for k, v in sorted(e.detail.items())],
    )


@router.get("/admin/orders/{no}/log")
async def log_page(
    request: Request,
    no: str,
    viewer: AdminViewer,
    sessions: Sessions,
    settings: SettingsDep,
) -> Response:
    if not 0 < len(no) <= 32:
        raise NotFound(f"no order {no!r}")
    log = await order_log_view(sessions, no)  # an unknown order: a 404 page
    return render.page(
        request,
        viewer,
        "admin_log.html",
        order_no=no,
        entries=[entry_view(e) for e in log.entries],
        actor_words=ACTOR_WORDS,
        temporal=temporal_link(settings, no),
        live_src=f"/ui/admin/orders/{quote(no, safe='')}/log?fragment=admin_log_entries",
        live_topics=f"order:{no}",
    )
