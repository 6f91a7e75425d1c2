"""Smoke test of the lifecycle benchmark: tiny numbers, its own dev server, no speed thresholds.

Runs `bench.lifecycle.main` end to end (server start and stop, empty phase, lifecycle phase
with the real worker and a SQLite read model, history breakdown, report) and checks that it
completes, every order finished, and the figures it prints are sane.
"""

import json

import pytest

from bench.lifecycle import main


async def test_bench_runs_end_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    rc = await main(["--empty", "5", "--orders", "2", "--concurrency", "2", "--settle", "0"])
    out = capsys.readouterr().out
    assert rc == 0, out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["errors"] == 0
    assert result["empty_wf_per_s"] > 0
    assert result["lifecycles_per_s"] > 0
    assert result["ratio_pct"] > 0
    assert result["lifecycle_p50_ms"] > 0
    hist = result["history"]
    assert hist["empty"]["workflow_tasks"] == 1
    assert hist["order"]["children"] == 2
    assert hist["lifecycle_total"]["updates"] == 7  # placement + 2 x (ship, confirm, review)
    assert hist["lifecycle_total"]["signals"] == 1  # payment
    # Temporal Cloud billable actions and state transitions of one lifecycle, from its histories.
    assert hist["lifecycle_total"]["local_activities"] == 8  # core_local_activity markers only
    cost = result["cost_per_lifecycle"]
    assert set(cost["by_kind"]) == {
        "starts",
        "signals",
        "updates",
        "timers",
        "activities",
        "local_activities",
        "upserts",
    }
    assert cost["by_kind"]["starts"] == 3  # the order and its two supplier orders
    assert cost["by_kind"]["updates"] == 7
    assert cost["by_kind"]["signals"] == 1
    assert cost["by_kind"]["local_activities"] == 8
    assert cost["billable_actions"] == sum(cost["by_kind"].values())
    assert cost["children"] == 2
    assert cost["state_transitions"] > cost["workflow_tasks"] > 0
    for name in ("order", "supplier_order_1", "supplier_order_2", "lifecycle_total"):
        assert hist[name]["billable_actions"] > 0 and hist[name]["state_transitions"] > 0
    assert "Billable actions (Temporal Cloud)" in out
