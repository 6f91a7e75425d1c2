"""Money arithmetic: Decimal with two places, and exact allocation of a total.

Every split of an amount (coins across supplier orders, a refund across the
units of an item) goes through `allocate` so the parts always add up to the
whole to the cent: nothing is lost or created by rounding.
"""

from collections.abc import Sequence
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def money(value: Decimal | int | str) -> Decimal:
    """Quantize to cents (half-up, the usual retail rounding)."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def allocate(total: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """Split `total` in proportion to `weights` by the largest-remainder method.

    The result has one part per weight, each a whole number of cents, and the
    parts sum exactly to `total`. Zero weights get zero unless every weight is
    zero, in which case the total goes to the first part.
    """
    total = money(total)
    if not weights:
        if total != ZERO:
            raise ValueError("cannot allocate a non-zero total over no parts")
        return []
    if any(w < 0 for w in weights):
        raise ValueError("weights must be non-negative")
    weight_sum = sum(weights, ZERO)
    cents = int(total / CENT)
    if weight_sum == 0:
        return [total] + [ZERO] * (len(weights) - 1)
    exact = [Decimal(cents) * w / weight_sum for w in weights]
    floors = [int(e.to_integral_value(rounding=ROUND_DOWN)) for e in exact]
    left = cents - sum(floors)
    # Hand the leftover cents to the largest remainders; ties go to the earlier part
    # so the result is deterministic.
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += 1
    return [Decimal(c) * CENT for c in floors]


def prorate(amount: Decimal, part: int, whole: int) -> Decimal:
    """The share of `amount` that belongs to `part` units out of `whole`.

    Rounded down except that the whole count gets exactly `amount`, so shares taken
    cumulatively (prorate(k2) - prorate(k1)) never exceed the amount in total.
    """
    if whole <= 0 or part < 0 or part > whole:
        raise ValueError("part must be within 0..whole and whole positive")
    if part == whole:
        return money(amount)
    return (amount * part / whole).quantize(CENT, rounding=ROUND_DOWN)
