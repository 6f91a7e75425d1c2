"""What a row is and what each viewer is told about it: `Change` in, `Event` out.

A `Change` is one `order_log` row with what the fan-out needs to know about its order (its
customer, and the paid supplier orders whose suppliers may hear of it, as `Target`s). For
each subscriber, `event_for` decides whether the row is any of their business and, if so,
builds the `Event` they get — with a notice in their language for the rows that call for
one. No database: everything it needs comes with the row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from starter.security import Role
from starter.web.live.topics import Grant

# Customer notices: a package moved.
PACKAGE_NOTICES = {
    "shipped": "Order {no}: a package is on its way",
    "tracking_scanned": "Order {no}: a package has moved",
    "package_delivered": "Order {no}: a package was delivered",
}
SUPPLIER_NOTICES = {"payment_applied": "New paid order {no}"}


@dataclass(frozen=True)
class Target:
    """A paid supplier order a row may be told to its supplier about."""

    supplier_id: str
    supplier_order_id: str


@dataclass(frozen=True)
class Change:
    """One `order_log` row, with what the fan-out needs to know about its order."""

    id: int
    order_no: str
    supplier_order_id: str | None
    action: str
    customer_id: str | None
    suppliers: tuple[Target, ...] = ()

    def topics(self) -> set[str]:
        out = {"admin", f"order:{self.order_no}"}
        if self.customer_id:
            out.add(f"customer:{self.customer_id}")
        out.update(f"supplier:{t.supplier_id}" for t in self.suppliers)
        return out


@dataclass(frozen=True)
class Event:
    """One server-sent event (`event: change`)."""

    id: int
    data: dict[str, str | None]
    refresh: bool = False  # stands for events dropped from a full queue

    def encode(self) -> bytes:
        body = json.dumps(self.data, ensure_ascii=False, separators=(",", ":"))
        return f"id: {self.id}\nevent: change\ndata: {body}\n\n".encode()


def event_for(grant: Grant, change: Change) -> Event | None:
    """What this viewer is told about this row; None when it is none of their business."""
    p = grant.principal
    so_id = change.supplier_order_id
    notice: str | None = None
    if p.role is Role.ADMIN:
        pass
    elif p.role is Role.CUSTOMER:
        if change.customer_id != p.sub:
            return None
        template = PACKAGE_NOTICES.get(change.action)
        if template:
            notice = grant.gettext(template).format(no=change.order_no)
    else:
        mine = [t for t in change.suppliers if t.supplier_id == p.supplier_id]
        if not mine:
            return None
        so_id = mine[0].supplier_order_id
        template = SUPPLIER_NOTICES.get(change.action)
        if template:
            notice = grant.gettext(template).format(no=change.order_no)
    data: dict[str, str | None] = {
        "order_no": change.order_no,
        "supplier_order_id": so_id,
        "action": change.action,
    }
    if notice:
        data["notice"] = notice
    return Event(change.id, data)
