"""What the user typed, turned into request bodies: cart lines (`--line SKU:QTY`), money
amounts, the supplier in a supplier order id, `--address-json` spread over the checkout's
groups, and the items of a shipment (`--item ITEM[:QTY]` or `--all`). Malformed input is a
typer.BadParameter (a usage error); what cannot be resolved (an item not in the supplier
order, a supplier order id with no supplier in it) is a CliError.
"""

import json
from decimal import Decimal, InvalidOperation
from typing import Any

import typer

from starter.cli.errors import fail


def parse_line(text: str) -> dict[str, Any]:
    """'tea-1:2' → {"sku": "tea-1", "qty": 2} (qty 1 when omitted)."""
    sku, sep, qty = text.rpartition(":")
    if not sep:
        sku, qty = text, "1"
    if not sku or not qty.lstrip("-").isdigit():
        raise typer.BadParameter(f"{text!r}: expected SKU:QTY, e.g. tea-1:2")
    return {"sku": sku, "qty": int(qty)}


def money(value: str | None, option: str) -> str | None:
    if value is None:
        return None
    try:
        return str(Decimal(value).quantize(Decimal("0.01")))
    except InvalidOperation:
        raise typer.BadParameter(f"{option} {value!r} is not an amount") from None


def supplier_of(supplier_order_id: str) -> str:
    """Supplier order ids are '<order_no>-<supplier_id>' (domain/split.py)."""
    order_no, sep, supplier_id = supplier_order_id.partition("-")
    if not sep or not order_no.isdigit() or not supplier_id:
        fail(f"cannot tell the supplier from {supplier_order_id!r}: pass --supplier")
    return supplier_id


def groups_for(address_json: str | None, checkout: dict[str, Any]) -> list[dict[str, Any]]:
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


def ship_lines(items: list[str], ship_all: bool, view: dict[str, Any]) -> list[dict[str, Any]]:
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
