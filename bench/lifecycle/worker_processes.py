"""Where the phase's worker runs: in this process, or in bench.worker_proc processes of its own."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from temporalio.worker import Worker

from bench.lifecycle.repo import ROOT
from bench.lifecycle.worker_settings import WorkerSettings
from bench.server import _die_with_parent


@dataclass(frozen=True)
class Topology:
    """Where the worker runs: in this process (0) or in N worker processes of its own."""

    processes: int
    address: str
    ws: WorkerSettings
    database_url: str = ""
    db_pool_size: int | None = None


@contextlib.asynccontextmanager
async def worker_processes(
    topo: Topology, kind: str, task_queue: str, timeout_s: float = 60.0
) -> AsyncIterator[list[int]]:
    """Start `topo.processes` bench.worker_proc processes, yield their pids once all poll."""
    cmd = [
        sys.executable,
        "-m",
        "bench.worker_proc",
        "--address",
        topo.address,
        "--task-queue",
        task_queue,
        "--kind",
        kind,
        "--settings",
        json.dumps(dataclasses.asdict(topo.ws)),
    ]
    if kind == "orders":
        cmd += ["--database-url", topo.database_url]
        if topo.db_pool_size is not None:
            cmd += ["--db-pool-size", str(topo.db_pool_size)]
    root = str(ROOT)
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    procs: list[asyncio.subprocess.Process] = []
    try:
        for _ in range(topo.processes):
            procs.append(
                await asyncio.create_subprocess_exec(
                    *cmd,
                    cwd=root,
                    env=env,
                    stdout=asyncio.subprocess.PIPE,
                    preexec_fn=_die_with_parent,
                )
            )
        for proc in procs:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), timeout_s)
            if line.strip() != b"ready":
                raise RuntimeError(
                    f"worker process {proc.pid} did not start (exit {proc.returncode})"
                )
        yield [p.pid for p in procs]
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.terminate()
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()


@contextlib.asynccontextmanager
async def workers(
    topo: Topology, kind: str, task_queue: str, build: Callable[[], Worker]
) -> AsyncIterator[list[int]]:
    """The phase's worker: built in this process, or started as worker processes."""
    if topo.processes <= 0:
        async with build():
            yield []
        return
    async with worker_processes(topo, kind, task_queue) as pids:
        yield pids
