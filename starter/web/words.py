"""Status codes → words (English msgids, translated by the catalogs), and times in words.

The codes themselves stay in `data-status` attributes for scripts and tests; people
read the words. One table per enum, so a new state without words fails a test.
"""

from datetime import UTC, datetime, timedelta

STATUS_WORDS: dict[str, str] = {
    # parent order
    "PAID": "Paid",
    "FINISHED": "Finished",
    # supplier order (the customer's client statuses: 待付款 / 待发货 / 待收货 / 待评价 ...)
    "PENDING_PAYMENT": "Pending payment",
    "PENDING_SHIPMENT": "Pending shipment",
    "PENDING_RECEIPT": "Pending receipt",
    "PENDING_REVIEW": "Pending review",
    "COMPLETED": "Completed",
    "CLOSED": "Closed",
    # items
    "PARTIALLY_SHIPPED": "Partially shipped",
    "SHIPPED": "Shipped",
    # after-sales
    "REQUESTED": "Requested",
    "APPROVED": "Approved",
    "RETURN_SHIPPED": "Return shipped",
    "REFUNDED": "Refunded",
    "REJECTED": "Rejected",
    "CANCELLED": "Cancelled",
}

CLOSE_REASON_WORDS: dict[str, str] = {
    "USER_CANCELLED": "Cancelled by you",
    "SUPPLIER_CANCELLED": "Cancelled by the supplier",
    "PAYMENT_TIMEOUT": "Not paid in time",
    "PAYMENT_FAILED": "Payment failed",
}

AFTER_SALE_TYPE_WORDS: dict[str, str] = {
    "refund_only": "Refund only",
    "return_refund": "Return and refund",
}

ORDER_TYPE_WORDS: dict[str, str] = {
    "self": "For myself",
    "friend_pay": "A friend pays",
    "activity": "Promotion or task",
}

PAYMENT_OUTCOME_WORDS: dict[str, str] = {
    "applied": "Paid the order",
    "failed": "Failed",
    "refunded_mismatch": "Wrong amount: sent back",
    "refunded_duplicate": "Paid twice: sent back",
    "refunded_late": "Arrived after the order closed: sent back",
    "unmatched": "Waiting for a manual refund",
}

REFUND_STATUS_WORDS: dict[str, str] = {"pending": "On its way back", "succeeded": "Refunded"}

KIND_WORDS: dict[str, str] = {"physical": "Physical goods", "virtual": "Virtual goods"}

# The customer's tabs on "My orders", in the order the apps show them.
CLIENT_TABS: tuple[str, ...] = (
    "PENDING_PAYMENT",
    "PENDING_SHIPMENT",
    "PENDING_RECEIPT",
    "PENDING_REVIEW",
    "COMPLETED",
    "CLOSED",
)


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def span(delta: timedelta) -> tuple[int, str]:
    """A duration as its largest whole unit: (9, "days"), (3, "hours"), (1, "minute")..."""
    seconds = int(abs(delta.total_seconds()))
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            n = seconds // size
            return n, unit if n == 1 else unit + "s"
    return seconds, "second" if seconds == 1 else "seconds"
