"""Order type and line source (DESIGN.md §11): pure rules of submit and settings."""

import hashlib
from decimal import Decimal

import pytest
from pydantic import ValidationError

from domain.errors import InvalidInput, UnknownSource, error_from_code
from domain.models import Address, CatalogProduct, CustomerAccount, OrderLine, SubmitOrder
from domain.policy import Policy
from domain.split import build_plan
from domain.states import OrderType, ProductKind
from settings import Settings

HOME = Address(name="A", phone="123", region="R", address="X")
CATALOG = {
    "t1": CatalogProduct(
        sku="t1",
        name="Tea",
        supplier_id="s1",
        product_type="tea",
        kind=ProductKind.PHYSICAL,
        price=Decimal("10.00"),
        on_hand=10,
    ),
    "c1": CatalogProduct(
        sku="c1",
        name="Cup",
        supplier_id="s2",
        product_type="cups",
        kind=ProductKind.PHYSICAL,
        price=Decimal("5.00"),
        on_hand=10,
    ),
}
ALICE = CustomerAccount(id="alice", coins=Decimal("500.00"), default_address=HOME)
ZONES = Policy(source_zones=("normal", "zone-a"))
TOKEN_HASH = hashlib.sha256(b"token").hexdigest()


def plan(lines: list[OrderLine], policy: Policy = ZONES, **kwargs: object) -> object:
    request = SubmitOrder.model_validate({"customer_id": "alice", "lines": lines, **kwargs})
    return build_plan("o1", request, CATALOG, ALICE, policy)


def test_sources_default_to_the_first_zone_and_are_kept_per_item() -> None:
    p = build_plan(
        "o1",
        SubmitOrder(
            customer_id="alice",
            lines=[OrderLine(sku="t1", qty=1), OrderLine(sku="c1", qty=2, source="zone-a")],
        ),
        CATALOG,
        ALICE,
        ZONES,
    )
    assert p.order_type is OrderType.SELF
    assert {i.sku: i.source for so in p.supplier_orders for i in so.items} == {
        "t1": "normal",
        "c1": "zone-a",
    }


def test_unknown_zone_is_refused_with_its_own_code() -> None:
    with pytest.raises(UnknownSource) as err:
        plan([OrderLine(sku="t1", qty=1, source="zone-z")])
    assert err.value.http_status == 422 and "zone-z" in err.value.message
    assert "normal, zone-a" in err.value.message
    assert isinstance(error_from_code("unknown_source", "x"), UnknownSource)
    # Only the zones of the policy the order runs with count.
    with pytest.raises(UnknownSource):
        plan([OrderLine(sku="t1", qty=1, source="zone-a")], policy=Policy())


def test_same_sku_from_two_zones_is_refused_not_merged() -> None:
    with pytest.raises(InvalidInput, match="different sources"):
        plan([OrderLine(sku="t1", qty=1), OrderLine(sku="t1", qty=1, source="zone-a")])
    same = build_plan(
        "o1",
        SubmitOrder(
            customer_id="alice",
            lines=[OrderLine(sku="t1", qty=1, source="zone-a")] * 2,
        ),
        CATALOG,
        ALICE,
        ZONES,
    )
    (item,) = same.supplier_orders[0].items
    assert (item.qty, item.source) == (2, "zone-a")


def test_unknown_order_type_is_a_validation_error() -> None:
    with pytest.raises(ValidationError):
        SubmitOrder.model_validate(
            {"customer_id": "alice", "lines": [{"sku": "t1", "qty": 1}], "order_type": "gift"}
        )


def test_friend_pay_needs_its_token_and_something_to_pay() -> None:
    line = [OrderLine(sku="t1", qty=1)]
    with pytest.raises(InvalidInput, match="pay request token"):
        plan(line, order_type="friend_pay")
    with pytest.raises(InvalidInput, match="no pay request"):
        plan(line, order_type="activity", pay_token_hash=TOKEN_HASH)
    with pytest.raises(InvalidInput, match="nothing for a friend to pay"):
        plan(line, order_type="friend_pay", pay_token_hash=TOKEN_HASH, coins="18.00")
    p = build_plan(
        "o1",
        SubmitOrder(
            customer_id="alice",
            lines=line,
            coins=Decimal("3.00"),
            order_type=OrderType.FRIEND_PAY,
            pay_token_hash=TOKEN_HASH,
        ),
        CATALOG,
        ALICE,
        ZONES,
    )
    assert p.order_type is OrderType.FRIEND_PAY and p.payable == Decimal("15.00")


def test_source_zones_setting_is_a_comma_list() -> None:
    s = Settings.model_validate({"ORDERS_SOURCE_ZONES": " normal, zone-a,,zone-a "})
    assert s.source_zones == ("normal", "zone-a")
    assert s.policy().source_zones == ("normal", "zone-a")
    assert Settings().source_zones == ("normal",)
    with pytest.raises(ValidationError):
        Settings.model_validate({"ORDERS_SOURCE_ZONES": " , "})


def test_plans_from_before_types_and_zones_still_load() -> None:
    """Plans in running histories and in the read model have neither field."""
    old = {
        "order_no": "o1",
        "customer_id": "alice",
        "supplier_orders": [],
        "subtotal": "0",
        "postage": "0",
        "coins": "0",
        "payable": "0",
    }
    from domain.models import ItemPlan, OrderPlan

    assert OrderPlan.model_validate(old).order_type is OrderType.SELF
    item = ItemPlan.model_validate(
        {
            "item_id": "o1-1",
            "sku": "t1",
            "name": "Tea",
            "product_type": "tea",
            "kind": "physical",
            "price": "1",
            "qty": 1,
            "line_total": "1",
            "coin_share": "0",
        }
    )
    assert item.source == "normal"
    assert "source_zones" not in Policy.model_validate({}).model_dump(exclude_defaults=True)
