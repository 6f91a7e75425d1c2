"""Which commands one supplier order offers its customer right now: one pure function.

Fed from read-model facts (what `GET /orders/{no}` shows of a supplier order) and
answered by the very rules the supplier-order workflow's update validators run
(`domain.supplier_rules.check_*`), applied to the workflow state as far as the read model
knows it. The customer's order page draws its buttons from `allowed_actions`, and the
API's order view lists the same names in `actions`, so neither can offer a command the
rules refuse, nor hide one they accept.

Two refinements of "the check passes":

* `remind` is offered whenever the order waits to ship. The once-per-interval limit is a
  throttle, not a state rule: the workflow answers a reminder sent too soon with
  `rate_limited` (HTTP 429) and the time the next one is accepted, which the view also
  shows ahead (`deadlines.remind_allowed_at`).
* `buy-again` is an order-level command (`POST /orders/{no}/buy-again`) offered on every
  record that is no longer waiting for payment; an unpaid order is paid, not re-bought.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import partial

from domain import supplier_rules as rules
from domain.errors import DomainError, RateLimited
from domain.messages import (
    AfterSaleRef,
    ItemState,
    RequestAfterSale,
    SubmitReview,
    SupplierOrderState,
)
from domain.policy import Policy
from domain.states import AfterSaleStatus, AfterSaleType, SupplierOrderStatus


class Action(StrEnum):
    """A customer command on one supplier order; the value is its name in the API view."""

    CANCEL = "cancel"
    REMIND = "remind"
    CONFIRM_RECEIPT = "confirm-receipt"
    EXTEND_RECEIPT = "extend-receipt"
    REVIEW = "review"
    AFTER_SALES = "after-sales"
    BUY_AGAIN = "buy-again"


@dataclass(frozen=True)
class ItemFacts:
    item_id: str
    sku: str
    qty: int
    shipped_qty: int
    closed: bool = False


@dataclass(frozen=True)
class AfterSaleFacts:
    id: str
    item_id: str
    qty: int
    type: AfterSaleType
    status: AfterSaleStatus


@dataclass(frozen=True)
class SupplierOrderFacts:
    """What the read model knows of one supplier order, as far as the rules need it.

    `after_sales_until` is the end of the after-sales window when known (the workflow
    computes it with the order's own policy); unknown, the window is not checked here
    and the workflow still refuses a late request.
    """

    status: SupplierOrderStatus
    items: tuple[ItemFacts, ...]
    after_sales: tuple[AfterSaleFacts, ...] = ()
    extended: bool = False
    received_at: datetime | None = None
    after_sales_until: datetime | None = None


def _claimed(facts: SupplierOrderFacts, item_id: str) -> int:
    """Quantity under requests that are open or ended in a refund (the workflow's count)."""
    return sum(
        a.qty
        for a in facts.after_sales
        if a.item_id == item_id and (a.status.open or a.status is AfterSaleStatus.REFUNDED)
    )


def state_of(facts: SupplierOrderFacts) -> tuple[SupplierOrderState, Policy]:
    """The workflow's state and window as far as the read model knows them."""
    window_known = facts.received_at is not None and facts.after_sales_until is not None
    policy = Policy()
    if facts.received_at is not None and facts.after_sales_until is not None:
        policy = Policy(after_sales_window=facts.after_sales_until - facts.received_at)
    state = SupplierOrderState(
        status=facts.status,
        items={
            i.item_id: ItemState(
                item_id=i.item_id,
                sku=i.sku,
                qty=i.qty,
                shipped_qty=i.shipped_qty,
                closed=i.closed,
                after_sale_qty=_claimed(facts, i.item_id),
            )
            for i in facts.items
        },
        extended=facts.extended,
        received_at=facts.received_at if window_known else None,
        after_sales={
            a.id: AfterSaleRef(id=a.id, item_id=a.item_id, qty=a.qty, type=a.type, status=a.status)
            for a in facts.after_sales
        },
    )
    return state, policy


def _passes(check: Callable[[], object]) -> bool:
    try:
        check()
    except RateLimited:
        return True  # a throttle: offered, the refusal names when to come back
    except DomainError:
        return False
    return True


def after_sale_limits(facts: SupplierOrderFacts, now: datetime) -> dict[str, int]:
    """Item id → the most that may be claimed in a new after-sales request now.

    Only items the rules accept a request for (fully shipped, no open request, inside
    the window, something left to claim).
    """
    state, policy = state_of(facts)
    limits: dict[str, int] = {}
    for item in state.items.values():
        probe = RequestAfterSale(item_id=item.item_id, qty=1, type=AfterSaleType.REFUND_ONLY)
        if _passes(partial(rules.check_after_sale, state, probe, policy, now)):
            limits[item.item_id] = item.qty - item.after_sale_qty
    return limits


def allowed_actions(facts: SupplierOrderFacts, now: datetime) -> list[Action]:
    """The commands the customer may send now, in the order the page shows them."""
    state, _ = state_of(facts)
    checks: dict[Action, Callable[[], object]] = {
        Action.CANCEL: lambda: rules.check_cancel(state),
        Action.REMIND: lambda: rules.check_remind(state, Policy(), now),
        Action.CONFIRM_RECEIPT: lambda: rules.check_confirm(state),
        Action.EXTEND_RECEIPT: lambda: rules.check_extend(state),
        Action.REVIEW: lambda: rules.check_review(state, SubmitReview(rating=5)),
    }
    allowed = [action for action, check in checks.items() if _passes(check)]
    if after_sale_limits(facts, now):
        allowed.append(Action.AFTER_SALES)
    if facts.status is not SupplierOrderStatus.PENDING_PAYMENT:
        allowed.append(Action.BUY_AGAIN)
    return allowed
