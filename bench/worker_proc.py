"""A benchmark worker in a process of its own, the way production runs workers.

    python -m bench.worker_proc --address HOST:PORT --task-queue Q --kind orders|empty
                                [--database-url URL] [--settings JSON]

Started by bench/lifecycle.py with `--worker-processes N`: the worker is then not sharing one
interpreter (and one GIL) with the load driver. It builds the same worker as the in-process
mode (`lifecycle_worker` / `empty_worker`), prints "ready" once polling, and stops gracefully on
SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from collections.abc import Sequence

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from bench.lifecycle import WorkerSettings, empty_worker, lifecycle_worker
from db.session import make_engine, make_session_factory
from shutdown import exit_now
from starter import event_loop
from starter.gc_pauses import freeze_startup_objects


async def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.worker_proc")
    p.add_argument("--address", required=True)
    p.add_argument("--task-queue", required=True)
    p.add_argument("--kind", choices=("orders", "empty"), required=True)
    p.add_argument("--database-url")
    p.add_argument("--db-pool-size", type=int)
    p.add_argument("--settings", default="{}", help="WorkerSettings fields as JSON")
    args = p.parse_args(argv)
    ws = WorkerSettings(**json.loads(args.settings))
    client = await Client.connect(args.address, data_converter=pydantic_data_converter)
    engine = None
    if args.kind == "orders":
        if not args.database_url:
            p.error("--kind orders needs --database-url")
        pool = {} if args.db_pool_size is None else {"pool_size": args.db_pool_size}
        engine = make_engine(args.database_url, **pool)
        worker, _ = lifecycle_worker(client, args.task_queue, make_session_factory(engine), ws)
    else:
        worker = empty_worker(client, args.task_queue, ws)
    freeze_startup_objects()  # as python -m worker does
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with worker:
        print("ready", flush=True)
        await stop.wait()
    if engine is not None:
        await engine.dispose()
    return 0


if __name__ == "__main__":
    exit_now(event_loop.run(main()))
