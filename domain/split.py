"""Pricing and splitting: cart lines → supplier orders → sub-orders by product type.

Pure functions over catalog snapshots. The same code prices the checkout form,
the API's pre-check and the atomic placement inside the database transaction,
so the customer is never shown one price and charged another.
"""

from collections.abc import Mapping, Sequence
from decimal import Decimal

from domain.errors import (
    AddressRequired,
    InactiveProduct,
    InsufficientCoins,
    InsufficientStock,
    InvalidInput,
    UnknownSku,
    UnknownSource,
)
from domain.models import (
    Address,
    CatalogProduct,
    CheckoutGroup,
    CheckoutItem,
    CustomerAccount,
    GroupInput,
    ItemPlan,
    OrderLine,
    OrderPlan,
    SubmitOrder,
    SubOrderPlan,
    SupplierOrderPlan,
)
from domain.money import ZERO, allocate, money
from domain.policy import Policy
from domain.states import OrderType, ProductKind

MAX_QTY_PER_LINE = 10_000


def supplier_order_id(order_no: str, supplier_id: str) -> str:
    return f"{order_no}-{supplier_id}"


def normalize_lines(lines: Sequence[OrderLine]) -> list[OrderLine]:
    """Positive integer quantities; the same SKU twice is one line with the sum (and one
    source: the same product from two catalog zones is refused, not silently merged)."""
    if not lines:
        raise InvalidInput("an order needs at least one line")
    merged: dict[str, int] = {}
    sources: dict[str, str | None] = {}
    for line in lines:
        if isinstance(line.qty, bool) or line.qty <= 0:
            raise InvalidInput(
                f"quantity for {line.sku!r} must be a positive integer, got {line.qty}"
            )
        if line.sku in sources and sources[line.sku] != line.source:
            raise InvalidInput(
                f"{line.sku!r} appears twice with different sources "
                f"({sources[line.sku]!r}, {line.source!r}); one line per product"
            )
        sources[line.sku] = line.source
        merged[line.sku] = merged.get(line.sku, 0) + line.qty
        if merged[line.sku] > MAX_QTY_PER_LINE:
            raise InvalidInput(f"quantity for {line.sku!r} exceeds {MAX_QTY_PER_LINE}")
    return [OrderLine(sku=sku, qty=qty, source=sources[sku]) for sku, qty in merged.items()]


def resolve_sources(lines: Sequence[OrderLine], zones: Sequence[str]) -> list[OrderLine]:
    """Each line's catalog zone, checked against the platform's zones (the first one
    when a line names none). An unknown zone is refused before anything is reserved."""
    resolved = []
    for line in lines:
        source = line.source or zones[0]
        if source not in zones:
            raise UnknownSource(
                f"unknown source {source!r} for {line.sku!r}; one of {', '.join(zones)}",
                sku=line.sku,
                source=source,
            )
        resolved.append(line.model_copy(update={"source": source}))
    return resolved


def check_order_type(request: SubmitOrder) -> None:
    """A friend-pay order carries its pay request's token hash; no other order does."""
    if request.order_type is OrderType.FRIEND_PAY:
        if request.pay_token_hash is None:
            raise InvalidInput("a friend_pay order needs its pay request token")
    elif request.pay_token_hash is not None:
        raise InvalidInput(f"a {request.order_type} order has no pay request")


def priced_lines(
    lines: Sequence[OrderLine], catalog: Mapping[str, CatalogProduct], check_stock: bool = True
) -> list[tuple[OrderLine, CatalogProduct]]:
    """Attach each line to its catalog product; unknown/inactive/short → typed error."""
    result = []
    for line in normalize_lines(lines):
        product = catalog.get(line.sku)
        if product is None:
            raise UnknownSku(f"unknown SKU {line.sku!r}", sku=line.sku)
        if not product.active:
            raise InactiveProduct(f"product {line.sku!r} is not on sale", sku=line.sku)
        if check_stock and product.available < line.qty:
            raise InsufficientStock(
                f"only {max(product.available, 0)} of {line.sku!r} in stock, {line.qty} requested",
                sku=line.sku,
            )
        result.append((line, product))
    return result


def _by_supplier(
    priced: list[tuple[OrderLine, CatalogProduct]],
) -> dict[str, list[tuple[OrderLine, CatalogProduct]]]:
    groups: dict[str, list[tuple[OrderLine, CatalogProduct]]] = {}
    for line, product in priced:
        groups.setdefault(product.supplier_id, []).append((line, product))
    return groups


def postage_for(subtotal: Decimal, needs_address: bool, policy: Policy) -> Decimal:
    """Flat postage per physical supplier group, free from the threshold on."""
    if not needs_address or subtotal >= policy.free_postage_from:
        return ZERO
    return money(policy.postage_flat)


def checkout_groups(
    lines: Sequence[OrderLine],
    catalog: Mapping[str, CatalogProduct],
    customer: CustomerAccount,
    policy: Policy,
) -> list[CheckoutGroup]:
    """The per-supplier forms shown before submit, default address pre-filled."""
    groups = []
    for supplier_id, entries in _by_supplier(priced_lines(lines, catalog)).items():
        needs_address = any(p.kind is ProductKind.PHYSICAL for _, p in entries)
        items = [
            CheckoutItem(
                sku=p.sku,
                name=p.name,
                product_type=p.product_type,
                kind=p.kind,
                price=money(p.price),
                qty=line.qty,
                line_total=money(p.price * line.qty),
            )
            for line, p in entries
        ]
        subtotal = sum((i.line_total for i in items), ZERO)
        groups.append(
            CheckoutGroup(
                supplier_id=supplier_id,
                needs_address=needs_address,
                address=customer.default_address if needs_address else None,
                items=items,
                subtotal=subtotal,
                postage=postage_for(subtotal, needs_address, policy),
            )
        )
    return groups


def _group_address(
    supplier_id: str,
    needs_address: bool,
    chosen: GroupInput | None,
    default: Address | None,
) -> Address | None:
    if not needs_address:
        return None
    if chosen is not None and chosen.address is not None:
        return chosen.address
    if default is not None:
        return default
    raise AddressRequired(
        f"supplier {supplier_id!r} ships physical goods: a delivery address is required",
        supplier_id=supplier_id,
    )


def build_plan(
    order_no: str,
    request: SubmitOrder,
    catalog: Mapping[str, CatalogProduct],
    customer: CustomerAccount,
    policy: Policy,
    check_stock: bool = True,
) -> OrderPlan:
    """Price, split and allocate coins. Raises a DomainError on any bad input."""
    if request.customer_id != customer.id:
        raise InvalidInput("order customer does not match the account")
    check_order_type(request)
    lines = resolve_sources(request.lines, policy.source_zones)
    priced = priced_lines(lines, catalog, check_stock=check_stock)
    by_supplier = _by_supplier(priced)
    chosen = {g.supplier_id: g for g in request.groups}
    unknown = set(chosen) - set(by_supplier)
    if unknown:
        raise InvalidInput(f"groups name suppliers not in the order: {sorted(unknown)}")
    if len(chosen) != len(request.groups):
        raise InvalidInput("each supplier may appear in groups only once")

    coins = request.coins
    if coins < 0 or coins != money(coins):
        raise InvalidInput("coins must be a non-negative amount with at most 2 decimals")
    if coins > customer.coins:
        raise InsufficientCoins(
            f"coin balance is {money(customer.coins)}, {money(coins)} requested"
        )

    drafts = []
    item_no = 0
    for supplier_id, entries in by_supplier.items():
        so_id = supplier_order_id(order_no, supplier_id)
        needs_address = any(p.kind is ProductKind.PHYSICAL for _, p in entries)
        address = _group_address(
            supplier_id, needs_address, chosen.get(supplier_id), customer.default_address
        )
        items = []
        for line, p in entries:
            item_no += 1
            items.append((f"{order_no}-{item_no}", line, p, money(p.price * line.qty)))
        subtotal = sum((t for *_, t in items), ZERO)
        postage = postage_for(subtotal, needs_address, policy)
        group = chosen.get(supplier_id)
        drafts.append((so_id, supplier_id, needs_address, address, group, items, subtotal, postage))

    grand_total = sum((d[6] + d[7] for d in drafts), ZERO)
    if coins > grand_total:
        raise InvalidInput(f"coins {money(coins)} exceed the order total {grand_total}")
    so_coins = allocate(coins, [d[6] + d[7] for d in drafts])

    supplier_orders = []
    for (so_id, supplier_id, needs_address, address, group, items, subtotal, postage), share in zip(
        drafts, so_coins, strict=True
    ):
        # Within the supplier order, coins spread over lines and postage alike, so a
        # refund of one line gives back exactly that line's coins.
        parts = allocate(share, [t for *_, t in items] + [postage])
        item_plans = [
            ItemPlan(
                item_id=item_id,
                sku=p.sku,
                name=p.name,
                product_type=p.product_type,
                kind=p.kind,
                price=money(p.price),
                qty=line.qty,
                line_total=total,
                coin_share=part,
                source=line.source or policy.source_zones[0],
            )
            for (item_id, line, p, total), part in zip(items, parts[:-1], strict=True)
        ]
        types: dict[str, list[str]] = {}
        for ip in item_plans:
            types.setdefault(ip.product_type, []).append(ip.item_id)
        sub_orders = [
            SubOrderPlan(id=f"{so_id}-{n}", product_type=t, item_ids=ids)
            for n, (t, ids) in enumerate(types.items(), start=1)
        ]
        supplier_orders.append(
            SupplierOrderPlan(
                id=so_id,
                supplier_id=supplier_id,
                needs_address=needs_address,
                address=address,
                remark=group.remark if group else "",
                items=item_plans,
                sub_orders=sub_orders,
                subtotal=subtotal,
                postage=postage,
                postage_coin_share=parts[-1],
                coin_share=share,
                payable=subtotal + postage - share,
            )
        )
    payable = grand_total - money(coins)
    if request.order_type is OrderType.FRIEND_PAY and payable <= 0:
        raise InvalidInput("coins cover this whole order: there is nothing for a friend to pay")
    return OrderPlan(
        order_no=order_no,
        customer_id=customer.id,
        order_type=request.order_type,
        supplier_orders=supplier_orders,
        subtotal=sum((so.subtotal for so in supplier_orders), ZERO),
        postage=sum((so.postage for so in supplier_orders), ZERO),
        coins=money(coins),
        payable=payable,
    )
