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
