"""`orders`: the command line of the order service.

`orders dev` brings up the local stack (starter/dev.py). Every other command is an HTTP
client of the API (DESIGN.md §6), like a user's own code: it mints a short-lived token
for the role the call needs with ORDERS_JWT_SECRET (webhooks are signed with
ORDERS_WEBHOOK_SECRET) and talks to `--api` (env ORDERS_API_URL, default
http://127.0.0.1:ORDERS_API_PORT).

    orders token --role customer --sub alice
    orders submit --customer alice --line tea-1:2 --line cup-3:1 --coins 5
    orders pay <order_no>
    orders ship <supplier_order_id> --carrier sf --tracking SF1001 --item tea-1:1
    orders track sf SF1001 --lat 31.0 --lon 121.2
    orders show <order_no>
    orders list --customer alice
"""

import json
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, NoReturn

import httpx
import jwt
import typer

from settings import Settings, get_settings
from starter.security import Role, mint_token, sign_body

app = typer.Typer(
    name="orders",
    help="Order lifecycle service: local dev stack and an HTTP client of its API.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ADMIN_SUB = "orders-cli"
TOKEN_TTL = 600


def _mint(sub: str, role: Role, supplier_id: str | None, ttl: int) -> str:
    secret = get_settings().jwt_secret
    if secret == Settings.model_fields["jwt_secret"].default:
        # Only the built-in dev default is let off PyJWT's short-key warning (it would print
        # on every call); a real ORDERS_JWT_SECRET that is too short still warns.
        warnings.filterwarnings("ignore", category=jwt.InsecureKeyLengthWarning)
    return mint_token(secret, sub, role, supplier_id, ttl)


def default_api_url() -> str:
    return f"http://127.0.0.1:{get_settings().api_port}"


ApiUrl = Annotated[
    str | None,
    typer.Option(
        "--api",
        envvar="ORDERS_API_URL",
        help="Base URL of the API [default: http://127.0.0.1:$ORDERS_API_PORT]",
        show_default=False,
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the API's JSON response as is.")]


class CliError(Exception):
    pass


def fail(message: str) -> NoReturn:
    raise CliError(message)


# --- HTTP -------------------------------------------------------------------------------------


class Api:
    """The API at `base_url`, called with a bearer token for one principal."""

    def __init__(
        self,
        base_url: str | None,
        role: Role,
        sub: str,
        supplier_id: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = (base_url or default_api_url()).rstrip("/")
        token = _mint(sub, role, supplier_id, TOKEN_TTL)
        self.http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}"},
            transport=transport,
            timeout=30.0,
        )

    def __enter__(self) -> "Api":
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content: bytes | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        params = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            r = self.http.request(
                method, path, json=body, content=content, params=params, headers=headers
            )
        except httpx.TransportError as err:
            fail(
                f"cannot reach the API at {self.base_url} ({err or type(err).__name__}).\n"
                "Is `make dev` running? Point elsewhere with --api or ORDERS_API_URL."
            )
        if r.status_code >= 400:
            fail(f"{method} {path} → {r.status_code} {_error_text(r)}")
        if not r.content:
            return None
        return r.json()


def _error_text(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return r.text[:500] or r.reason_phrase
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return f"{error.get('code', 'error')}: {error.get('message', '')}"
    return json.dumps(body)[:500]


def _transport(ctx: typer.Context) -> httpx.BaseTransport | None:
    """Tests hand an httpx.MockTransport in through the click context's obj."""
    obj = ctx.find_root().obj
    return obj.get("transport") if isinstance(obj, dict) else None


def _api(
    ctx: typer.Context, url: str | None, role: Role, sub: str, supplier_id: str | None = None
) -> Api:
    return Api(url, role, sub, supplier_id, transport=_transport(ctx))


@contextmanager
def _reported() -> Iterator[None]:
    try:
        yield
    except CliError as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


# --- formatting -------------------------------------------------------------------------------


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


def _status(so: dict[str, Any]) -> str:
    status = str(so.get("status", "?"))
    reason = so.get("close_reason")
    return f"{status} ({reason})" if reason else status


def render_order(order: dict[str, Any], now: datetime | None = None) -> str:
    """A GET /orders/{no} response as a status tree (what `orders show` prints)."""
    now = now or datetime.now(UTC)
    rows: list[tuple[int, str]] = []
    head = f"Order {order['order_no']} · {_status(order)}"
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
        rows.append((1, f"Supplier order {so['id']} · {so['supplier_id']} · {_status(so)}"))
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
            _status(o),
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


# --- parsing ----------------------------------------------------------------------------------


def parse_line(text: str) -> dict[str, Any]:
    """'tea-1:2' → {"sku": "tea-1", "qty": 2} (qty 1 when omitted)."""
    sku, sep, qty = text.rpartition(":")
    if not sep:
        sku, qty = text, "1"
    if not sku or not qty.lstrip("-").isdigit():
        raise typer.BadParameter(f"{text!r}: expected SKU:QTY, e.g. tea-1:2")
    return {"sku": sku, "qty": int(qty)}


def _money(value: str | None, option: str) -> str | None:
    if value is None:
        return None
    try:
        return str(Decimal(value).quantize(Decimal("0.01")))
    except InvalidOperation:
        raise typer.BadParameter(f"{option} {value!r} is not an amount") from None


def _supplier_of(supplier_order_id: str) -> str:
    """Supplier order ids are '<order_no>-<supplier_id>' (domain/split.py)."""
    order_no, sep, supplier_id = supplier_order_id.partition("-")
    if not sep or not order_no.isdigit() or not supplier_id:
        fail(f"cannot tell the supplier from {supplier_order_id!r}: pass --supplier")
    return supplier_id


def _groups_for(address_json: str | None, checkout: dict[str, Any]) -> list[dict[str, Any]]:
    """--address-json: one address for every group that needs one, or {supplier_id: address}."""
    if address_json is None:
        return []
    try:
        given = json.loads(address_json)
    except ValueError as err:
        raise typer.BadParameter(f"--address-json is not JSON: {err}") from None
    if not isinstance(given, dict):
        raise typer.BadParameter("--address-json: a JSON object (an address or supplier → address)")
    per_supplier = all(isinstance(v, dict) for v in given.values()) and "name" not in given
    groups = []
    for g in checkout.get("groups", []):
        supplier = g["supplier_id"]
        address = given.get(supplier) if per_supplier else given
        if g.get("needs_address") and address is not None:
            groups.append({"supplier_id": supplier, "address": address})
    return groups


# --- commands ---------------------------------------------------------------------------------


@app.command()
def dev(
    seed: Annotated[bool, typer.Option(help="Upsert the demo catalog and customers.")] = True,
) -> None:
    """Run the local stack: Temporal dev server + UI, migrations, demo data, worker, API."""
    from starter.dev import main as run_dev

    raise typer.Exit(run_dev(seed=seed))


@app.command()
def token(
    role: Annotated[Role, typer.Option(help="customer, supplier or admin")],
    sub: Annotated[str, typer.Option(help="The subject: customer id, supplier user, admin")],
    supplier_id: Annotated[
        str | None, typer.Option(help="Supplier tokens: the supplier (default: --sub)")
    ] = None,
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds")] = 24 * 3600,
) -> None:
    """Print a bearer token (JWT, HS256 with ORDERS_JWT_SECRET)."""
    if supplier_id and role is not Role.SUPPLIER:
        raise typer.BadParameter("--supplier-id is only for --role supplier")
    typer.echo(_mint(sub, role, supplier_id, ttl))


@app.command()
def submit(
    ctx: typer.Context,
    customer: Annotated[str, typer.Option(help="Customer id, e.g. alice")],
    line: Annotated[
        list[str], typer.Option("--line", help="SKU:QTY, repeatable (e.g. --line tea-1:2)")
    ],
    coins: Annotated[str | None, typer.Option(help="Coins to spend, e.g. 5")] = None,
    address_json: Annotated[
        str | None,
        typer.Option(
            help="Delivery address JSON {name, phone, region, address, lat, lon} for every "
            "physical group, or {supplier_id: address}; default: the customer's default address"
        ),
    ] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="Idempotency-Key header")] = None,
    api: ApiUrl = None,
    as_json: AsJson = False,
) -> None:
    """Submit an order (POST /orders) as the customer; prints order_no, payable, deadline."""
    lines = [parse_line(text) for text in line]
    with _reported(), _api(ctx, api, Role.CUSTOMER, customer) as client:
        body: dict[str, Any] = {"lines": lines}
        if coins is not None:
            body["coins"] = _money(coins, "--coins")
        if address_json is not None:
            checkout = client.call("POST", "/checkout", body={"lines": lines})
            body["groups"] = _groups_for(address_json, checkout)
        placed = client.call(
            "POST",
            "/orders",
            body=body,
            headers={"Idempotency-Key": idempotency_key or str(uuid.uuid4())},
        )
        if as_json:
            _echo_json(placed)
            return
        no = placed["order_no"]
        typer.echo(f"order {no} · {placed['status']}")
        typer.echo(
            f"  payable {placed['payable']} (subtotal {placed.get('subtotal')} + postage "
            f"{placed.get('postage')} - coins {placed.get('coins')})"
        )
        typer.echo(f"  pay by {when(placed['pay_deadline'])}")
        for so in placed.get("supplier_orders", []):
            items = ", ".join(f"{i['sku']} x{i['qty']}" for i in so.get("items", []))
            typer.echo(f"  {so['id']}: {items} · payable {so.get('payable')}")
        typer.echo(f"next: orders pay {no}    orders show {no}")


@app.command()
def pay(
    ctx: typer.Context,
    order_no: Annotated[str, typer.Argument(help="The order number")],
    amount: Annotated[
        str | None, typer.Option(help="Amount paid (default: the payable amount)")
    ] = None,
    method: Annotated[str, typer.Option(help="Payment method")] = "card",
    failed: Annotated[
        bool, typer.Option("--failed", help="Simulate a failed payment (closes the order)")
    ] = False,
    customer: Annotated[
        str | None, typer.Option(help="The paying customer (default: the order's owner)")
    ] = None,
    wait: Annotated[
        float, typer.Option(help="Seconds to wait for the order to leave PENDING_PAYMENT")
    ] = 10.0,
    api: ApiUrl = None,
    as_json: AsJson = False,
) -> None:
    """Pay an order with the simulated provider (POST /orders/{no}/pay)."""
    with _reported():
        with _api(ctx, api, Role.ADMIN, ADMIN_SUB) as admin:
            if customer is None:
                customer = str(admin.call("GET", f"/orders/{order_no}")["customer_id"])
            body: dict[str, Any] = {"method": method, "status": "failed" if failed else "succeeded"}
            if amount is not None:
                body["amount"] = _money(amount, "--amount")
            with _api(ctx, api, Role.CUSTOMER, customer) as client:
                accepted = client.call("POST", f"/orders/{order_no}/pay", body=body)
            if as_json:
                _echo_json(accepted)
                return
            typer.echo(
                f"payment {accepted.get('event_id')} for {order_no}: {accepted.get('outcome')}"
            )
            order = admin.call("GET", f"/orders/{order_no}", params={"live": "false"})
            deadline = time.monotonic() + wait
            while order["status"] == "PENDING_PAYMENT" and time.monotonic() < deadline:
                time.sleep(0.3)
                order = admin.call("GET", f"/orders/{order_no}", params={"live": "false"})
        typer.echo(f"order {order_no} is {_status(order)}")
        for so in order.get("supplier_orders", []):
            typer.echo(f"  {so['id']} · {_status(so)}")
            if so.get("status") == "PENDING_SHIPMENT":
                carrier = "sf" if so.get("needs_address", True) else "email"
                typer.echo(
                    f"    ship: orders ship {so['id']} --carrier {carrier} --tracking <no> --all"
                )


def _ship_lines(items: list[str], ship_all: bool, view: dict[str, Any]) -> list[dict[str, Any]]:
    """ITEM[:QTY] (item id or SKU; QTY defaults to what is left) or --all → [{item_id, qty}]."""
    known = [i for sub in view.get("sub_orders", []) for i in sub.get("items", [])]
    left = {i["item_id"]: int(i["qty"]) - int(i.get("shipped_qty", 0)) for i in known}
    if ship_all:
        lines = [{"item_id": k, "qty": v} for k, v in left.items() if v > 0]
        if not lines:
            fail("nothing left to ship")
        return lines
    lines = []
    for text in items:
        ref, sep, qty = text.rpartition(":")
        if not sep:
            ref, qty = text, ""
        ids = (
            [ref] if ref in left or not known else [i["item_id"] for i in known if i["sku"] == ref]
        )
        if len(ids) != 1:
            fail(f"--item {text!r}: no item or SKU {ref!r} in this supplier order")
        if qty and not qty.isdigit():
            raise typer.BadParameter(f"--item {text!r}: expected ITEM:QTY")
        if not qty and ids[0] not in left:
            raise typer.BadParameter(f"--item {text!r}: give the quantity, ITEM:QTY")
        lines.append({"item_id": ids[0], "qty": int(qty) if qty else left[ids[0]]})
    return lines


@app.command()
def ship(
    ctx: typer.Context,
    supplier_order_id: Annotated[str, typer.Argument(help="e.g. 123456789-tea-house")],
    tracking: Annotated[str, typer.Option(help="Tracking number")],
    carrier: Annotated[str, typer.Option(help="Carrier, e.g. sf")],
    item: Annotated[
        list[str] | None,
        typer.Option(help="ITEM:QTY, repeatable; ITEM is an item id or a SKU; QTY: all left"),
    ] = None,
    ship_all: Annotated[
        bool, typer.Option("--all", help="Ship everything not shipped yet in this package")
    ] = False,
    method: Annotated[
        str | None,
        typer.Option(
            help="express, standard, economy, same_day; virtual goods: virtual "
            "[default: standard, or virtual for a supplier order of virtual goods]",
            show_default=False,
        ),
    ] = None,
    supplier: Annotated[
        str | None, typer.Option(help="Supplier id (default: from the supplier order id)")
    ] = None,
    api: ApiUrl = None,
    as_json: AsJson = False,
) -> None:
    """Ship items in one package, as the supplier (POST /supplier/orders/{id}/shipments)."""
    if not item and not ship_all:
        raise typer.BadParameter("give --item ITEM:QTY (repeatable) or --all")
    with _reported():
        supplier_id = supplier or _supplier_of(supplier_order_id)
        with _api(ctx, api, Role.SUPPLIER, supplier_id, supplier_id) as client:
            view = client.call("GET", f"/supplier/orders/{supplier_order_id}")
            if method is None:
                method = "standard" if view.get("needs_address", True) else "virtual"
            lines = _ship_lines(item or [], ship_all, view)
            result = client.call(
                "POST",
                f"/supplier/orders/{supplier_order_id}/shipments",
                body={
                    "carrier": carrier,
                    "tracking_no": tracking,
                    "method": method,
                    "items": lines,
                },
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )
        if as_json:
            _echo_json(result)
            return
        shipped = ", ".join(f"{i['item_id']} x{i['qty']}" for i in lines)
        typer.echo(f"shipped {shipped} as {carrier} {tracking}")
        typer.echo(f"supplier order {supplier_order_id} is {_status(result)}")


@app.command()
def track(
    ctx: typer.Context,
    carrier: Annotated[str, typer.Argument(help="Carrier of the package")],
    tracking_no: Annotated[str, typer.Argument(help="Tracking number")],
    lat: Annotated[float, typer.Option(help="Latitude of the scan")],
    lon: Annotated[float, typer.Option(help="Longitude of the scan")],
    status: Annotated[str, typer.Option(help="in_transit, delivered, ...")] = "in_transit",
    api: ApiUrl = None,
) -> None:
    """Send a carrier scan (POST /webhooks/carrier, signed with ORDERS_WEBHOOK_SECRET)."""
    event = {
        "event_id": f"cli-{uuid.uuid4().hex}",
        "carrier": carrier,
        "tracking_no": tracking_no,
        "lat": lat,
        "lon": lon,
        "status": status,
        "at": datetime.now(UTC).isoformat(),
    }
    raw = json.dumps(event).encode()
    signature = sign_body(get_settings().webhook_secret, raw)
    with _reported(), _api(ctx, api, Role.ADMIN, ADMIN_SUB) as client:
        ack = client.call(
            "POST",
            "/webhooks/carrier",
            content=raw,
            headers={"X-Signature": signature, "Content-Type": "application/json"},
        )
    typer.echo(f"scan {event['event_id']}: {(ack or {}).get('outcome') or 'accepted'}")


@app.command()
def show(
    ctx: typer.Context,
    order_no: Annotated[str, typer.Argument(help="The order number")],
    api: ApiUrl = None,
    as_json: AsJson = False,
) -> None:
    """Show an order as a status tree (GET /orders/{no} as admin)."""
    with _reported(), _api(ctx, api, Role.ADMIN, ADMIN_SUB) as client:
        order = client.call("GET", f"/orders/{order_no}")
    if as_json:
        _echo_json(order)
    else:
        typer.echo(render_order(order))


@app.command("list")
def list_orders(
    ctx: typer.Context,
    customer: Annotated[str | None, typer.Option(help="Only this customer's orders")] = None,
    status: Annotated[str | None, typer.Option(help="Order or supplier-order status")] = None,
    limit: Annotated[int, typer.Option(help="Page size (max 100)")] = 20,
    offset: Annotated[int, typer.Option(help="Skip this many")] = 0,
    api: ApiUrl = None,
    as_json: AsJson = False,
) -> None:
    """List orders, newest first (GET /orders as admin)."""
    params = {"customer_id": customer, "status": status, "limit": limit, "offset": offset}
    with _reported(), _api(ctx, api, Role.ADMIN, ADMIN_SUB) as client:
        page = client.call("GET", "/orders", params=params)
    if as_json:
        _echo_json(page)
    else:
        typer.echo(render_list(page))


if __name__ == "__main__":
    app()
