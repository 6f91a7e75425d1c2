"""Configuration from the environment reaches the policy workflows start with and the ETA.

`get_settings()` is cached for the process (`lru_cache`), so each test builds `Settings()`
itself after setting the environment, and never calls `get_settings()` (that would pin the
test's environment for every later test). `_env_file=None` keeps a developer's `.env` out.
"""

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsError
from temporalio.contrib.pydantic import pydantic_data_converter

from db.tables import Package
from domain.geo import DEFAULT_SPEEDS_KMH, eta, haversine_km
from domain.messages import OrderInput
from domain.models import Address, OrderLine, SubmitOrder
from domain.policy import Policy
from settings import Settings
from starter.api import views

VARS = ("ORDERS_SHIPPING_SPEEDS", "ORDERS_REMIND_INTERVAL", "ORDERS_PAYMENT_TIMEOUT")
AT = datetime(2025, 5, 1, 8, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARS:
        monkeypatch.delenv(name, raising=False)


def settings() -> Settings:
    return Settings(_env_file=None)


def test_defaults_without_the_variables() -> None:
    s = settings()
    assert s.payment_timeout == timedelta(minutes=30)
    assert s.remind_interval == timedelta(hours=24)
    assert s.shipping_speeds_kmh == DEFAULT_SPEEDS_KMH
    assert s.policy() == Policy()


@pytest.mark.parametrize(
    ("payment", "remind", "payment_td", "remind_td"),
    [
        ("90", "3600", timedelta(seconds=90), timedelta(hours=1)),
        ("PT1H30M", "P1DT6H", timedelta(hours=1, minutes=30), timedelta(days=1, hours=6)),
        ("2.5", "pt45m", timedelta(seconds=2.5), timedelta(minutes=45)),
    ],
)
def test_windows_in_seconds_or_iso_8601_reach_the_workflow_policy(
    monkeypatch: pytest.MonkeyPatch,
    payment: str,
    remind: str,
    payment_td: timedelta,
    remind_td: timedelta,
) -> None:
    monkeypatch.setenv("ORDERS_PAYMENT_TIMEOUT", payment)
    monkeypatch.setenv("ORDERS_REMIND_INTERVAL", remind)
    s = settings()
    assert (s.payment_timeout, s.remind_interval) == (payment_td, remind_td)

    policy = s.policy()  # what the API puts in every new OrderInput
    assert (policy.payment_timeout, policy.remind_interval) == (payment_td, remind_td)
    # Everything else keeps its default.
    assert policy == Policy(payment_timeout=payment_td, remind_interval=remind_td)

    # OrderWorkflow receives it through the pydantic data converter unchanged (and hands
    # its own copy to each supplier order: workflows/order.py).
    inp = OrderInput(
        order_no="1",
        request=SubmitOrder(customer_id="alice", lines=[OrderLine(sku="tea", qty=1)]),
        policy=policy,
    )
    converter = pydantic_data_converter.payload_converter
    (received,) = converter.from_payloads(converter.to_payloads([inp]), [OrderInput])
    assert isinstance(received, OrderInput) and received.policy == policy
    assert received.policy.payment_timeout == payment_td


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("ORDERS_PAYMENT_TIMEOUT", "soon", ValidationError),
        ("ORDERS_REMIND_INTERVAL", "P1W", ValidationError),
        ("ORDERS_SHIPPING_SPEEDS", '{"drone": "fast"}', ValidationError),
        ("ORDERS_SHIPPING_SPEEDS", '{"drone": 0}', ValidationError),
        ("ORDERS_SHIPPING_SPEEDS", '{"drone": -5}', ValidationError),
        # pydantic-settings decodes JSON of a dict field itself, before validation.
        ("ORDERS_SHIPPING_SPEEDS", "{not json", SettingsError),
    ],
)
def test_bad_values_are_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, error: type[Exception]
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(error) as err:
        settings()
    # The message names what is wrong: the variable (validation) or the field (JSON).
    assert (name if error is ValidationError else "shipping_speeds_kmh") in str(err.value)


def test_shipping_speeds_from_json_drive_the_eta(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERS_SHIPPING_SPEEDS", '{"express": 120, "drone": 50.5, "standard": 10}')
    speeds = settings().shipping_speeds_kmh
    # The JSON adds and overrides methods; the defaults it does not name stay.
    assert speeds == {**DEFAULT_SPEEDS_KMH, "express": 120.0, "drone": 50.5, "standard": 10.0}

    assert eta(120.0, "express", AT, speeds) == AT + timedelta(hours=1)  # default: 2 h
    assert eta(101.0, "drone", AT, speeds) == AT + timedelta(hours=2)
    assert eta(20.0, "economy", AT, speeds) == AT + timedelta(hours=1)  # default kept
    # A method without a speed of its own travels at the configured standard speed.
    assert eta(10.0, "cargo-bike", AT, speeds) == AT + timedelta(hours=1)

    # The API's package view computes distance and ETA with the speeds it is given
    # (the routers pass settings.shipping_speeds_kmh).
    home = Address(name="A", phone="123", region="R", address="X", lat=31.2304, lon=121.4737)
    pkg = Package(
        carrier="sf",
        tracking_no="P1",
        method="drone",
        status="in_transit",
        last_lat=31.0,
        last_lon=121.0,
        last_at=AT,
        shipped_at=AT - timedelta(hours=3),
    )
    out = views.package(pkg, [], home, speeds)
    km = haversine_km(31.0, 121.0, home.lat, home.lon)  # type: ignore[arg-type]
    assert out.distance_km == round(km, 3)
    assert out.eta == AT + timedelta(hours=round(km, 3) / 50.5)
    assert out.eta != views.package(pkg, [], home, DEFAULT_SPEEDS_KMH).eta


def test_a_speed_map_without_standard_falls_back_to_the_built_in_standard(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORDERS_SHIPPING_SPEEDS", '{"drone": 80}')
    speeds = settings().shipping_speeds_kmh
    assert eta(40.0, "bike", AT, speeds) == AT + timedelta(
        hours=40.0 / DEFAULT_SPEEDS_KMH["standard"]
    )
