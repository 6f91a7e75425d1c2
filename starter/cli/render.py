"""What the CLI prints for the API's responses: `render_order` draws GET /orders/{no} as a
box-drawing status tree (`orders show`), `render_list` lays a page of GET /orders out as
columns (`orders list`), and `when` shows a timestamp in UTC with how far off it is. Pure
functions of the response and `now`, so tests pin the clock; `echo_json` is the `--json`
output of every command.
"""

import json
from datetime import UTC, datetime
from typing import Any

import typer


def echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    t = datetime.fromisoformat(value)
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _ago(seconds: float) -> str:
    s = int(abs(seconds))
    if s < 60:
        text = f"{s}s"
    elif s < 3600:
        text = f"{s // 60}m"
    elif s < 86400:
        text = f"{s // 3600}h{(s % 3600) // 60:02d}m"
    else:
        text = f"{s // 86400}d{(s % 86400) // 3600}h"
    return f"in {text}" if seconds >= 0 else f"{text} ago"


def when(value: str | None, now: datetime | None = None) -> str:
    """'2026-01-02 03:04:05Z (in 29m)'; '—' when unset."""
    t = _parse_time(value)
    if t is None:
        return "—"
    now = now or datetime.now(UTC)
    stamp = t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return f"{stamp} ({_ago((t - now).total_seconds())})"


def _tree(lines: list[tuple[int, str]]) -> list[str]:
    """Draw (depth, text) rows, depth-first order, as a box-drawing tree."""
    out: list[str] = []
    for i, (depth, text) in enumerate(lines):
        if depth == 0:
            out.append(text)
            continue
        prefix = ""
        for level in range(1, depth):
            # A vertical bar at `level` while an ancestor at that level has a later sibling.
            more = _has_next_sibling(lines, i, level)
            prefix += "│   " if more else "    "
        last = not _has_next_sibling(lines, i, depth)
        out.append(prefix + ("└── " if last else "├── ") + text)
    return out


def _has_next_sibling(lines: list[tuple[int, str]], i: int, depth: int) -> bool:
    """Is there, after row i, another row at `depth` before the tree climbs above it?"""
    for d, _ in lines[i + 1 :]:
        if d < depth:
            return False
        if d == depth:
            return True
    return False


def status_text(so: dict[str, Any]) -> str:
    status = str(so.get("status", "?"))
    reason = so.get("close_reason")
    return f"{status} ({reason})" if reason else status


def render_order(order: dict[str, Any], now: datetime | None = None) -> str:
    """A GET /orders/{no} response as a status tree (what `orders show` prints)."""
    now = now or datetime.now(UTC)
    rows: list[tuple[int, str]] = []
    head = f"Order {order['order_no']} · {status_text(order)}"
    if order.get("customer_id"):
        head += f" · customer {order['customer_id']}"
    rows.append((0, head))
    money = f"payable {order.get('payable')} · paid {order.get('paid')} · refunded {order.get('refunded')}"
    if order.get("coins") not in (None, "0.00"):
        money += f" · coins {order['coins']}"
        if order.get("coins_refunded") not in (None, "0.00"):
            money += f" (returned {order['coins_refunded']})"
    rows.append((1, money))
    if order.get("status") == "PENDING_PAYMENT":
        rows.append((1, f"pay by {when(order.get('pay_deadline'), now)}"))
    elif order.get("paid_at"):
        rows.append((1, f"paid {when(order.get('paid_at'), now)} by {order.get('payment_method')}"))
    if order.get("closed_at"):
        rows.append((1, f"closed {when(order.get('closed_at'), now)}"))
    for so in order.get("supplier_orders", []):
        rows.append((1, f"Supplier order {so['id']} · {so['supplier_id']} · {status_text(so)}"))
        amounts = f"subtotal {so.get('subtotal')} + postage {so.get('postage')}"
        if so.get("coin_share") not in (None, "0.00"):
            amounts += f" - coins {so['coin_share']}"
        amounts += f" = payable {so.get('payable')}"
        rows.append((2, amounts))
        addr = so.get("address")
        if addr:
            rows.append(
                (
                    2,
                    f"ship to {addr.get('name')}, {addr.get('region')}, {addr.get('address')}"
                    + (f" ({addr['lat']}, {addr['lon']})" if addr.get("lat") is not None else ""),
                )
            )
        elif so.get("needs_address") is False:
            rows.append((2, "virtual goods: no delivery address"))
        dl = so.get("deadlines") or {}
        deadlines = [
            f"{label} {when(dl.get(key), now)}"
            for key, label in (
                ("auto_confirm_at", "auto-confirm"),
                ("auto_review_at", "auto-review"),
                ("after_sales_until", "after-sales until"),
            )
            if dl.get(key)
        ]
        for label in ("received_at", "completed_at"):
            if so.get(label):
                deadlines.append(f"{label.removesuffix('_at')} {when(so[label], now)}")
        if deadlines:
            rows.append((2, "deadlines: " + " · ".join(deadlines)))
        for sub in so.get("sub_orders", []):
            sub_status = f" · {sub['status']}" if sub.get("status") else ""
            rows.append((2, f"Sub-order {sub['product_type']}{sub_status}"))
            for item in sub.get("items", []):
                name = f" {item['name']}" if item.get("name") else ""
                refunded = f" · refunded {item['refunded_qty']}" if item.get("refunded_qty") else ""
                rows.append(
                    (
                        3,
                        f"{item['item_id']}  {item['sku']}{name} · shipped "
                        f"{item.get('shipped_qty', 0)}/{item['qty']}{refunded} · {item['status']}",
                    )
                )
        packages = so.get("packages", [])
        if packages:
            rows.append((2, f"Packages ({len(packages)})"))
        for pkg in packages:
            items = ", ".join(f"{i['item_id']} x{i['qty']}" for i in pkg.get("items", []))
            state = f" · {pkg['status']}" if pkg.get("status") else ""
            rows.append(
                (3, f"{pkg['carrier']} {pkg['tracking_no']} ({pkg.get('method')}){state}: {items}")
            )
            loc = pkg.get("location")
            if pkg.get("method") == "virtual":
                rows.append((4, f"delivered digitally {when(pkg.get('shipped_at'), now)}"))
                continue
            if loc:
                where = f"last seen ({loc['lat']}, {loc['lon']}) {when(loc.get('at'), now)}"
            else:
                where = "no carrier scan yet"
            if pkg.get("distance_km") is not None:
                where += f" · {float(pkg['distance_km']):.1f} km to go"
            if pkg.get("eta"):
                where += f" · ETA {when(pkg['eta'], now)}"
            rows.append((4, where))
        after_sales = so.get("after_sales", [])
        if after_sales:
            rows.append((2, f"After-sales ({len(after_sales)})"))
        for a in after_sales:
            refund = f" · refund {a['refund_amount']}" if a.get("refund_amount") else ""
            rows.append(
                (3, f"{a['id']} · {a['type']} {a['item_id']} x{a['qty']} · {a['status']}{refund}")
            )
    return "\n".join(_tree(rows))


def render_list(page: dict[str, Any], now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    items = page.get("items", [])
    if not items:
        return "no orders"
    header = ("ORDER", "CUSTOMER", "STATUS", "PAYABLE", "CREATED", "SUPPLIER ORDERS")
    rows = [
        (
            str(o["order_no"]),
            str(o.get("customer_id", "")),
            status_text(o),
            str(o.get("payable", "")),
            when(o.get("created_at"), now),
            " ".join(f"{so['supplier_id']}:{so['status']}" for so in o.get("supplier_orders", [])),
        )
        for o in items
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
        for r in [header, *rows]
    ]
    shown = len(items)
    total = page.get("total", shown)
    if total > shown:
        lines.append(f"({shown} of {total}; --limit/--offset for more)")
    return "\n".join(line.rstrip() for line in lines)
