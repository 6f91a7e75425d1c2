"""Smoke test of `python -m bench.api_load` with tiny counts: the real worker and API processes on
a dev server of their own and a fresh PostgreSQL database, the three phases, the report's shape.
No speed thresholds (figures come from the bench itself, bench/README.md)."""

import json

import pytest

from bench.api_load import TARGET_STEPS, main


async def test_api_load_bench_runs_its_three_phases(
    pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = await main(
        [
            "--empty",
            "10",
            "--orders",
            "4",
            "--concurrency",
            "2",
            "--warmup",
            "1",
            "--overload-seconds",
            "2",
            # A small bound, so that (c) exercises the admission path (shed or not).
            "--api-env",
            "ORDERS_API_MAX_INFLIGHT=2",
            "--pg-url",
            pg_url,
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0, out
    lines = out.rstrip().splitlines()
    result = json.loads(lines[-1])  # the JSON line comes last
    assert "load average" in out and "issue 13, targets 1 and 2" in out

    assert result["empty"]["workflows"] == 10 and result["empty"]["per_s"] > 0
    b, c = result["b"], result["c"]
    assert b["lifecycles"] == 4 and b["errors"] == 0 and b["finished"] == 4
    assert set(TARGET_STEPS) <= set(b["steps_p50_p99_ms"])
    assert b["polls"] > 0  # clients waited by reading their order through the API
    assert result["ratio_pct"] > 0
    assert c["arrivals"] >= 1 and c["lifecycles"] == c["arrivals"] == c["finished"]
    assert c["rate_offered"] > b["lifecycles_per_s"]
    for phase in (b, c):
        requests = phase["requests"]
        assert requests["accepted"]["command"] > 0 and requests["accepted"]["read"] > 0
        assert requests["timed_out"] >= 0 and requests["shed"] >= 0
        assert set(phase["cores"]) >= {"server", "workers", "apis", "postgres", "driver", "other"}
        assert len(phase["loadavg_start"]) == 3
    assert result["api_env"] == {"ORDERS_API_MAX_INFLIGHT": "2"}
    assert {t["target"] for t in result["targets"]} >= {
        "lifecycles/s >= 10 % of empty",
        "submit p99 <= 300 ms at (b)",
        "no request timed out at (c)",
    }
    assert result["errors"] == [] and set(result["exits"].values()) == {0}
    # The API's garbage-collector pauses over the run, from its /metrics, per generation.
    [gc] = result["api_gc"].values()
    assert set(gc) == {"0", "1", "2"} and gc["0"]["count"] > 0
    assert all(g["count"] >= 0 and g["total_ms"] >= 0 for g in gc.values())
    assert "API garbage collection from (a) to the end: api-1: gen0" in out
