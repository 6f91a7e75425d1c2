"""The supplier terminal (DESIGN.md §9): the inbox of own paid orders and one order's page.

Both read exactly what the API's supplier endpoints read: `db.queries.list_supplier_orders`
for the inbox, the same ownership check (`access.supplier_order_for`: another supplier's
order or an unpaid one is a 404) for one order, and `views.supplier_view` for what is shown,
so the pages can never show more than the API would (no customer account id, no coins).

Every command on the pages is a call of the API itself from the page's script. Which
commands are offered is decided by the domain's own rules (`domain.supplier_rules`), run on
the order as the read model holds it: no second copy of a rule lives here. The API re-checks
everything and its refusal is shown where the command was made.
"""

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db import queries
from db.tables import AfterSale, Notification
from domain.errors import DomainError, InvalidInput
from domain.messages import (
    EditTracking,
    ItemState,
    PackageState,
    ShipItems,
    ShipLine,
    SupplierOrderState,
)
from domain.models import ItemPlan, SubOrderPlan, SupplierOrderPlan
from domain.states import AfterSaleStatus, ItemStatus, ProductKind
from domain.supplier_rules import (
    VIRTUAL_METHOD,
    check_cancel,
    check_change_receiver,
    check_edit_tracking,
    check_ship,
    unshipped,
)
from starter.api import access, views
from starter.api.deps import Sessions, SettingsDep
from starter.api.routers.supplier import STATUSES
from starter.api.schemas import ItemOut, SupplierViewOut
from starter.web import live, render, words
from starter.web.session import SupplierViewer

router = APIRouter(
    prefix="/ui", include_in_schema=False, dependencies=[Depends(live.note_position)]
)

PAGE_SIZE = 20
REMINDER_KIND = "ship_reminder"  # what the supplier order's remind command notifies

# Words for what the supplier reads (English msgids; supplier.po holds the Chinese).
METHOD_WORDS: dict[str, str] = {
    "express": "Express",
    "standard": "Standard",
    "economy": "Economy",
    "same_day": "Same day",
    VIRTUAL_METHOD: "Virtual delivery (code or link)",
}
PACKAGE_STATUS_WORDS: dict[str, str] = {
    "shipped": "Shipped",
    "in_transit": "In transit",
    "delivered": "Delivered",
}
# Close reasons seen from the supplier's side (the customer's pages say "by you" for theirs).
CLOSE_REASON_WORDS: dict[str, str] = {
    "USER_CANCELLED": "Cancelled by the customer",
    "SUPPLIER_CANCELLED": "Cancelled by you",
    "PAYMENT_TIMEOUT": "Not paid in time",
    "PAYMENT_FAILED": "Payment failed",
}
# After-sales steps that are the supplier's, by the request's status (the request
# workflow's validators in workflows/after_sale.py enforce the same; the API refuses
# anything else with its message).
AFTER_SALE_STEPS: dict[AfterSaleStatus, tuple[str, ...]] = {
    AfterSaleStatus.REQUESTED: ("approve", "reject"),
    AfterSaleStatus.RETURN_SHIPPED: ("receive-return",),
}


# --- what the pages show ---------------------------------------------------------------------


@dataclass
class Row:
    """One line of the inbox."""

    view: SupplierViewOut
    new: bool
    items: list[ItemOut]
    to_ship: int
    reminded_at: datetime | None
    after_sales_waiting: int


@dataclass
class ShipLineOffer:
    item: ItemOut
    remaining: int
    default: int


@dataclass
class AfterSaleLine:
    id: str
    item_name: str
    qty: int
    type: str
    status: AfterSaleStatus
    reason: str
    return_carrier: str | None
    return_tracking_no: str | None
    refund_amount: str | None
    steps: tuple[str, ...]


@dataclass
class Offer:
    """The commands this order's page offers, each decided by the domain's rule."""

    ship: bool = False
    lines: list[ShipLineOffer] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    method: str = ""
    fix_tracking: set[str] = field(default_factory=set)
    receiver: bool = False
    cancel: bool = False


def _items(view: SupplierViewOut) -> list[ItemOut]:
    return [i for sub in view.sub_orders for i in sub.items]


def _rules_input(view: SupplierViewOut) -> tuple[SupplierOrderState, SupplierOrderPlan]:
    """The order as the domain's rules take it, rebuilt from what the read model holds."""
    items = _items(view)
    state = SupplierOrderState(
        status=view.status,
        close_reason=view.close_reason,
        address=view.address,
        items={
            i.item_id: ItemState(
                item_id=i.item_id,
                sku=i.sku,
                qty=i.qty,
                shipped_qty=i.shipped_qty,
                closed=i.status is ItemStatus.CLOSED,
            )
            for i in items
        },
        packages=[
            PackageState(
                tracking_no=p.tracking_no,
                carrier=p.carrier,
                method=p.method,
                items={line.item_id: line.qty for line in p.items},
                shipped_at=p.shipped_at,
                delivered=p.status == "delivered",
            )
            for p in view.packages
        ],
        received_at=view.received_at,
        completed_at=view.completed_at,
    )
    zero = Decimal("0.00")
    plan = SupplierOrderPlan(
        id=view.id,
        supplier_id=view.supplier_id,
        needs_address=view.needs_address,
        address=view.address,
        remark=view.remark,
        items=[
            ItemPlan(
                item_id=i.item_id,
                sku=i.sku,
                name=i.name,
                product_type=i.product_type,
                kind=i.kind,
                price=Decimal(i.price),
                qty=i.qty,
                line_total=Decimal(i.price) * i.qty,
                coin_share=zero,
            )
            for i in items
        ],
        sub_orders=[
            SubOrderPlan(
                id=s.id, product_type=s.product_type, item_ids=[i.item_id for i in s.items]
            )
            for s in view.sub_orders
        ],
        subtotal=Decimal(view.subtotal),
        postage=Decimal(view.postage),
        postage_coin_share=zero,
        coin_share=zero,
        payable=Decimal(view.total),
    )
    return state, plan


def _allows(rule: Callable[..., None], *args: Any) -> bool:
    try:
        rule(*args)
    except DomainError:
        return False
    return True


def commands_offered(view: SupplierViewOut, speeds: Sequence[str]) -> Offer:
    state, plan = _rules_input(view)
    offer = Offer()
    kinds = {i.item_id: i.kind for i in plan.items}
    left = unshipped(state)
    if left:
        first = next(iter(left))
        virtual = kinds[first] is ProductKind.VIRTUAL
        probe = ShipItems(
            carrier="probe",
            tracking_no=f"probe-{uuid.uuid4().hex}",
            method=VIRTUAL_METHOD if virtual else "standard",
            items=[ShipLine(item_id=first, qty=1)],
        )
        offer.ship = _allows(check_ship, state, probe, plan)
    if offer.ship:
        unshipped_kinds = {kinds[item_id] for item_id in left}
        one_kind = len(unshipped_kinds) == 1
        by_id = {i.item_id: i for i in _items(view)}
        offer.lines = [
            ShipLineOffer(item=by_id[item_id], remaining=n, default=n if one_kind else 0)
            for item_id, n in left.items()
        ]
        offer.methods = [m for m in speeds if m != VIRTUAL_METHOD]
        if ProductKind.VIRTUAL in unshipped_kinds:
            offer.methods.append(VIRTUAL_METHOD)
        if unshipped_kinds == {ProductKind.VIRTUAL}:
            offer.method = VIRTUAL_METHOD
        elif "standard" in offer.methods:
            offer.method = "standard"
        else:
            offer.method = offer.methods[0]
    offer.fix_tracking = {
        p.tracking_no
        for p in state.packages
        if _allows(
            check_edit_tracking,
            state,
            EditTracking(tracking_no=p.tracking_no, new_tracking_no=p.tracking_no),
        )
    }
    offer.receiver = _allows(check_change_receiver, state, plan)
    offer.cancel = _allows(check_cancel, state)
    return offer


async def _reminders(
    s: AsyncSession, supplier_id: str, supplier_order_ids: Sequence[str]
) -> dict[str, list[datetime]]:
    """Unread 'please ship' reminders from the supplier's notifications, newest first."""
    if not supplier_order_ids:
        return {}
    rows = await s.scalars(
        select(Notification)
        .where(
            Notification.recipient_type == "supplier",
            Notification.recipient_id == supplier_id,
            Notification.kind == REMINDER_KIND,
            Notification.supplier_order_id.in_(list(supplier_order_ids)),
            Notification.read.is_(False),
        )
        .order_by(Notification.at.desc(), Notification.id.desc())
    )
    found: dict[str, list[datetime]] = {}
    for n in rows.all():
        if n.supplier_order_id is not None:
            found.setdefault(n.supplier_order_id, []).append(views.utc(n.at))
    return found


def _parse_since(value: str | None) -> datetime:
    if value:
        try:
            return views.utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            pass
    return datetime.now(UTC)


def _supplier_id(viewer_supplier_id: str | None) -> str:
    if viewer_supplier_id is None:  # a supplier token always carries it
        raise InvalidInput("this account has no supplier id")
    return viewer_supplier_id


# --- pages ----------------------------------------------------------------------------------


@router.get("/supplier")
async def inbox(
    request: Request,
    viewer: SupplierViewer,
    sessions: Sessions,
    settings: SettingsDep,
    status: Annotated[str | None, Query(max_length=40)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    since: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """Own paid supplier orders, newest payment first, by status, a page at a time."""
    supplier_id = _supplier_id(viewer.supplier_id)
    status = status or None
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"unknown status {status!r}; one of {', '.join(STATUSES)}")
    loaded_at = _parse_since(since)
    async with sessions() as s:
        rows, total = await queries.list_supplier_orders(
            s, supplier_id, status, PAGE_SIZE, (page - 1) * PAGE_SIZE
        )
        details = await queries.supplier_order_details(s, rows)
        reminders = await _reminders(s, supplier_id, [r.id for r in rows])
        counts: dict[str | None, int] = {}
        for tab in (None, *STATUSES):
            counts[tab] = (await queries.list_supplier_orders(s, supplier_id, tab, 1, 0))[1]
        new_count = sum(
            1
            for r in (await queries.list_supplier_orders(s, supplier_id, None, 100, 0))[0]
            if r.paid_at is not None and views.utc(r.paid_at) > loaded_at
        )
    speeds = settings.shipping_speeds_kmh
    lines: list[Row] = []
    for d in details:
        view = views.supplier_view(d, speeds)
        items = _items(view)
        state, _ = _rules_input(view)
        reminded = reminders.get(view.id, [])
        lines.append(
            Row(
                view=view,
                new=view.paid_at is not None and view.paid_at > loaded_at,
                items=items,
                to_ship=sum(unshipped(state).values()),
                reminded_at=reminded[0] if reminded else None,
                after_sales_waiting=sum(
                    1 for a in view.after_sales if a.status in AFTER_SALE_STEPS
                ),
            )
        )
    pages = max(1, -(-total // PAGE_SIZE))
    since_iso = loaded_at.isoformat().replace("+00:00", "Z")

    def url(**params: Any) -> str:
        merged = {"status": status, "page": page, **params}
        kept = {k: v for k, v in merged.items() if v not in (None, "", 1) or k == "fragment"}
        return "/ui/supplier" + (f"?{urlencode(kept)}" if kept else "")

    return render.page(
        request,
        viewer,
        "supplier_inbox.html",
        live_topics=f"supplier:{supplier_id}",
        rows=lines,
        total=total,
        status=status,
        tabs=[None, *STATUSES],
        counts=counts,
        page_no=page,
        pages=pages,
        prev_url=url(page=page - 1) if page > 1 else None,
        next_url=url(page=page + 1) if page < pages else None,
        tab_url=lambda tab: url(status=tab, page=1),
        live_src=url(since=since_iso, fragment="supplier_inbox"),
        new_count=new_count,
        close_reason_words=CLOSE_REASON_WORDS,
    )


@router.get("/supplier/orders/{supplier_order_id}")
async def order_page(
    request: Request,
    supplier_order_id: Annotated[str, Path(min_length=1, max_length=100)],
    viewer: SupplierViewer,
    sessions: Sessions,
    settings: SettingsDep,
) -> Response:
    """One own paid supplier order: goods, receiver, packages, after-sales and commands."""
    supplier_id = _supplier_id(viewer.supplier_id)
    async with sessions() as s:
        # Another supplier's order, or one not paid: 404, exactly as GET /supplier/orders/{id}.
        row = await access.supplier_order_for(s, viewer.principal, supplier_order_id)
        (detail,) = await queries.supplier_order_details(s, [row])
        reminders = (await _reminders(s, supplier_id, [row.id])).get(row.id, [])
    view = views.supplier_view(detail, settings.shipping_speeds_kmh)
    items = _items(view)
    names = {i.item_id: i.name for i in items}
    rows_by_id: dict[str, AfterSale] = {a.id: a for a in detail.after_sales}
    after_sales = [
        AfterSaleLine(
            id=a.id,
            item_name=names.get(a.item_id, a.item_id),
            qty=a.qty,
            type=a.type.value,
            status=a.status,
            reason=rows_by_id[a.id].reason if a.id in rows_by_id else "",
            return_carrier=rows_by_id[a.id].return_carrier if a.id in rows_by_id else None,
            return_tracking_no=rows_by_id[a.id].return_tracking_no if a.id in rows_by_id else None,
            refund_amount=a.refund_amount,
            steps=AFTER_SALE_STEPS.get(a.status, ()),
        )
        for a in view.after_sales
    ]
    return render.page(
        request,
        viewer,
        "supplier_order.html",
        live_topics=f"order:{view.order_no}",
        o=view,
        items=items,
        names=names,
        offer=commands_offered(view, list(settings.shipping_speeds_kmh)),
        reminders=reminders,
        after_sales=after_sales,
        id_path=quote(view.id, safe=""),
        tracking_paths={p.tracking_no: quote(p.tracking_no, safe="") for p in view.packages},
        live_src=f"/ui/supplier/orders/{quote(view.id, safe='')}?fragment=supplier_order",
        method_words=METHOD_WORDS,
        package_status_words=PACKAGE_STATUS_WORDS,
        close_reason_words=CLOSE_REASON_WORDS,
        after_sale_type_words=words.AFTER_SALE_TYPE_WORDS,
    )
