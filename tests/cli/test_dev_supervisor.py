"""The dev stack's supervisor (starter/dev_supervisor.py) on a fake clock and fake processes:
the restart schedule (1 s doubling to 30 s, back to 1 s after a healthy minute) and what it
prints. The real stack's restart of a SIGKILLed worker is in tests/cli/test_dev.py."""

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path

from starter.dev_supervisor import Backoff, Supervisor, describe_exit

LOG_LINE = json.dumps(
    {
        "time": "2026-12-03T10:00:00.250Z",
        "level": "ERROR",
        "logger": "worker",
        "message": "cannot reach Temporal",
        "service": "worker",
    }
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Proc:
    name: str
    pid: int | None = 100
    code: int | None = None
    log_path: Path = Path("var/logs/worker.log")

    def exited(self) -> int | None:
        return self.code

    def tail(self, lines: int = 25) -> str:
        return f"=== 2026-12-03 10:00:00 python -m worker\n{LOG_LINE}"


def test_backoff_doubles_to_30s_and_resets_after_a_healthy_minute() -> None:
    b = Backoff()
    assert [b.delay(0.5) for _ in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]
    assert b.delay(60.0) == 1  # ran a minute: healthy, start over
    assert b.delay(59.9) == 2
    assert b.delay(3600) == 1


def test_exit_codes_name_the_signal() -> None:
    assert describe_exit(1) == "exit code 1"
    assert describe_exit(-9) == "exit code -9 (SIGKILL)"
    assert describe_exit(-15) == "exit code -15 (SIGTERM)"


def test_a_crash_looping_process_is_restarted_on_the_backoff_schedule() -> None:
    clock = Clock()
    proc = Proc("worker")
    printed: list[str] = []
    restarted_at: list[float] = []

    def restart(p: Proc) -> None:
        restarted_at.append(clock.now)
        p.pid = (p.pid or 0) + 1
        p.code = None

    sup = Supervisor([proc], restart, printed.append, clock=clock)

    def crash_and_wait(ran_for: float, code: int = 1) -> float:
        """Let it run `ran_for` s, exit with `code`; tick every 0.25 s until restarted."""
        clock.now += ran_for
        proc.code = code
        sup.tick()
        died = clock.now
        before = len(restarted_at)
        while len(restarted_at) == before:
            clock.now += 0.25
            sup.tick()
            assert clock.now - died < 100, printed
        return restarted_at[-1] - died

    sup.tick()
    assert printed == [] and restarted_at == []  # running: nothing to do
    assert [crash_and_wait(0.5) for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert crash_and_wait(61.0) == 1  # a healthy minute resets the backoff
    assert crash_and_wait(10.0) == 2

    # What it printed for the first crash: the exit code, the wait, the log's end (readable).
    exit_line, restart_line = printed[0], printed[1]
    assert exit_line.startswith(
        "worker exited unexpectedly (exit code 1) after 0.5s; restarting it in 1s. "
        "Last lines of var/logs/worker.log:\n"
    )
    assert "  | === 2026-12-03 10:00:00 python -m worker" in exit_line
    assert "  | 10:00:00.250 ERROR   worker: cannot reach Temporal" in exit_line
    assert restart_line == "worker restarted (pid 101, restart #1)"
    assert len(printed) == 2 * 9 and sup.down() == []


def test_each_process_has_its_own_backoff_and_a_failed_restart_is_retried() -> None:
    clock = Clock()
    api, worker = Proc("api", pid=10), Proc("worker", pid=20)
    printed: list[str] = []
    broken = {"api"}

    def restart(p: Proc) -> None:
        if p.name in broken:
            raise RuntimeError("python not found")
        p.pid = (p.pid or 0) + 1
        p.code = None

    sup = Supervisor([api, worker], restart, printed.append, clock=clock)
    api.code, worker.code = -9, 0
    sup.tick()
    assert sup.down() == ["api", "worker"]
    assert "api exited unexpectedly (exit code -9 (SIGKILL))" in printed[0]
    assert "worker exited unexpectedly (exit code 0)" in printed[1]
    clock.now += 1.0
    sup.tick()
    assert printed[2] == "api could not be restarted (python not found); next try in 2s"
    assert printed[3] == "worker restarted (pid 21, restart #1)"
    assert sup.down() == ["api"]
    broken.clear()
    clock.now += 1.9
    sup.tick()
    assert sup.down() == ["api"]  # not before its 2 s
    clock.now += 0.1
    sup.tick()
    assert sup.down() == [] and printed[-1] == "api restarted (pid 11, restart #1)"


async def test_run_reports_ready_again_and_stops_restarting_once_told_to_stop() -> None:
    clock = Clock()
    proc = Proc("worker")
    printed: list[str] = []
    checks = 0

    async def ready(p: Proc) -> None:
        nonlocal checks
        checks += 1
        if checks < 3:
            raise RuntimeError("not polling yet")

    def restart(p: Proc) -> None:
        p.pid, p.code = 101, None

    said = asyncio.Event()

    def out(line: str) -> None:
        printed.append(line)
        said.set()

    sup = Supervisor([proc], restart, out, clock=clock, ready=ready, interval=0.01)
    stop = asyncio.Event()
    running = asyncio.create_task(sup.run(stop))

    async def until(text: str) -> None:
        async with asyncio.timeout(10):
            while not any(text in line for line in printed):
                said.clear()
                await said.wait()

    proc.code = -9
    await until("worker exited unexpectedly (exit code -9 (SIGKILL))")
    clock.now += 1  # its 1 s wait is over
    await until("worker is ready again (pid 101")
    assert checks == 3
    # Down again, then stopped before its restart is due: no restart happens.
    proc.code = 1
    await until("worker exited unexpectedly (exit code 1)")
    stop.set()
    await asyncio.wait_for(running, 5)
    clock.now += 100
    assert sum("restarted" in line for line in printed) == 1
