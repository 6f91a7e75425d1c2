"""Time windows of an order. Carried in the workflow input, so a running order
keeps the policy it started with even when the operator changes the defaults."""

import re
from datetime import timedelta
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

_ISO = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?"
    r"(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(value: str | int | float | timedelta) -> timedelta:
    """Seconds (`"1800"`, `1800`) or an ISO-8601 duration (`"PT30M"`, `"P10D"`)."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    text = value.strip()
    try:
        return timedelta(seconds=float(text))
    except ValueError:
        pass
    m = _ISO.match(text.upper())
    if not m or text.upper() in ("P", "PT"):
        raise ValueError(f"not a duration (seconds or ISO-8601 like PT30M): {value!r}")
    parts = {k: float(v) if v else 0.0 for k, v in m.groupdict().items()}
    return timedelta(days=parts["d"], hours=parts["h"], minutes=parts["m"], seconds=parts["s"])


class Policy(BaseModel):
    """Deadlines and limits (DESIGN.md §3 defaults)."""

    model_config = ConfigDict(frozen=True)

    payment_timeout: timedelta = timedelta(minutes=30)
    auto_confirm_after: timedelta = timedelta(days=10)
    auto_review_after: timedelta = timedelta(days=15)
    after_sales_window: timedelta = timedelta(days=15)
    remind_interval: timedelta = timedelta(hours=24)
    receipt_extension: timedelta = timedelta(days=5)
    # How long a supplier has to answer an after-sales request before it is
    # approved for them (the platform sides with the customer by default).
    after_sale_auto_approve_after: timedelta = timedelta(days=2)
    # An approved return: the customer ships it back within this or the request closes;
    # once shipped back, the supplier confirms the parcel within this or it counts as
    # received and the refund is paid (neither side can hold a request open forever).
    after_sale_return_within: timedelta = timedelta(days=7)
    after_sale_receive_within: timedelta = timedelta(days=10)
    # How long a closed order keeps listening for late payment events so they are
    # refunded by the order itself rather than by the fallback path.
    late_payment_grace: timedelta = timedelta(days=1)
    # A supplier order with many scans and commands starts a fresh run (state carried
    # over) before its history grows large; the server may suggest it sooner.
    continue_as_new_after_events: int = Field(default=5_000, ge=10)
    default_review_text: str = "The customer did not leave a review in time; rated 5 by default."
    default_review_rating: int = Field(default=5, ge=1, le=5)
    # Catalog zones a line's `source` may name (ORDERS_SOURCE_ZONES); the first is the
    # default of a line that names none.
    source_zones: tuple[str, ...] = Field(default=("normal",), min_length=1)
    # Postage per physical supplier group; free from the threshold on.
    postage_flat: Decimal = Decimal("8.00")
    free_postage_from: Decimal = Decimal("99.00")
