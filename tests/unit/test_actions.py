"""Which commands a supplier order offers (domain/actions.py): the rules' answers, per state."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.actions import (
    Action,
    AfterSaleFacts,
    ItemFacts,
    SupplierOrderFacts,
    after_sale_limits,
    allowed_actions,
)
from domain.states import AfterSaleStatus, AfterSaleType, SupplierOrderStatus

S = SupplierOrderStatus
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SHIPPED = (ItemFacts("i1", "tea-1", 2, 2), ItemFacts("i2", "cup-1", 1, 1))
PARTLY = (ItemFacts("i1", "tea-1", 2, 1), ItemFacts("i2", "cup-1", 1, 1))
NOTHING = (ItemFacts("i1", "tea-1", 2, 0), ItemFacts("i2", "cup-1", 1, 0))


def facts(
    status: SupplierOrderStatus, items: tuple[ItemFacts, ...], **kw: Any
) -> SupplierOrderFacts:
    return SupplierOrderFacts(status=status, items=items, **kw)


def received(days_ago: float = 1, window_days: float = 15) -> dict[str, datetime]:
    at = NOW - timedelta(days=days_ago)
    return {"received_at": at, "after_sales_until": at + timedelta(days=window_days)}


def request(item_id: str, qty: int, status: AfterSaleStatus, n: int = 1) -> AfterSaleFacts:
    return AfterSaleFacts(f"as-{n}", item_id, qty, AfterSaleType.REFUND_ONLY, status)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (facts(S.PENDING_PAYMENT, NOTHING), []),
        (facts(S.PENDING_SHIPMENT, NOTHING), ["cancel", "remind", "buy-again"]),
        # partly shipped: receipt cannot be confirmed yet, after-sales only for i2
        (facts(S.PENDING_RECEIPT, PARTLY), ["extend-receipt", "after-sales", "buy-again"]),
        (
            facts(S.PENDING_RECEIPT, SHIPPED),
            ["confirm-receipt", "extend-receipt", "after-sales", "buy-again"],
        ),
        (
            facts(S.PENDING_RECEIPT, SHIPPED, extended=True),
            ["confirm-receipt", "after-sales", "buy-again"],
        ),
        (facts(S.PENDING_REVIEW, SHIPPED, **received()), ["review", "after-sales", "buy-again"]),
        (facts(S.COMPLETED, SHIPPED, **received()), ["after-sales", "buy-again"]),
        # the after-sales window is over
        (facts(S.COMPLETED, SHIPPED, **received(days_ago=16)), ["buy-again"]),
        (facts(S.CLOSED, NOTHING), ["buy-again"]),
    ],
)
def test_actions_follow_the_rules(case: SupplierOrderFacts, expected: list[str]) -> None:
    assert [a.value for a in allowed_actions(case, NOW)] == expected


def test_an_unshipped_line_closed_by_auto_confirm_does_not_block_anything() -> None:
    items = (ItemFacts("i1", "tea-1", 2, 2), ItemFacts("i2", "cup-1", 1, 0, closed=True))
    case = facts(S.PENDING_REVIEW, items, **received())
    assert after_sale_limits(case, NOW) == {"i1": 2}
    assert Action.REVIEW in allowed_actions(case, NOW)


def test_after_sales_counts_open_and_refunded_requests_but_not_rejected_ones() -> None:
    items = (ItemFacts("i1", "tea-1", 5, 5), ItemFacts("i2", "cup-1", 3, 3))
    case = facts(
        S.PENDING_REVIEW,
        items,
        after_sales=(
            request("i1", 2, AfterSaleStatus.REFUNDED, 1),
            request("i1", 3, AfterSaleStatus.REJECTED, 2),
            request("i2", 1, AfterSaleStatus.REQUESTED, 3),  # open: no second request on i2
        ),
        **received(),
    )
    assert after_sale_limits(case, NOW) == {"i1": 3}


def test_everything_claimed_leaves_no_after_sales_action() -> None:
    items = (ItemFacts("i1", "tea-1", 2, 2),)
    case = facts(
        S.COMPLETED,
        items,
        after_sales=(request("i1", 2, AfterSaleStatus.REFUNDED),),
        **received(),
    )
    assert after_sale_limits(case, NOW) == {}
    assert allowed_actions(case, NOW) == [Action.BUY_AGAIN]


def test_unknown_window_is_left_to_the_workflow() -> None:
    # Deadlines read from the database only (Temporal did not answer): no window known.
    case = facts(S.COMPLETED, SHIPPED, received_at=NOW - timedelta(days=400))
    assert Action.AFTER_SALES in allowed_actions(case, NOW)
