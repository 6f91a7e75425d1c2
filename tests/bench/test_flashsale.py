"""The flash-sale bench, reduced to a handful of orders so that the script cannot rot: the real
worker and API processes on a dev server of their own and a fresh PostgreSQL database, every
order left to expire. Shape of the output only, no speed thresholds."""

import pytest

from bench.flashsale import parse_args, print_report, run

ORDERS, WARMUP = 10, 2


async def test_flash_sale_every_order_expires_and_the_report_has_its_shape(
    pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse_args(
        [
            "--orders",
            str(ORDERS),
            "--warmup",
            str(WARMUP),
            "--clients",
            "4",
            "--payment-timeout",
            "5",
            "--cache",
            "4",  # smaller than the orders: evicted workflows close by replay
            "--no-progress",
            "--pg-url",
            pg_url,
        ]
    )
    report = await run(args)
    result = print_report(report, args)
    assert not report.failed, report.failed

    out = capsys.readouterr().out
    assert "auto-cancel lateness p50 / p99 / max" in out and "RSS worker" in out
    assert out.rstrip().splitlines()[-1].startswith("{")  # the JSON line comes last

    assert result["orders"] == ORDERS and result["submit"]["errors"] == 0
    assert result["submit"]["rate_per_s"] > 0
    late = result["lateness"]
    assert late["orders"] == ORDERS + WARMUP  # every order's close found in its history
    assert set(late["total_s"]) == {"p50", "p99", "max"}
    assert {"timer_s", "queue_s", "worker_s"} <= set(late)
    assert result["drain_s"] is not None
    mem = result["memory"]
    assert mem["cache_max"] == 4 and mem["all_open_workflows"] == ORDERS + WARMUP
    assert set(mem["peak_mb"]) == {"worker", "api", "server"}
    assert all(v > 0 for v in mem["peak_mb"].values())
    assert set(result["windows"]) == {"submit", "drain"}
    assert set(result["targets"]) == {
        "lateness_p99_le_5s",
        "worker_rss_le_500mb",
        "api_rss_le_250mb",
    }
    assert set(result["exits"].values()) == {0}
