"""The dev stack's child processes: started in their own process group with their output in a
log file, and stopped group by group (SIGTERM, then SIGKILL after a timeout). Supervision (what
happens when one exits on its own) is starter/dev_supervisor.py; the stack is starter/dev.py.
"""

import contextlib
import ctypes
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

STOP_TIMEOUT = 10.0


class DevError(Exception):
    """A reason not to start (or to stop), worded for the person at the terminal."""


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM when the `orders dev` process dies (Linux)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Child:
    name: str
    argv: Sequence[str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    started_at: float | None = None  # time.monotonic() of the last start
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self, env: dict[str, str] | None = None) -> None:
        self._log = self.log_path.open("ab")
        self._log.write(f"\n=== {time.strftime('%F %T')} {shlex.join(self.argv)}\n".encode())
        self._log.flush()
        try:
            self.started_at = time.monotonic()
            self.proc = subprocess.Popen(
                list(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # own process group: our Ctrl-C is ours to pass on
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        except FileNotFoundError:
            self.close_log()
            raise DevError(f"{self.argv[0]} not found: run `make venv`") from None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def exited(self) -> int | None:
        return self.proc.poll() if self.proc else None

    def signal_group(self, sig: int) -> None:
        """Signal the child's whole process group (also stragglers whose leader is gone)."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)

    def tail(self, lines: int = 25) -> str:
        try:
            with self.log_path.open("rb") as f:
                # The end is enough: the log grows across restarts (and access lines).
                f.seek(max(0, f.seek(0, os.SEEK_END) - 256 * 1024))
                text = f.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.rstrip().splitlines()[-lines:])

    def close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def _group_alive(pgid: int) -> bool:
    """Does process group `pgid` still have a live (non-zombie) member?

    Zombies count as members for kill(2), and an orphaned grandchild may wait a while for
    a PID 1 that reaps it, so /proc is read where there is one.
    """
    proc = Path("/proc")
    if proc.is_dir():
        for stat in proc.glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rpartition(")")[2].split()
            except OSError:
                continue
            # After "pid (comm)": state, ppid, pgrp, ...
            if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
                return True
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_children(children: Sequence[Child], timeout: float = STOP_TIMEOUT) -> list[str]:
    """SIGTERM every child's process group, wait, SIGKILL what is left. Returns notes."""
    notes: list[str] = []
    running = [c for c in children if c.proc is not None]
    for c in running:
        c.signal_group(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for c in running:
        assert c.proc is not None
        with contextlib.suppress(subprocess.TimeoutExpired):
            c.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    # Wait for the rest of each group too (grandchildren), then force.
    while time.monotonic() < deadline and any(_group_alive(c.proc.pid) for c in running if c.proc):
        time.sleep(0.1)
    for c in running:
        assert c.proc is not None
        if _group_alive(c.proc.pid) or c.proc.poll() is None:
            notes.append(f"{c.name} did not stop within {timeout:.0f}s: killed")
            c.signal_group(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                c.proc.wait(timeout=5)
        c.close_log()
    return notes
