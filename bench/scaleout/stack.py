"""Everything one run started, handed to the phases and the checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from temporalio.client import Client

from bench.lifecycle.shop import Shop
from bench.lifecycle.watch import ReadModelWatch
from bench.scaleout.apis import Tally
from bench.scaleout.service import Service
from bench.server import DevServer


@dataclass
class Stack:
    """Everything one run started, for the phases and the checks."""

    server: DevServer
    client: Client
    shop: Shop
    task_queue: str
    workers: list[Service]
    apis: list[Service]
    tally: Tally
    watch: ReadModelWatch
    pg_pids: Callable[[], list[int]]
