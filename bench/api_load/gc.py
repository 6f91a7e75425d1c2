"""The API processes' garbage-collector pauses over a run, from their own /metrics
(`python_gc_pause_seconds`, starter/gc_pauses.py)."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.scaleout.service import Service

Pauses = dict[str, dict[str, float]]  # generation -> {"count", "total_ms"}


async def gc_pauses(api: Service) -> Pauses:
    """Collections and the time they took, per generation, since the process started."""
    async with httpx.AsyncClient(base_url=api.url, timeout=10) as http:
        r = await http.get("/metrics")
        r.raise_for_status()
    out: Pauses = {}
    for family in text_string_to_metric_families(r.text):
        if family.name != "python_gc_pause_seconds":
            continue
        for sample in family.samples:
            gen = out.setdefault(sample.labels["generation"], {"count": 0.0, "total_ms": 0.0})
            if sample.name.endswith("_count"):
                gen["count"] = sample.value
            elif sample.name.endswith("_sum"):
                gen["total_ms"] = round(1000 * sample.value, 1)
    return out


def since(before: Pauses, after: Pauses) -> Pauses:
    """The collections between two readings of one process."""
    zero = {"count": 0.0, "total_ms": 0.0}
    return {g: {k: round(v[k] - before.get(g, zero)[k], 1) for k in zero} for g, v in after.items()}


def describe(pauses: dict[str, Pauses]) -> str:
    """`api-1: gen2 3 in 12 ms, gen1 ...` for the printed report."""
    parts = []
    for name, gens in pauses.items():
        each = ", ".join(
            f"gen{g} {int(v['count'])} in {v['total_ms']:.0f} ms" for g, v in sorted(gens.items())
        )
        parts.append(f"{name}: {each}")
    return "; ".join(parts)
