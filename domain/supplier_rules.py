"""Rules of one supplier order (DESIGN.md §3), as pure checks and state changes.

`check_*` raise a DomainError and change nothing (workflow update validators call
them); `apply_*` change the state after the activity has written the read model.
Deadlines are derived from the state, never stored, so they can't drift.
"""

from datetime import datetime, timedelta

from domain.errors import Conflict, InvalidInput, InvalidState, NotFound, RateLimited
from domain.messages import (
    AfterSaleRef,
    Deadlines,
    EditTracking,
    ItemState,
    PackageState,
    RequestAfterSale,
    ShipItems,
    SubmitReview,
    SupplierOrderState,
)
from domain.models import SupplierOrderPlan
from domain.policy import Policy
from domain.states import (
    AfterSaleStatus,
    CloseReason,
    ItemStatus,
    ProductKind,
    SupplierOrderStatus,
    check_transition,
    item_status,
)

S = SupplierOrderStatus
VIRTUAL_METHOD = "virtual"


def initial_state(plan: SupplierOrderPlan) -> SupplierOrderState:
    return SupplierOrderState(
        address=plan.address,
        items={i.item_id: ItemState(item_id=i.item_id, sku=i.sku, qty=i.qty) for i in plan.items},
    )


def set_status(
    state: SupplierOrderState, new: SupplierOrderStatus, reason: CloseReason | None = None
) -> None:
    check_transition(state.status, new)
    state.status = new
    state.close_reason = reason


def _item(state: SupplierOrderState, item_id: str) -> ItemState:
    item = state.items.get(item_id)
    if item is None:
        raise NotFound(f"item {item_id!r} is not part of this supplier order")
    return item


def unshipped(state: SupplierOrderState) -> dict[str, int]:
    return {
        i.item_id: i.qty - i.shipped_qty
        for i in state.items.values()
        if not i.closed and i.shipped_qty < i.qty
    }


# --- shipping ----------------------------------------------------------------------


def check_ship(state: SupplierOrderState, cmd: ShipItems, plan: SupplierOrderPlan) -> None:
    if state.status not in (S.PENDING_SHIPMENT, S.PENDING_RECEIPT):
        raise InvalidState(f"cannot ship a supplier order that is {state.status}")
    seen: set[str] = set()
    kinds = {i.item_id: i.kind for i in plan.items}
    for line in cmd.items:
        item = _item(state, line.item_id)
        if line.item_id in seen:
            raise InvalidInput(f"item {line.item_id!r} listed twice in one shipment")
        seen.add(line.item_id)
        if line.qty <= 0:
            raise InvalidInput(f"quantity for item {line.item_id!r} must be positive")
        left = item.qty - item.shipped_qty
        if line.qty > left:
            raise InvalidInput(
                f"item {line.item_id!r}: {line.qty} to ship but only {left} left unshipped"
            )
    virtual = {kinds[i] is ProductKind.VIRTUAL for i in seen}
    if len(virtual) > 1:
        raise InvalidInput("physical and virtual items cannot share a package")
    if (cmd.method == VIRTUAL_METHOD) != (virtual == {True}):
        raise InvalidInput(
            "virtual items are delivered with method 'virtual'; physical items need a carrier method"
        )
    if any(p.tracking_no == cmd.tracking_no for p in state.packages):
        raise Conflict(f"tracking number {cmd.tracking_no!r} is already used on this order")


def apply_ship(state: SupplierOrderState, cmd: ShipItems, now: datetime) -> None:
    for line in cmd.items:
        state.items[line.item_id].shipped_qty += line.qty
    virtual = cmd.method == VIRTUAL_METHOD
    state.packages.append(
        PackageState(
            tracking_no=cmd.tracking_no,
            carrier=cmd.carrier,
            method=cmd.method,
            items={line.item_id: line.qty for line in cmd.items},
            shipped_at=now,
            # A virtual delivery (a code, a download) arrives the moment it is sent.
            delivered=virtual,
            located_at=now if virtual else None,
        )
    )
    state.last_tracking_at = now
    if state.status is S.PENDING_SHIPMENT:
        set_status(state, S.PENDING_RECEIPT)


def check_edit_tracking(state: SupplierOrderState, cmd: EditTracking) -> None:
    if state.status is not S.PENDING_RECEIPT:
        raise InvalidState(
            f"tracking numbers can only be fixed before receipt (order is {state.status})"
        )
    if not any(p.tracking_no == cmd.tracking_no for p in state.packages):
        raise NotFound(f"no package with tracking number {cmd.tracking_no!r}")
    if cmd.new_tracking_no != cmd.tracking_no and any(
        p.tracking_no == cmd.new_tracking_no for p in state.packages
    ):
        raise Conflict(f"tracking number {cmd.new_tracking_no!r} is already used on this order")


def apply_edit_tracking(state: SupplierOrderState, cmd: EditTracking) -> None:
    for p in state.packages:
        if p.tracking_no == cmd.tracking_no:
            p.tracking_no = cmd.new_tracking_no
            if cmd.carrier:
                p.carrier = cmd.carrier


def check_change_receiver(state: SupplierOrderState, plan: SupplierOrderPlan) -> None:
    if not plan.needs_address:
        raise InvalidState("this supplier order has only virtual goods and no receiver")
    if state.status is not S.PENDING_SHIPMENT:
        raise InvalidState(
            f"the receiver can only change before the first shipment ({state.status})"
        )


# --- cancel and remind ----------------------------------------------------------------


def check_cancel(state: SupplierOrderState) -> None:
    if state.status is not S.PENDING_SHIPMENT:
        raise InvalidState(
            f"a supplier order can only be cancelled before anything ships (it is {state.status})"
        )


def apply_cancel(state: SupplierOrderState, reason: CloseReason) -> None:
    for item in state.items.values():
        item.closed = True
    set_status(state, S.CLOSED, reason)


def remind_allowed_at(state: SupplierOrderState, policy: Policy) -> datetime | None:
    if state.last_remind_at is None:
        return None
    return state.last_remind_at + policy.remind_interval


def check_remind(state: SupplierOrderState, policy: Policy, now: datetime) -> None:
    if state.status is not S.PENDING_SHIPMENT:
        raise InvalidState(f"reminders are for orders waiting to ship (it is {state.status})")
    allowed = remind_allowed_at(state, policy)
    if allowed is not None and now < allowed:
        raise RateLimited(
            f"the supplier was reminded already; next reminder allowed at {allowed.isoformat()}",
            retry_at=allowed.isoformat(),
        )


# --- receipt -----------------------------------------------------------------------------


def check_confirm(state: SupplierOrderState) -> None:
    if state.status is not S.PENDING_RECEIPT:
        raise InvalidState(f"receipt can only be confirmed while awaiting receipt ({state.status})")
    left = unshipped(state)
    if left:
        raise InvalidState(
            "some items have not shipped yet; receipt can be confirmed once everything has shipped",
            unshipped=left,
        )


def apply_receipt(state: SupplierOrderState, now: datetime) -> None:
    # Only auto-confirm can find lines still unshipped (confirm is refused then): what
    # has not shipped by receipt never will, so those lines close and are refunded.
    for item in state.items.values():
        if item.shipped_qty < item.qty:
            item.closed = True
    state.received_at = now
    state.paused_at = None
    set_status(state, S.PENDING_REVIEW)


def check_extend(state: SupplierOrderState) -> None:
    if state.status is not S.PENDING_RECEIPT:
        raise InvalidState(f"receipt can only be extended while awaiting receipt ({state.status})")
    if state.extended:
        raise InvalidState("receipt was already extended once for this order")


def open_after_sales(state: SupplierOrderState) -> list[AfterSaleRef]:
    return [a for a in state.after_sales.values() if a.status.open]


def auto_confirm_at(state: SupplierOrderState, policy: Policy, now: datetime) -> datetime | None:
    """10 days (policy) after the last tracking number, plus an extension, plus pauses.

    None while paused by an open after-sales request or when not awaiting receipt.
    """
    if state.status is not S.PENDING_RECEIPT or state.last_tracking_at is None:
        return None
    if state.paused_at is not None:
        return None
    at = (
        state.last_tracking_at + policy.auto_confirm_after + timedelta(seconds=state.paused_seconds)
    )
    if state.extended:
        at += policy.receipt_extension
    return at


def pause_confirm(state: SupplierOrderState, now: datetime) -> None:
    if state.status is S.PENDING_RECEIPT and state.paused_at is None:
        state.paused_at = now


def resume_confirm(state: SupplierOrderState, now: datetime) -> None:
    if state.paused_at is not None and not open_after_sales(state):
        state.paused_seconds += (now - state.paused_at).total_seconds()
        state.paused_at = None


# --- review -------------------------------------------------------------------------------


def check_review(state: SupplierOrderState, cmd: SubmitReview) -> list[str]:
    """The items this review covers (all unreviewed ones when no item is named)."""
    if state.status is not S.PENDING_REVIEW:
        raise InvalidState(f"reviews are written after receipt ({state.status})")
    if cmd.item_id is not None:
        item = _item(state, cmd.item_id)
        if item.reviewed:
            raise Conflict(f"item {cmd.item_id!r} was already reviewed")
        return [cmd.item_id]
    return [i.item_id for i in state.items.values() if not i.reviewed]


def apply_reviews(state: SupplierOrderState, item_ids: list[str]) -> bool:
    """Mark items reviewed; True when that completes the order."""
    for item_id in item_ids:
        state.items[item_id].reviewed = True
    if all(i.reviewed for i in state.items.values()):
        set_status(state, S.COMPLETED)
        return True
    return False


def auto_review_at(state: SupplierOrderState, policy: Policy) -> datetime | None:
    if state.status is not S.PENDING_REVIEW or state.received_at is None:
        return None
    return state.received_at + policy.auto_review_after


# --- after-sales ----------------------------------------------------------------------------


def after_sales_until(state: SupplierOrderState, policy: Policy) -> datetime | None:
    if state.received_at is None:
        return None
    return state.received_at + policy.after_sales_window


def check_after_sale(
    state: SupplierOrderState, cmd: RequestAfterSale, policy: Policy, now: datetime
) -> None:
    if state.status not in (S.PENDING_RECEIPT, S.PENDING_REVIEW, S.COMPLETED):
        raise InvalidState(f"after-sales is for shipped orders (this one is {state.status})")
    item = _item(state, cmd.item_id)
    if item_status(item.qty, item.shipped_qty, item.closed) is not ItemStatus.SHIPPED:
        raise InvalidState(f"item {cmd.item_id!r} has not fully shipped yet")
    until = after_sales_until(state, policy)
    if until is not None and now > until:
        raise InvalidState(f"the after-sales window closed at {until.isoformat()}")
    if any(a.item_id == cmd.item_id for a in open_after_sales(state)):
        raise Conflict(f"item {cmd.item_id!r} already has an open after-sales request")
    if cmd.qty <= 0:
        raise InvalidInput("after-sales quantity must be positive")
    left = item.qty - item.after_sale_qty
    if cmd.qty > left:
        raise InvalidInput(
            f"item {cmd.item_id!r}: {cmd.qty} requested but only {left} of {item.qty} can still be"
            " claimed"
        )


def apply_after_sale_opened(
    state: SupplierOrderState, cmd: RequestAfterSale, after_sale_id: str, now: datetime
) -> AfterSaleRef:
    ref = AfterSaleRef(
        id=after_sale_id,
        item_id=cmd.item_id,
        qty=cmd.qty,
        type=cmd.type,
        status=AfterSaleStatus.REQUESTED,
    )
    state.after_sales[after_sale_id] = ref
    state.items[cmd.item_id].after_sale_qty += cmd.qty
    pause_confirm(state, now)
    return ref


def apply_after_sale_ended(
    state: SupplierOrderState, after_sale_id: str, status: AfterSaleStatus, now: datetime
) -> None:
    ref = state.after_sales.get(after_sale_id)
    if ref is None or not ref.status.open:
        return  # duplicate or unknown notice: already applied
    ref.status = status
    if status is not AfterSaleStatus.REFUNDED:
        # A rejected or withdrawn request gives its quantity back to claim later.
        state.items[ref.item_id].after_sale_qty -= ref.qty
    resume_confirm(state, now)


# --- views ----------------------------------------------------------------------------------


def deadlines(state: SupplierOrderState, policy: Policy, now: datetime) -> Deadlines:
    return Deadlines(
        auto_confirm_at=auto_confirm_at(state, policy, now),
        auto_review_at=auto_review_at(state, policy),
        after_sales_until=after_sales_until(state, policy),
        remind_allowed_at=remind_allowed_at(state, policy),
    )


def finished(state: SupplierOrderState, policy: Policy, now: datetime) -> bool:
    """The workflow may end: terminal, no open after-sales, after-sales window over."""
    if state.status is S.CLOSED:
        return not open_after_sales(state)
    if state.status is not S.COMPLETED or open_after_sales(state):
        return False
    until = after_sales_until(state, policy)
    return until is None or now >= until
