"""One process of the service (`python -m worker` or `python -m starter.api`) and its logs."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.lifecycle.repo import ROOT
from bench.server import _die_with_parent


@dataclass
class Service:
    """One `python -m worker` or `python -m starter.api`, restartable (same port, new log)."""

    name: str
    role: str  # "worker" | "api"
    env: dict[str, str]
    logs: Path
    port: int = 0
    proc: asyncio.subprocess.Process | None = None
    generation: int = 0
    started_at: float = 0.0
    log_paths: list[Path] = field(default_factory=list)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.generation += 1
        log_path = self.logs / f"{self.name}.{self.generation}.log"
        self.log_paths.append(log_path)
        module = "worker" if self.role == "worker" else "starter.api"
        with _open_log(log_path) as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                module,
                cwd=str(ROOT),
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        self.started_at = time.monotonic()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def check_alive(self) -> None:
        if not self.alive():
            code = self.proc.returncode if self.proc else None
            raise RuntimeError(f"{self.name} exited ({code}):\n{self.tail()}")

    async def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Send `sig`, wait for the exit; returns the exit code (-9 for SIGKILL)."""
        assert self.proc is not None
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
                raise RuntimeError(
                    f"{self.name} still running {timeout:.0f}s after {sig.name}"
                ) from None
        assert self.proc.returncode is not None
        return self.proc.returncode

    def tail(self, lines: int = 20) -> str:
        return tail_log(self.log_paths[-1], lines) if self.log_paths else ""

    def log_text(self) -> str:
        return "\n".join(read_log(p) for p in self.log_paths)


@contextlib.contextmanager
def _open_log(path: Path) -> Iterator[Any]:
    with path.open("wb") as f:
        yield f


def read_log(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def tail_log(path: Path, lines: int) -> str:
    return "\n".join(read_log(path).splitlines()[-lines:])
