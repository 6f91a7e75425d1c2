"""starter.gc_pauses: startup objects frozen out of full collections; pauses exported."""

import gc
import threading
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from starter.api.gc_metrics import GcPauses
from starter.gc_pauses import freeze_startup_objects


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # the rest of the test session collects as before


def test_freezing_takes_the_objects_alive_out_of_the_collectors_sight(unfrozen: None) -> None:
    kept = [[i] for i in range(1000)]  # tracked containers, alive through the freeze
    garbage: list[object] = []
    garbage.append(garbage)  # a cycle nobody refers to: collected first, not frozen
    del garbage
    frozen = freeze_startup_objects()
    assert frozen == gc.get_freeze_count() > len(kept)
    tracked = gc.get_objects()
    assert not any(o is kept[0] for o in tracked)  # frozen objects are not walked
    made_later: list[object] = []
    assert any(o is made_later for o in gc.get_objects())  # new ones are, as usual


Key = tuple[str, str, str]  # (sample suffix, generation, le)


def _pauses(registry: CollectorRegistry) -> dict[Key, float]:
    out = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            if s.name.startswith("python_gc_pause_seconds"):
                suffix = s.name.removeprefix("python_gc_pause_seconds")
                out[(suffix, s.labels["generation"], s.labels.get("le", ""))] = s.value
    return out


def test_each_collection_is_timed_by_generation() -> None:
    registry = CollectorRegistry()
    registry.register(GcPauses())
    before = _pauses(registry)
    gc.collect(2)
    gc.collect(0)
    after = _pauses(registry)
    assert after[("_count", "2", "")] == before[("_count", "2", "")] + 1
    assert after[("_count", "0", "")] >= before[("_count", "0", "")] + 1
    assert after[("_sum", "2", "")] > before[("_sum", "2", "")]
    # Cumulative buckets: never decreasing, the last one holds every collection.
    buckets = [v for (suffix, gen, _), v in after.items() if suffix == "_bucket" and gen == "2"]
    assert buckets == sorted(buckets) and len(buckets) == 10
    assert after[("_bucket", "2", "+Inf")] == after[("_count", "2", "")]
    another = CollectorRegistry()
    another.register(GcPauses())  # a second app in the process: the same figures, one hook
    assert _pauses(another)[("_count", "2", "")] == after[("_count", "2", "")]


def test_a_collection_during_a_scrape_does_not_hang_it() -> None:
    # Every allocation starts a collection while the scrape runs: its callback must not wait
    # for anything the scrape holds (a lock did: the API hung on /metrics).
    def scrape() -> None:
        registry = CollectorRegistry()
        registry.register(GcPauses())
        before = gc.get_threshold()
        gc.set_threshold(1, 1, 1)
        try:
            for _ in range(20):
                generate_latest(registry)
        finally:
            gc.set_threshold(*before)
        done.set()

    done = threading.Event()
    threading.Thread(target=scrape, daemon=True).start()
    assert done.wait(30), "the scrape hung on a collection that ran inside it"
