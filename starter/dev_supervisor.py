"""Keeps the dev stack's processes running: one that exits on its own is started again.

Restarts wait 1 s, then 2, 4, 8, 16, 30, 30 s ... (doubling, at most 30 s); a process that
ran for a minute was healthy, so its next restart waits 1 s again (`Backoff`). Each exit is
printed with its exit code (and the signal that killed it) and the end of its log (our JSON
lines rendered readably, starter.logs); each restart with the new pid, and, when a readiness
check is given, the moment it is ready again.

`Supervisor.tick()` does one round (pure but for the callbacks, with an injectable clock: the
unit tests drive it); `run(stop)` ticks until `stop` is set. Stopping everything stays with the
caller (starter.dev.Stack.stop). Restarts run on the event loop's thread, the one that started
the children: their PR_SET_PDEATHSIG is tied to the thread that forked them.
"""

import asyncio
import contextlib
import signal
import textwrap
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from starter.logs import render_lines

INITIAL_DELAY = 1.0
MAX_DELAY = 30.0
HEALTHY_AFTER = 60.0
READY_TIMEOUT = 60.0
TAIL_LINES = 20


class Backoff:
    """Delays before restarting one process: 1 s doubling to 30 s, reset after a healthy run."""

    def __init__(
        self,
        initial: float = INITIAL_DELAY,
        maximum: float = MAX_DELAY,
        healthy_after: float = HEALTHY_AFTER,
    ) -> None:
        self.initial = initial
        self.maximum = maximum
        self.healthy_after = healthy_after
        self._next = initial

    def delay(self, ran_for: float) -> float:
        """The wait before the next start of a process that ran `ran_for` seconds."""
        if ran_for >= self.healthy_after:
            self._next = self.initial
        delay = self._next
        self._next = min(delay * 2, self.maximum)
        return delay


class Supervised(Protocol):
    """What the supervisor needs of a process (starter.dev.Child has it)."""

    @property
    def name(self) -> str: ...

    @property
    def log_path(self) -> Path: ...

    @property
    def pid(self) -> int | None: ...

    def exited(self) -> int | None: ...

    def tail(self, lines: int = 25) -> str: ...


P = TypeVar("P", bound=Supervised)


def describe_exit(code: int) -> str:
    """`exit code 1`, or `exit code -9 (SIGKILL)` for a process a signal ended."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"exit code {code} ({signal.Signals(-code).name})"
    return f"exit code {code}"


@dataclass
class _Slot(Generic[P]):
    process: P
    started_at: float
    backoff: Backoff
    restart_at: float | None = None  # set while it is down, waiting for its restart
    restarts: int = 0
    ready_task: "asyncio.Task[None] | None" = field(default=None, repr=False)


class Supervisor(Generic[P]):
    def __init__(
        self,
        processes: Sequence[P],
        restart: Callable[[P], None],
        out: Callable[[str], None],
        *,
        ready: Callable[[P], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        backoff: Callable[[], Backoff] = Backoff,
        interval: float = 0.5,
        ready_timeout: float = READY_TIMEOUT,
        display: Callable[[Path], str] = str,
    ) -> None:
        self.restart = restart
        self.out = out
        self.ready = ready
        self.clock = clock
        self.interval = interval
        self.ready_timeout = ready_timeout
        self.display = display
        now = clock()
        self.slots = [
            # A process may say when it started (starter.dev.Child: time.monotonic()).
            _Slot(p, started_at=getattr(p, "started_at", None) or now, backoff=backoff())
            for p in processes
        ]

    def down(self) -> list[str]:
        """Names of the processes waiting for their restart."""
        return [s.process.name for s in self.slots if s.restart_at is not None]

    def tick(self) -> None:
        """Notice exits (schedule the restart, print why) and restart what is due."""
        now = self.clock()
        for slot in self.slots:
            if slot.restart_at is None:
                code = slot.process.exited()
                if code is not None:
                    self._exited(slot, code, now)
            elif now >= slot.restart_at:
                self._restart(slot, now)

    def _exited(self, slot: _Slot[P], code: int, now: float) -> None:
        p = slot.process
        ran = now - slot.started_at
        delay = slot.backoff.delay(ran)
        slot.restart_at = now + delay
        if slot.ready_task is not None:
            slot.ready_task.cancel()
            slot.ready_task = None
        tail = render_lines(p.tail(TAIL_LINES).strip("\n").splitlines())
        self.out(
            f"{p.name} exited unexpectedly ({describe_exit(code)}) after {ran:.1f}s; "
            f"restarting it in {delay:g}s. Last lines of {self.display(p.log_path)}:\n"
            + textwrap.indent(tail or "(empty)", "  | ", lambda _: True)
        )

    def _restart(self, slot: _Slot[P], now: float) -> None:
        p = slot.process
        try:
            self.restart(p)
        except Exception as err:
            delay = slot.backoff.delay(0.0)
            slot.restart_at = now + delay
            self.out(f"{p.name} could not be restarted ({err}); next try in {delay:g}s")
            return
        slot.restart_at = None
        slot.started_at = now
        slot.restarts += 1
        self.out(f"{p.name} restarted (pid {p.pid}, restart #{slot.restarts})")
        if self.ready is not None:
            slot.ready_task = asyncio.get_running_loop().create_task(self._confirm(slot, now))

    async def _confirm(self, slot: _Slot[P], restarted_at: float) -> None:
        """Print when a restarted process is ready again (or that it is not, after a while)."""
        assert self.ready is not None
        p = slot.process
        last: Exception | None = None
        while slot.process.exited() is None:
            try:
                await self.ready(p)
            except Exception as err:
                last = err
            else:
                took = self.clock() - restarted_at
                self.out(f"{p.name} is ready again (pid {p.pid}, {took:.1f}s after its restart)")
                return
            if self.clock() - restarted_at > self.ready_timeout:
                self.out(f"{p.name} not ready {self.ready_timeout:.0f}s after its restart: {last}")
                return
            await asyncio.sleep(0.25)

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until `stop` is set."""
        try:
            while not stop.is_set():
                self.tick()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.interval)
        finally:
            for slot in self.slots:
                if slot.ready_task is not None:
                    slot.ready_task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await slot.ready_task
