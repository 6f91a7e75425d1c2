"""Smoke test of `python -m bench.gc_pause`: both roles probed, the report's shape. No speed
thresholds (the figures come from the bench itself, bench/README.md)."""

import json

import pytest

from bench.gc_pause import main


def test_gc_pause_bench_probes_the_api_and_the_worker(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--repeat", "1"]) == 0
    out = capsys.readouterr().out
    result = json.loads(out.rstrip().splitlines()[-1])
    assert "a full gc.collect()" in out and "load average" in out
    assert result["bench"] == "gc_pause" and len(result["loadavg_start"]) == 3
    roles = {p["role"]: p for p in result["processes"]}
    assert set(roles) == {"api", "worker"}
    for p in roles.values():
        # Startup's objects are frozen: what a full collection still walks is what came after.
        assert 0 < p["frozen"] <= p["tracked"] and p["left"] < p["tracked"]
        for when in ("before", "after"):
            assert p[when]["min_ms"] <= p[when]["median_ms"]
