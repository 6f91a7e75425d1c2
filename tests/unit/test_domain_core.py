"""Pure domain rules: money allocation, pricing/splitting, states, policy parsing."""

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from domain import supplier_rules as rules
from domain.activity_params import ReviewLine
from domain.errors import (
    AddressRequired,
    InactiveProduct,
    InsufficientCoins,
    InsufficientStock,
    InvalidInput,
    UnknownSku,
    error_from_code,
)
from domain.ids import Snowflake
from domain.messages import ShipItems, ShipLine, SubmitReview
from domain.models import (
    Address,
    CatalogProduct,
    CustomerAccount,
    GroupInput,
    OrderLine,
    OrderPlan,
    SubmitOrder,
)
from domain.money import allocate, prorate
from domain.policy import Policy, parse_duration
from domain.split import build_plan, checkout_groups
from domain.states import (
    CloseReason,
    ItemStatus,
    OrderStatus,
    ProductKind,
    SupplierOrderStatus,
    check_transition,
    item_status,
    order_close_reason,
    order_status,
    sub_order_status,
)

HOME = Address(name="A", phone="123", region="R", address="X", lat=1.0, lon=2.0)
CATALOG = {
    p.sku: p
    for p in [
        CatalogProduct(
            sku="t1",
            name="Tea",
            supplier_id="s1",
            product_type="tea",
            kind=ProductKind.PHYSICAL,
            price=Decimal("10.00"),
            on_hand=5,
        ),
        CatalogProduct(
            sku="p1",
            name="Pot",
            supplier_id="s1",
            product_type="ware",
            kind=ProductKind.PHYSICAL,
            price=Decimal("33.33"),
            on_hand=5,
        ),
        CatalogProduct(
            sku="g1",
            name="Gift",
            supplier_id="s2",
            product_type="card",
            kind=ProductKind.VIRTUAL,
            price=Decimal("50.00"),
            on_hand=99,
        ),
        CatalogProduct(
            sku="x1",
            name="Old",
            supplier_id="s2",
            product_type="card",
            kind=ProductKind.VIRTUAL,
            price=Decimal("1.00"),
            on_hand=9,
            active=False,
        ),
    ]
}
ALICE = CustomerAccount(id="alice", coins=Decimal("20.00"), default_address=HOME)


def plan(
    lines: list[tuple[str, int]],
    coins: str = "0",
    customer: CustomerAccount = ALICE,
    groups: list[GroupInput] | None = None,
) -> OrderPlan:
    request = SubmitOrder(
        customer_id=customer.id,
        lines=[OrderLine(sku=s, qty=q) for s, q in lines],
        coins=Decimal(coins),
        groups=groups or [],
    )
    return build_plan("42", request, CATALOG, customer, Policy())


# --- money ---------------------------------------------------------------------------------


@given(
    st.decimals(min_value=0, max_value=100000, places=2),
    st.lists(st.decimals(min_value=0, max_value=10000, places=2), min_size=1, max_size=8),
)
def test_allocate_parts_sum_exactly_and_stay_within_a_cent(
    total: Decimal, weights: list[Decimal]
) -> None:
    parts = allocate(total, weights)
    assert sum(parts) == total
    wsum = sum(weights)
    for part, w in zip(parts, weights, strict=True):
        exact = total * w / wsum if wsum else None
        if exact is not None:
            assert abs(part - exact) < Decimal("0.01")


@given(st.decimals(min_value=0, max_value=10000, places=2), st.integers(min_value=1, max_value=50))
def test_prorate_is_monotone_and_exact_at_the_whole(amount: Decimal, whole: int) -> None:
    shares = [prorate(amount, k, whole) for k in range(whole + 1)]
    assert shares[0] == 0 and shares[-1] == amount
    assert all(a <= b for a, b in itertools.pairwise(shares))


def test_allocate_rejects_negative_weights() -> None:
    with pytest.raises(ValueError):
        allocate(Decimal("1.00"), [Decimal("-1")])


# --- pricing and splitting -------------------------------------------------------------------


def test_plan_prices_from_catalog_and_splits_by_supplier_and_type() -> None:
    p = plan([("t1", 2), ("p1", 1), ("g1", 1)], coins="10.00")
    assert [so.supplier_id for so in p.supplier_orders] == ["s1", "s2"]
    s1, s2 = p.supplier_orders
    assert {s.product_type for s in s1.sub_orders} == {"tea", "ware"}
    assert s1.subtotal == Decimal("53.33") and s1.postage == Decimal("8.00")
    assert s2.needs_address is False and s2.address is None and s2.postage == 0
    assert s1.address == HOME  # default address pre-fills
    assert p.coins == Decimal("10.00") and s1.coin_share + s2.coin_share == Decimal("10.00")
    for so in p.supplier_orders:
        assert sum(i.coin_share for i in so.items) + so.postage_coin_share == so.coin_share
        assert so.payable == so.subtotal + so.postage - so.coin_share
    assert p.payable == sum(so.payable for so in p.supplier_orders)


def test_group_address_overrides_the_default() -> None:
    other = HOME.model_copy(update={"name": "B"})
    p = plan([("t1", 1)], groups=[GroupInput(supplier_id="s1", address=other, remark="door")])
    assert p.supplier_orders[0].address == other and p.supplier_orders[0].remark == "door"


def test_duplicate_lines_merge() -> None:
    p = plan([("t1", 1), ("t1", 2)])
    assert [i.qty for i in p.supplier_orders[0].items] == [3]


@pytest.mark.parametrize(
    ("lines", "coins", "customer", "error"),
    [
        ([("zz", 1)], "0", ALICE, UnknownSku),
        ([("t1", 0)], "0", ALICE, InvalidInput),
        ([("x1", 1)], "0", ALICE, InactiveProduct),
        ([("t1", 6)], "0", ALICE, InsufficientStock),
        ([("t1", 1)], "20.01", ALICE, InsufficientCoins),
        ([("t1", 1)], "18.01", ALICE, InvalidInput),  # more coins than the total (10 + 8)
        ([("t1", 1)], "0.001", ALICE, InvalidInput),
        ([("t1", 1)], "0", CustomerAccount(id="alice"), AddressRequired),
    ],
)
def test_bad_input_raises_typed_errors(
    lines: list[tuple[str, int]], coins: str, customer: CustomerAccount, error: type[Exception]
) -> None:
    with pytest.raises(error):
        plan(lines, coins=coins, customer=customer)


def test_virtual_only_order_needs_no_address() -> None:
    p = plan([("g1", 1)], customer=CustomerAccount(id="alice"))
    assert p.supplier_orders[0].address is None and p.postage == 0


def test_groups_must_name_suppliers_in_the_order() -> None:
    with pytest.raises(InvalidInput):
        plan([("t1", 1)], groups=[GroupInput(supplier_id="s9")])


def test_checkout_groups_prefill_and_postage() -> None:
    groups = checkout_groups(
        [OrderLine(sku="p1", qty=3), OrderLine(sku="g1", qty=1)], CATALOG, ALICE, Policy()
    )
    assert [(g.supplier_id, g.needs_address, g.postage) for g in groups] == [
        ("s1", True, Decimal("0")),  # free from 99.00
        ("s2", False, Decimal("0")),
    ]
    assert groups[0].address == HOME and groups[1].address is None


# --- states ------------------------------------------------------------------------------


def test_item_and_sub_order_status() -> None:
    assert item_status(2, 0) is ItemStatus.PENDING_SHIPMENT
    assert item_status(2, 1) is ItemStatus.PARTIALLY_SHIPPED
    assert item_status(2, 2) is ItemStatus.SHIPPED
    assert item_status(2, 0, closed=True) is ItemStatus.CLOSED
    assert (
        sub_order_status([ItemStatus.SHIPPED, ItemStatus.PENDING_SHIPMENT])
        is ItemStatus.PARTIALLY_SHIPPED
    )
    assert sub_order_status([ItemStatus.CLOSED]) is ItemStatus.CLOSED


def test_parent_status_is_derived_from_children() -> None:
    S = SupplierOrderStatus
    assert order_status([S.PENDING_PAYMENT], paid=False) is OrderStatus.PENDING_PAYMENT
    assert order_status([S.COMPLETED, S.PENDING_RECEIPT], paid=True) is OrderStatus.PAID
    assert order_status([S.COMPLETED, S.CLOSED], paid=True) is OrderStatus.FINISHED
    assert order_status([S.CLOSED, S.CLOSED], paid=True) is OrderStatus.CLOSED


def test_illegal_transitions_raise() -> None:
    check_transition(SupplierOrderStatus.PENDING_SHIPMENT, SupplierOrderStatus.PENDING_RECEIPT)
    with pytest.raises(ValueError):
        check_transition(SupplierOrderStatus.PENDING_RECEIPT, SupplierOrderStatus.CLOSED)
    with pytest.raises(ValueError):
        check_transition(SupplierOrderStatus.COMPLETED, SupplierOrderStatus.PENDING_REVIEW)


# --- supplier rules ------------------------------------------------------------------------


def test_auto_confirm_counts_from_last_tracking_plus_extension_and_pause() -> None:
    p = plan([("t1", 2), ("p1", 1)]).supplier_orders[0]
    st_ = rules.initial_state(p)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    tea, pot = (i.item_id for i in p.items)
    rules.apply_ship(
        st_, ShipItems(carrier="c", tracking_no="A", items=[ShipLine(item_id=tea, qty=2)]), t0
    )
    policy = Policy()
    assert rules.auto_confirm_at(st_, policy, t0) == t0 + timedelta(days=10)
    t6 = t0 + timedelta(days=6)
    rules.apply_ship(
        st_, ShipItems(carrier="c", tracking_no="B", items=[ShipLine(item_id=pot, qty=1)]), t6
    )
    assert rules.auto_confirm_at(st_, policy, t6) == t6 + timedelta(days=10)
    st_.extended = True
    assert rules.auto_confirm_at(st_, policy, t6) == t6 + timedelta(days=15)
    rules.pause_confirm(st_, t6)
    assert rules.auto_confirm_at(st_, policy, t6) is None
    rules.resume_confirm(st_, t6 + timedelta(days=2))
    assert rules.auto_confirm_at(st_, policy, t6) == t6 + timedelta(days=17)


def test_remind_rate_limit_carries_retry_at() -> None:
    p = plan([("t1", 1)]).supplier_orders[0]
    st_ = rules.initial_state(p)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    rules.check_remind(st_, Policy(), now)
    st_.last_remind_at = now
    from domain.errors import RateLimited

    with pytest.raises(RateLimited) as err:
        rules.check_remind(st_, Policy(), now + timedelta(hours=23))
    assert err.value.details["retry_at"] == (now + timedelta(hours=24)).isoformat()
    rules.check_remind(st_, Policy(), now + timedelta(hours=24))


# --- policy, ids, errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1800", timedelta(minutes=30)),
        ("PT30M", timedelta(minutes=30)),
        ("P10D", timedelta(days=10)),
        ("P1DT2H", timedelta(days=1, hours=2)),
        ("2.5", timedelta(seconds=2.5)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "P", "PT", "ten minutes", "P1W"])
def test_parse_duration_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_snowflake_ids_are_unique_and_increasing() -> None:
    gen = Snowflake(node_id=7)
    ids = [gen.next() for _ in range(5000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_error_codes_round_trip() -> None:
    err = error_from_code("insufficient_stock", "nope")
    assert isinstance(err, InsufficientStock) and err.http_status == 409 and err.message == "nope"
    assert error_from_code("something_else", "x").code == "invalid_request"


@pytest.mark.parametrize("rating", [0, 6, -1, 10])
def test_a_review_rating_outside_1_to_5_is_refused(rating: int) -> None:
    with pytest.raises(ValidationError) as err:
        SubmitReview(rating=rating)
    (problem,) = err.value.errors()
    assert problem["loc"] == ("rating",)
    assert problem["type"] == ("greater_than_equal" if rating < 1 else "less_than_equal")
    # The activity's record of a review holds to the same range.
    with pytest.raises(ValidationError):
        ReviewLine(item_id="i1", rating=rating, text="")


@pytest.mark.parametrize("rating", [1, 5])
def test_a_review_rating_of_1_to_5_is_accepted(rating: int) -> None:
    review = SubmitReview(item_id="i1", rating=rating, text="fine")
    assert (review.item_id, review.rating, review.text) == ("i1", rating, "fine")
    assert ReviewLine(item_id="i1", rating=rating, text="fine").rating == rating


def test_a_closed_order_takes_the_common_reason_of_its_supplier_orders() -> None:
    both = [CloseReason.SUPPLIER_CANCELLED, CloseReason.SUPPLIER_CANCELLED]
    assert order_close_reason(both) is CloseReason.SUPPLIER_CANCELLED
    mixed = [CloseReason.SUPPLIER_CANCELLED, CloseReason.USER_CANCELLED]
    assert order_close_reason(mixed) is None
    assert order_close_reason([]) is None
