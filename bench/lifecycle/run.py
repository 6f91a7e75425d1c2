"""What one phase measured: completions, time, latencies, errors and the CPU it cost."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.lifecycle.stats import nearest_rank
from bench.server import Usage


@dataclass
class Run:
    """What one phase measured."""

    name: str
    done: int = 0
    elapsed_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    server: Usage = field(default_factory=Usage)
    client_cpu_s: float = 0.0  # this process: the driver, and the worker unless in processes
    worker_cpu_s: float = 0.0  # worker processes (--worker-processes N)
    machine_cpu_s: float = 0.0  # every process on the machine, ours included
    not_found_retries: int = 0  # phase B: ship updates sent before the child existed
    submit_retries: int = 0  # phase B: submits tried again after a lost answer
    db_polls: int = 0  # phase B: read-model queries of the paid-watch
    steps_s: dict[str, list[float]] = field(default_factory=dict)  # phase B: time per step

    @property
    def rate(self) -> float:
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def cores(self) -> tuple[float, float, float]:
        """Average cores used during the phase by the server, our Python processes, the rest."""
        wall = max(self.elapsed_s, 1e-9)
        py = self.client_cpu_s + self.worker_cpu_s
        other = max(self.machine_cpu_s - self.server.cpu_s - py, 0.0)
        return self.server.cpu_s / wall, py / wall, other / wall

    @staticmethod
    def merge(name: str, runs: Sequence[Run]) -> Run:
        """Several rounds as one: rate = all completed / all measured time."""
        out = Run(name)
        for r in runs:
            out.done += r.done
            out.elapsed_s += r.elapsed_s
            out.latencies_s += r.latencies_s
            out.errors += r.errors
            out.server = out.server + r.server
            out.client_cpu_s += r.client_cpu_s
            out.worker_cpu_s += r.worker_cpu_s
            out.machine_cpu_s += r.machine_cpu_s
            out.not_found_retries += r.not_found_retries
            out.submit_retries += r.submit_retries
            out.db_polls += r.db_polls
            for step, xs in r.steps_s.items():
                out.steps_s.setdefault(step, []).extend(xs)
        return out

    def pct(self, q: float) -> float:
        return nearest_rank(self.latencies_s, q)
