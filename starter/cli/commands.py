"""The `orders` Typer app and its commands, in the order `orders --help` lists them: `dev`
runs the local stack; `token` prints a bearer token; `submit`, `pay`, `ship` and `track`
drive an order through its lifecycle over the API the way its customer, supplier and
carrier would (`track` sends a signed carrier webhook); `show` and `list` read orders as
admin.
"""

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from settings import get_settings
from starter.cli.client import ADMIN_SUB, client_for, mint
from starter.cli.errors import reported
from starter.cli.inputs import groups_for, money, parse_line, ship_lines, supplier_of
from starter.cli.render import echo_json, render_list, render_order, status_text, when
from starter.security import Role, sign_body

app = typer.Typer(
    name="orders",
    help="Order lifecycle service: local dev stack and an HTTP client of its API.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ApiUrl = Annotated[
    str | None,
    typer.Option(
        "--api",
        envvar="ORDERS_API_URL",
        help="Base URL of the API \\[default: http://127.0.0.1:$ORDERS_API_PORT]",
        show_default=False,
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the API's JSON response as is.")]


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
    typer.echo(mint(sub, role, supplier_id, ttl))


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
    with reported(), client_for(ctx, api, Role.CUSTOMER, customer) as client:
        body: dict[str, Any] = {"lines": lines}
        if coins is not None:
            body["coins"] = money(coins, "--coins")
        if address_json is not None:
            checkout = client.call("POST", "/checkout", body={"lines": lines})
            body["groups"] = groups_for(address_json, checkout)
        placed = client.call(
            "POST",
            "/orders",
            body=body,
            headers={"Idempotency-Key": idempotency_key or str(uuid.uuid4())},
        )
        if as_json:
            echo_json(placed)
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
    with reported():
        with client_for(ctx, api, Role.ADMIN, ADMIN_SUB) as admin:
            if customer is None:
                customer = str(admin.call("GET", f"/orders/{order_no}")["customer_id"])
            body: dict[str, Any] = {"method": method, "status": "failed" if failed else "succeeded"}
            if amount is not None:
                body["amount"] = money(amount, "--amount")
            with client_for(ctx, api, Role.CUSTOMER, customer) as client:
                accepted = client.call("POST", f"/orders/{order_no}/pay", body=body)
            if as_json:
                echo_json(accepted)
                return
            typer.echo(
                f"payment {accepted.get('event_id')} for {order_no}: {accepted.get('outcome')}"
            )
            order = admin.call("GET", f"/orders/{order_no}", params={"live": "false"})
            deadline = time.monotonic() + wait
            while order["status"] == "PENDING_PAYMENT" and time.monotonic() < deadline:
                time.sleep(0.3)
                order = admin.call("GET", f"/orders/{order_no}", params={"live": "false"})
        typer.echo(f"order {order_no} is {status_text(order)}")
        for so in order.get("supplier_orders", []):
            typer.echo(f"  {so['id']} · {status_text(so)}")
            if so.get("status") == "PENDING_SHIPMENT":
                carrier = "sf" if so.get("needs_address", True) else "email"
                typer.echo(
                    f"    ship: orders ship {so['id']} --carrier {carrier} --tracking <no> --all"
                )


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
            "\\[default: standard, or virtual for a supplier order of virtual goods]",
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
    with reported():
        supplier_id = supplier or supplier_of(supplier_order_id)
        with client_for(ctx, api, Role.SUPPLIER, supplier_id, supplier_id) as client:
            view = client.call("GET", f"/supplier/orders/{supplier_order_id}")
            if method is None:
                method = "standard" if view.get("needs_address", True) else "virtual"
            lines = ship_lines(item or [], ship_all, view)
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
            echo_json(result)
            return
        shipped = ", ".join(f"{i['item_id']} x{i['qty']}" for i in lines)
        typer.echo(f"shipped {shipped} as {carrier} {tracking}")
        typer.echo(f"supplier order {supplier_order_id} is {status_text(result)}")


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
    with reported(), client_for(ctx, api, Role.ADMIN, ADMIN_SUB) as client:
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
    with reported(), client_for(ctx, api, Role.ADMIN, ADMIN_SUB) as client:
        order = client.call("GET", f"/orders/{order_no}")
    if as_json:
        echo_json(order)
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
    with reported(), client_for(ctx, api, Role.ADMIN, ADMIN_SUB) as client:
        page = client.call("GET", "/orders", params=params)
    if as_json:
        echo_json(page)
    else:
        typer.echo(render_list(page))
