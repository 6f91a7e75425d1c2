"""Pay request tokens of friend_pay orders (DESIGN.md §11 "Friend pays").

A token is `base64url(HMAC-SHA256(key, "pay-request:v1:" + order_no))`, the key being the
API's JWT secret: 256 bits nobody can guess or derive without the secret, and the API can
show the buyer the same token again (their order page) without storing it anywhere. The
read model keeps only its SHA-256 (`orders.pay_token_hash`, unique), which is all the
workflow input carries too, so neither Temporal's history nor the database holds a usable
token. A token is good while its order is an unpaid friend_pay order before its payment
deadline: paying, cancelling or closing the order uses it up.

Rotating ORDERS_JWT_SECRET changes the token the buyer is shown, not the stored hash: the
token shared before keeps working, and the buyer's page stops offering one (`shown_to_buyer`
checks the hash). That is the price of not storing tokens.
"""

import base64
import hashlib
import hmac
from datetime import UTC, datetime

from db.tables import Order
from domain.states import OrderStatus, OrderType

_LABEL = b"pay-request:v1:"


def pay_token(secret: str, order_no: str) -> str:
    digest = hmac.new(secret.encode(), _LABEL + order_no.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def is_open(order: Order, now: datetime | None = None) -> bool:
    """The pay request can be read and paid: an unpaid friend_pay order, in time."""
    now = now or datetime.now(UTC)
    deadline = order.pay_deadline
    if deadline.tzinfo is None:
        deadline = deadline.replace(tzinfo=UTC)
    return (
        order.order_type == OrderType.FRIEND_PAY
        and order.status == OrderStatus.PENDING_PAYMENT
        and order.pay_token_hash is not None
        and now < deadline
    )


def shown_to_buyer(secret: str, order: Order) -> str | None:
    """The token again, for the buyer's own view of an open pay request."""
    if not is_open(order):
        return None
    token = pay_token(secret, order.order_no)
    return token if hmac.compare_digest(token_hash(token), order.pay_token_hash or "") else None
