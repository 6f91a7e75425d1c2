"""Signed supplier webhooks (DESIGN.md §11): the pure parts, no I/O.

- Which `order_log` actions become which event types (`EVENT_TYPES`).
- A stable event id per (order_log row, supplier), so every attempt carries the same id.
- The signature: `X-Orders-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw
  body>">`, one `v1` per valid secret (two while a secret is being rotated), and the check a
  receiver runs (`verify`).
- The contracts of the delivery workflow (its input, its signal, the attempt activity's).
- Which endpoint URLs are acceptable: http(s) only, and no loopback, private, link-local or
  otherwise non-public address unless the platform allows private targets.
"""

import hashlib
import hmac
import ipaddress
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from pydantic import Field

from domain.models import Model

SIGNATURE_HEADER = "X-Orders-Signature"
EVENT_ID_HEADER = "X-Orders-Event-Id"
EVENT_TYPE_HEADER = "X-Orders-Event-Type"
TOLERANCE_SECONDS = 300  # how old a signed timestamp a receiver should accept

# order_log action → event type. `payment_applied` is order-level: it becomes one
# `supplier_order.paid` per paid supplier order (each for its own supplier).
EVENT_TYPES: dict[str, str] = {
    "payment_applied": "supplier_order.paid",
    "supplier_order_cancelled": "supplier_order.cancelled",
    "ship_reminder": "supplier_order.reminded",
    "receipt_confirmed": "supplier_order.received",
    "receipt_auto_confirmed": "supplier_order.received",
    "after_sale_requested": "after_sale.requested",
    "after_sale_return_shipped": "after_sale.return_shipped",
    "after_sale_cancelled": "after_sale.cancelled",
}
ORDER_LEVEL_ACTIONS = frozenset({"payment_applied"})

_EVENT_NAMESPACE = uuid.UUID("6f1d3a52-8c0e-4d6b-9a51-2e7c4b0f9d13")


def event_id(order_no: str, log_id: int, supplier_id: str) -> str:
    """The one id of the event an order_log row makes for a supplier (36 characters).

    The order number is part of it, so a database rebuilt from scratch (log ids starting
    again at 1) never reuses an id a supplier has seen.
    """
    return "evt_" + uuid.uuid5(_EVENT_NAMESPACE, f"{order_no}:{log_id}:{supplier_id}").hex


# --- signatures ---------------------------------------------------------------------------


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of `<timestamp>.<body>` with the secret."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secrets: Iterable[str], timestamp: int, body: bytes) -> str:
    """`t=<timestamp>,v1=<sig>[,v1=<sig with the previous secret>]`."""
    parts = [f"t={timestamp}"]
    parts += [f"v1={signature(secret, timestamp, body)}" for secret in secrets]
    return ",".join(parts)


def verify(
    header: str,
    body: bytes,
    secret: str,
    tolerance: int = TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """What a receiver does: some `v1` matches the raw body, and `t` is recent."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, c) for c in candidates)


# --- endpoint URLs --------------------------------------------------------------------------


class BadTarget(ValueError):
    """An endpoint URL the platform will not call."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # without brackets for IPv6
    port: int


def parse_target(url: str) -> Target:
    """Scheme, host and port of an endpoint URL; http(s) with a host only, no credentials."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise BadTarget(f"not a valid URL: {err}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise BadTarget("only http and https URLs are allowed")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise BadTarget("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise BadTarget("the URL must not carry credentials; the signature authenticates")
    if any(c.isspace() for c in url):
        raise BadTarget("the URL must not contain spaces")
    return Target(scheme, host, port or (443 if scheme == "https" else 80))


def ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def private_name(host: str) -> bool:
    """Names that are always local, whatever a resolver says."""
    return host in ("localhost", "localhost.localdomain") or host.endswith(".localhost")


def private_address(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Loopback (127/8, ::1), private (10/8, 172.16/12, 192.168/16, fc00::/7), link-local
    (169.254/16, fe80::/10), shared, reserved, multicast, unspecified: anything but a
    public unicast address. An IPv4-mapped IPv6 address counts as its IPv4 one."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            return private_address(mapped)
    return not ip.is_global or ip.is_multicast


# --- the delivery workflow's contracts (workflows/webhook_delivery.py) ----------------------


class WebhookPolicy(Model):
    """How a supplier order's events are retried: fixed when its delivery workflow starts
    (and carried over continue-as-new), so a running workflow keeps the values it began with.
    Seconds, from ORDERS_WEBHOOK_BACKOFF / _BACKOFF_MAX / _RETRY_FOR / _TIMEOUT."""

    backoff_s: float = Field(gt=0)
    backoff_max_s: float = Field(gt=0)
    retry_for_s: float = Field(gt=0)
    timeout_s: float = Field(gt=0)
    allow_private: bool = False
    idle_s: float = Field(default=600, gt=0)  # the workflow ends after this long with nothing to do


class WebhookDelivery(Model):
    """One delivery of one event (a signal). `key` de-duplicates: the event id for the
    dispatcher's signals (however often it sends them), a fresh key for each redelivery."""

    key: str = Field(min_length=1, max_length=100)
    event_id: str = Field(min_length=1, max_length=40)
    log_id: int


class WebhookDeliveryInput(Model):
    supplier_order_id: str
    supplier_id: str
    order_no: str
    policy: WebhookPolicy
    # Carried over continue-as-new:
    queue: list[WebhookDelivery] = Field(default_factory=list)
    seen: list[str] = Field(default_factory=list)


class DeliverWebhookParams(Model):
    event_id: str
    timeout_s: float
    allow_private: bool = False


def delivery_workflow_id(supplier_order_id: str) -> str:
    return f"webhook-{supplier_order_id}"
