"""Supplier webhooks, the pure parts: signatures, event ids, the delivery policy, endpoint URLs."""

import hashlib
import hmac
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from domain.webhooks import (
    EVENT_TYPES,
    BadTarget,
    WebhookDelivery,
    delivery_workflow_id,
    event_id,
    parse_target,
    private_address,
    signature_header,
    verify,
)
from settings import Settings
from starter.webhooks import check_endpoint, delivery_policy

BODY = b'{"id":"evt_1","type":"supplier_order.paid"}'


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    header = signature_header(["s3cret-s3cret-s3cret"], 1700000000, BODY)
    t, v1 = header.split(",")
    assert t == "t=1700000000"
    expected = hmac.new(b"s3cret-s3cret-s3cret", b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert v1 == f"v1={expected}"
    assert verify(header, BODY, "s3cret-s3cret-s3cret", now=1700000010)


def test_verify_refuses_tampering_other_secrets_and_stale_timestamps() -> None:
    header = signature_header(["right-secret-0123"], 1700000000, BODY)
    assert not verify(header, BODY + b" ", "right-secret-0123", now=1700000000)
    assert not verify(header, BODY, "wrong-secret-0123", now=1700000000)
    assert not verify(header, BODY, "right-secret-0123", now=1700000000 + 301)
    assert not verify("t=1700000000", BODY, "right-secret-0123", now=1700000000)
    assert not verify("garbage", BODY, "right-secret-0123", now=1700000000)
    forged = header.replace("t=1700000000", "t=1700000001")  # the timestamp is signed too
    assert not verify(forged, BODY, "right-secret-0123", now=1700000001)


def test_two_secrets_during_a_rotation_both_verify() -> None:
    header = signature_header(["new-secret-0123456", "old-secret-0123456"], 1700000000, BODY)
    assert header.count("v1=") == 2
    for secret in ("new-secret-0123456", "old-secret-0123456"):
        assert verify(header, BODY, secret, now=1700000000)


def test_event_ids_are_stable_per_row_and_supplier() -> None:
    a = event_id("20261205000001", 42, "s1")
    assert a == event_id("20261205000001", 42, "s1")
    assert a.startswith("evt_") and len(a) == 36
    assert len({a, event_id("20261205000001", 42, "s2"), event_id("20261205000001", 43, "s1")}) == 3
    assert event_id("20261205000002", 42, "s1") != a  # a rebuilt database never reuses one


def test_the_required_event_types_are_mapped() -> None:
    assert {
        "supplier_order.paid",
        "supplier_order.cancelled",
        "supplier_order.reminded",
        "after_sale.requested",
    } <= set(EVENT_TYPES.values())
    assert EVENT_TYPES["payment_applied"] == "supplier_order.paid"
    assert EVENT_TYPES["ship_reminder"] == "supplier_order.reminded"


def test_the_delivery_policy_comes_from_the_settings() -> None:
    """The retry policy a delivery workflow starts with (and keeps): Temporal retries the
    attempt activity from ORDERS_WEBHOOK_BACKOFF, doubling up to _BACKOFF_MAX, for _RETRY_FOR."""
    defaults = Settings()
    policy = delivery_policy(defaults)
    assert (policy.backoff_s, policy.backoff_max_s) == (10, 3600)
    assert policy.backoff_s < 30  # the first retry within 30 s
    assert policy.retry_for_s == timedelta(days=3).total_seconds()
    assert policy.timeout_s == 10 and policy.allow_private is False
    # Zero backoffs (allowed by the settings) still make a valid policy.
    zero = defaults.model_copy(
        update={"webhook_backoff": timedelta(0), "webhook_backoff_max": timedelta(0)}
    )
    assert delivery_policy(zero).backoff_s > 0 and delivery_policy(zero).backoff_max_s > 0


def test_a_redelivery_is_a_fresh_delivery_of_the_same_event() -> None:
    assert delivery_workflow_id("20261205000001-s1") == "webhook-20261205000001-s1"
    first = WebhookDelivery(key="evt_1", event_id="evt_1", log_id=7)
    again = WebhookDelivery(key="evt_1/0a1b2c3d4e5f", event_id="evt_1", log_id=7)
    assert first.event_id == again.event_id and first.key != again.key


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.1.2.3",
        "10.0.0.5",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "100.64.0.1",
        "::1",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "::ffff:127.0.0.1",
        "::ffff:10.1.1.1",
        "224.0.0.1",
    ],
)
def test_private_addresses(address: str) -> None:
    assert private_address(address)


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "172.32.0.1"])
def test_public_addresses(address: str) -> None:
    assert not private_address(address)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "file:///etc/passwd",
        "example.com/hook",
        "http://",
        "https://user:pw@example.com/hook",
        "http://example.com:99999/",
        "gopher://example.com",
    ],
)
def test_only_http_urls_with_a_host(url: str) -> None:
    with pytest.raises(BadTarget):
        parse_target(url)


def test_parse_target_defaults_the_port() -> None:
    assert parse_target("https://Example.COM/h").port == 443
    assert parse_target("http://example.com/h").host == "example.com"
    assert parse_target("http://[2606:4700::1111]:8080/h").host == "2606:4700::1111"


@pytest.mark.parametrize(
    ("url", "resolved"),
    [
        ("http://127.0.0.1:9000/hook", ()),
        ("http://localhost/hook", ()),
        ("http://api.localhost/hook", ()),
        ("http://[::1]/hook", ()),
        ("http://10.1.2.3/hook", ()),
        ("http://169.254.169.254/latest/meta-data", ()),
        ("https://hooks.example.com/h", ("93.184.215.14", "192.168.0.7")),  # any private one
        ("https://internal.example.com/h", ("fc00::5",)),
    ],
)
async def test_private_targets_are_refused_unless_allowed(
    url: str, resolved: tuple[str, ...]
) -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return list(resolved)

    with pytest.raises(BadTarget, match=r"loopback|private"):
        await check_endpoint(url, allow_private=False, resolve=resolve)
    assert (await check_endpoint(url, allow_private=True, resolve=resolve)).host


async def test_public_targets_and_unresolvable_names() -> None:
    async def public(host: str, port: int) -> list[str]:
        return ["93.184.215.14"]

    async def nothing(host: str, port: int) -> list[str]:
        raise OSError("no such host")

    target = await check_endpoint("https://hooks.example.com/h", False, public)
    assert (target.host, target.port) == ("hooks.example.com", 443)
    with pytest.raises(BadTarget, match="cannot resolve"):
        await check_endpoint("https://nope.invalid/h", False, nothing)


def test_the_receiver_snippet_in_the_docs_verifies() -> None:
    """docs/webhooks.md shows suppliers how to verify; that code must really work."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "webhooks.md").read_text()
    snippet = doc.split("```python\n", 1)[1].split("```", 1)[0]
    scope: dict[str, Any] = {}
    exec(compile(snippet, "docs/webhooks.md", "exec"), scope)
    receiver_verify = scope["verify"]
    now = int(time.time())
    header = signature_header(["new-secret-0123456", "old-secret-0123456"], now, BODY)
    assert receiver_verify(header, BODY, "new-secret-0123456")
    assert receiver_verify(header, BODY, "old-secret-0123456")
    assert not receiver_verify(header, BODY + b"x", "new-secret-0123456")
    assert not receiver_verify(header, BODY, "other-secret-01234")
    stale = signature_header(["new-secret-0123456"], now - 600, BODY)
    assert not receiver_verify(stale, BODY, "new-secret-0123456")
