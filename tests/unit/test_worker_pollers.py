"""ORDERS_WORKER_WORKFLOW_POLLERS / ORDERS_WORKER_AUTOSCALE_POLLERS reach the worker's pollers."""

import pytest
from pydantic import ValidationError
from temporalio.worker import PollerBehaviorAutoscaling, PollerBehaviorSimpleMaximum

from settings import Settings
from worker import poller_behavior

VARS = ("ORDERS_WORKER_WORKFLOW_POLLERS", "ORDERS_WORKER_AUTOSCALE_POLLERS")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARS:
        monkeypatch.delenv(name, raising=False)


def behavior() -> PollerBehaviorSimpleMaximum | PollerBehaviorAutoscaling:
    s = Settings(_env_file=None)
    got = poller_behavior(s.worker_workflow_pollers, s.worker_autoscale_pollers)
    assert isinstance(got, PollerBehaviorSimpleMaximum | PollerBehaviorAutoscaling)
    return got


def test_default_is_the_sdks_five_fixed_pollers() -> None:
    assert behavior() == PollerBehaviorSimpleMaximum(5)


def test_a_fixed_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERS_WORKER_WORKFLOW_POLLERS", "12")
    assert behavior() == PollerBehaviorSimpleMaximum(12)


def test_autoscaling_up_to_the_count_or_100(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERS_WORKER_AUTOSCALE_POLLERS", "true")
    assert behavior() == PollerBehaviorAutoscaling(maximum=100)
    monkeypatch.setenv("ORDERS_WORKER_WORKFLOW_POLLERS", "20")
    assert behavior() == PollerBehaviorAutoscaling(maximum=20)


@pytest.mark.parametrize("bad", ["1", "0", "-3", "many"])
def test_bad_counts_are_refused_at_start(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    # One workflow-task poller cannot serve the sticky and the normal queue at once: the SDK
    # refuses it, so the setting does too, before the worker connects.
    monkeypatch.setenv("ORDERS_WORKER_WORKFLOW_POLLERS", bad)
    with pytest.raises(ValidationError, match="ORDERS_WORKER_WORKFLOW_POLLERS"):
        Settings(_env_file=None)
