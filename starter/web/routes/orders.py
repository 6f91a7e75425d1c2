"""The customer's terminal for orders (DESIGN.md §9): "My orders" and one order's page.

Both read exactly what the API reads: `db.queries.list_orders` with the same status
semantics as `GET /orders` for the list, and `order_view` of `GET /orders/{no}` (the same
ownership check first: another customer's order is a 404 page, never its data) for one
order, deadlines read live from the workflows.

Which commands a supplier order offers comes from `domain.actions.allowed_actions`, the
very list the API's view carries in `actions`; every command is a call of the API itself
from the page's script, whose refusal is shown in the box it was made in.
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy import select

from db import queries
from db.tables import TrackingEventRow
from domain.actions import after_sale_limits
from domain.geo import haversine_km
from domain.states import ItemStatus, OrderStatus
from starter.api import access, views
from starter.api.deps import Gateway, Sessions, SettingsDep
from starter.api.pay_tokens import shown_to_buyer
from starter.api.routers.orders import STATUSES, order_view
from starter.api.schemas import ItemOut, OrderOut, PackageOut, SupplierOrderOut
from starter.security import Role
from starter.web import live, render, words
from starter.web.session import CustomerOrAdminViewer

router = APIRouter(
    prefix="/ui", include_in_schema=False, dependencies=[Depends(live.note_position)]
)

PAGE_SIZE = 10

# Words for what the customer reads about parcels (English msgids; orders.po has Chinese).
PACKAGE_STATUS_WORDS: dict[str, str] = {
    "shipped": "Handed to the carrier",
    "in_transit": "In transit",
    "out_for_delivery": "Out for delivery",
    "delivered": "Delivered",
}
METHOD_WORDS: dict[str, str] = {
    "express": "Express",
    "standard": "Standard",
    "economy": "Economy",
    "same_day": "Same day",
    "virtual": "Virtual delivery",
}

Point = tuple[float, float]  # (lat, lon)


# --- the route sketch -------------------------------------------------------------------------


@dataclass(frozen=True)
class Sketch:
    """Origin → parcel → address drawn in a small SVG (no map tiles: just the geometry)."""

    width: int
    height: int
    origin: tuple[float, float]
    parcel: tuple[float, float]
    dest: tuple[float, float]


def sketch(
    origin: Point, parcel: Point, dest: Point, width: int = 320, height: int = 110
) -> Sketch:
    """Fit the three points into the box, keeping their shape (equirectangular)."""
    pad = 16
    mean_lat = math.radians((origin[0] + parcel[0] + dest[0]) / 3)
    xy = [(lon * math.cos(mean_lat), -lat) for lat, lon in (origin, parcel, dest)]
    xs, ys = [p[0] for p in xy], [p[1] for p in xy]
    span_x, span_y = max(xs) - min(xs), max(ys) - min(ys)
    scale = min(
        (width - 2 * pad) / span_x if span_x > 1e-9 else math.inf,
        (height - 2 * pad) / span_y if span_y > 1e-9 else math.inf,
    )
    if math.isinf(scale):
        scale = 0.0
    mid_x, mid_y = (max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2

    def place(p: tuple[float, float]) -> tuple[float, float]:
        return (
            round(width / 2 + (p[0] - mid_x) * scale, 1),
            round(height / 2 + (p[1] - mid_y) * scale, 1),
        )

    return Sketch(width, height, place(xy[0]), place(xy[1]), place(xy[2]))


def covered_percent(origin: Point | None, dest: Point | None, remaining_km: float | None) -> int:
    """How much of the way from the origin to the address lies behind the parcel."""
    if remaining_km is None:
        return 0
    if remaining_km <= 0:
        return 100
    if origin is None or dest is None:
        return 0
    total = haversine_km(origin[0], origin[1], dest[0], dest[1])
    if total <= 0:
        return 0
    return max(0, min(100, round(100 * (1 - remaining_km / total))))


# --- what the order page shows -----------------------------------------------------------------


@dataclass
class PackageView:
    package: PackageOut
    items: list[tuple[ItemOut | None, str, int]]  # (item, item id, qty in this package)
    origin: Point | None
    sketch: Sketch | None
    progress: int


@dataclass
class BoxView:
    so: SupplierOrderOut
    actions: frozenset[str]
    items: dict[str, ItemOut]
    packages: list[PackageView]
    claimable: list[tuple[ItemOut, int]] = field(default_factory=list)
    unshipped: int = 0
    remind_at: datetime | None = None


def _dest(so: SupplierOrderOut) -> Point | None:
    a = so.address
    if a is None or a.lat is None or a.lon is None:
        return None
    return (a.lat, a.lon)


def box_view(so: SupplierOrderOut, origins: dict[tuple[str, str], Point], now: datetime) -> BoxView:
    items: dict[str, ItemOut] = {i.item_id: i for sub in so.sub_orders for i in sub.items}
    dest = _dest(so)
    packages: list[PackageView] = []
    for p in so.packages:
        at: Point | None = (p.location.lat, p.location.lon) if p.location else None
        if p.status == "delivered" and dest is not None:
            at = dest
        origin = origins.get((p.carrier, p.tracking_no)) or at
        drawing = sketch(origin, at, dest) if origin and at and dest else None
        packages.append(
            PackageView(
                package=p,
                items=[(items.get(li.item_id), li.item_id, li.qty) for li in p.items],
                origin=origin,
                sketch=drawing,
                progress=covered_percent(origin, dest, p.distance_km),
            )
        )
    limits = after_sale_limits(views.supplier_order_facts(so), now)
    remind_at = so.deadlines.remind_allowed_at
    return BoxView(
        so=so,
        actions=frozenset(a.value for a in so.actions),
        items=items,
        packages=packages,
        claimable=[(items[i], n) for i, n in limits.items() if i in items and n > 0],
        unshipped=sum(
            i.qty - i.shipped_qty for i in items.values() if i.status is not ItemStatus.CLOSED
        ),
        remind_at=remind_at if remind_at is not None and remind_at > now else None,
    )


async def first_scans(
    sessions: Sessions, packages: Iterable[PackageOut]
) -> dict[tuple[str, str], Point]:
    """Where each package was first scanned: the route's origin (the read model keeps no
    shipping origin of its own)."""
    keys = {(p.carrier, p.tracking_no) for p in packages if p.method != "virtual"}
    if not keys:
        return {}
    async with sessions() as s:
        rows = (
            await s.scalars(
                select(TrackingEventRow)
                .where(TrackingEventRow.tracking_no.in_(sorted({t for _, t in keys})))
                .order_by(TrackingEventRow.at, TrackingEventRow.event_id)
            )
        ).all()
    found: dict[tuple[str, str], Point] = {}
    for r in rows:
        key = (r.carrier, r.tracking_no)
        if key in keys and key not in found:
            found[key] = (r.lat, r.lon)
    return found


def seconds_left(order: OrderOut, now: datetime) -> int:
    return max(0, int((order.pay_deadline - now).total_seconds()))


@router.get("/orders/{no}")
async def order_page(
    request: Request,
    order_no: Annotated[str, Path(alias="no", min_length=1, max_length=32)],
    viewer: CustomerOrAdminViewer,
    sessions: Sessions,
    settings: SettingsDep,
    gateway: Gateway,
) -> Response:
    async with sessions() as s:
        row = await access.order_for(s, viewer.principal, order_no)  # someone else's: 404
    order = await order_view(sessions, settings, gateway, order_no)
    if viewer.role is Role.CUSTOMER and viewer.sub == row.customer_id:
        # The buyer of an open friend_pay order gets the link to share (as GET /orders/{no}).
        order.pay_token = shown_to_buyer(settings.jwt_secret, row)
    origins = await first_scans(sessions, (p for so in order.supplier_orders for p in so.packages))
    now = datetime.now(UTC)
    return render.page(
        request,
        viewer,
        "order.html",
        order=order,
        boxes=[box_view(so, origins, now) for so in order.supplier_orders],
        unpaid=order.status is OrderStatus.PENDING_PAYMENT,
        seconds_left=seconds_left(order, now),
        can_command=viewer.role is Role.CUSTOMER,
        live_src=f"/ui/orders/{order_no}?fragment=order_live",
        live_topics=f"order:{order_no}",
        package_words=PACKAGE_STATUS_WORDS,
        method_words=METHOD_WORDS,
        pay_link=f"{request.base_url}ui/pay/{order.pay_token}" if order.pay_token else None,
    )


# --- my orders ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tab:
    status: str | None
    label: str
    href: str


def tabs() -> list[Tab]:
    return [Tab(None, "All", "/ui/orders")] + [
        Tab(code, words.STATUS_WORDS[code], f"/ui/orders?{urlencode({'status': code})}")
        for code in words.CLIENT_TABS
    ]


def page_href(status: str | None, page: int, fragment: str | None = None) -> str:
    params: dict[str, str | int] = {}
    if status:
        params["status"] = status
    if page > 1:
        params["page"] = page
    if fragment:
        params["fragment"] = fragment
    return "/ui/orders" + (f"?{urlencode(params)}" if params else "")


def matching(order: OrderOut, status: str | None) -> Sequence[str]:
    """Ids of the supplier orders that put the order under the chosen tab."""
    if status is None:
        return []
    return [so.id for so in order.supplier_orders if so.status.value == status]


@router.get("/orders")
async def orders_page(
    request: Request,
    viewer: CustomerOrAdminViewer,
    sessions: Sessions,
    settings: SettingsDep,
    status: Annotated[str | None, Query(max_length=40)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    chosen = status if status in STATUSES else None
    owner = viewer.sub if viewer.role is Role.CUSTOMER else None
    async with sessions() as s:
        rows, total = await queries.list_orders(s, owner, chosen, PAGE_SIZE, (page - 1) * PAGE_SIZE)
        details = await queries.order_details(s, rows)
    orders = [views.order(d, settings.shipping_speeds_kmh) for d in details]
    pages = max(1, math.ceil(total / PAGE_SIZE))
    return render.page(
        request,
        viewer,
        "orders.html",
        orders=orders,
        matches={o.order_no: set(matching(o, chosen)) for o in orders},
        total=total,
        page=page,
        pages=pages,
        chosen=chosen,
        tabs=tabs(),
        prev_href=page_href(chosen, page - 1) if page > 1 else None,
        next_href=page_href(chosen, page + 1) if page < pages else None,
        live_src=page_href(chosen, page, "order_list"),
        live_topics=f"customer:{viewer.sub}" if viewer.role is Role.CUSTOMER else "",
    )
