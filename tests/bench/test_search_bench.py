"""Smoke test of the search and export benchmark: 2,000 supplier orders, no speed thresholds.

Runs `bench.search.main` end to end on a fresh database of the session's PostgreSQL
(migrate, COPY seeding, every filter's first and deep pages through the API's own search, the
export in a process of its own) and checks that the figures it prints are complete and sane.
"""

import json

import pytest

from bench.search import FILTERS, KINDS, main


async def test_search_bench_runs_end_to_end(
    pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = await main(["--rows", "2000", "--samples", "2", "--depth", "3", "--pg-url", pg_url])
    out = capsys.readouterr().out
    assert rc == 0, out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["rows"] == 2000 and 1000 < result["orders"] < 2000
    assert set(result["pages_ms"]) == set(FILTERS)
    for name, timing in result["pages_ms"].items():
        for kind in KINDS:
            assert timing[kind]["n"] == 2 and 0 < timing[kind]["p50"] <= timing[kind]["max"], name
    # Without a filter there are ~70 pages of 20: the deep page really is 3 pages down.
    assert result["pages_ms"]["none"]["deep_pages_min"] == 3
    export = result["export"]
    assert export["rows"] == 2000 and export["rows_per_s"] > 0 and export["chunks"] > 1
    assert export["peak_rss_after_mb"] >= export["peak_rss_before_mb"] > 0
    assert len(result["loadavg_start"]) == 3
    assert "load average" in out and "rows/s" in out
