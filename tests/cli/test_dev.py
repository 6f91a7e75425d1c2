"""`orders dev` pre-flight and process handling, without starting the stack."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from settings import Settings
from starter.dev import (
    Child,
    DevError,
    InstanceLock,
    check_ports_free,
    make_plan,
    port_in_use,
    stop_children,
)


@pytest.fixture
def listening() -> Iterator[int]:
    """A port somebody else is listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_taken_port_gives_a_clear_message(listening: int) -> None:
    free = _free_port()
    assert port_in_use(listening)
    assert not port_in_use(free)
    with pytest.raises(DevError) as err:
        check_ports_free([(free, "Temporal UI"), (listening, "API, ORDERS_API_PORT")])
    message = str(err.value)
    assert f"port {listening} (API, ORDERS_API_PORT) is already in use on 127.0.0.1" in message
    assert f"port {free}" not in message
    assert "make dev" in message


def test_bound_but_not_listening_port_counts_as_taken() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        assert port_in_use(s.getsockname()[1])


def test_free_ports_pass() -> None:
    check_ports_free([(_free_port(), "API")])


def test_second_instance_is_refused_by_the_lock(tmp_path: Path) -> None:
    first, second = InstanceLock(tmp_path / "dev.lock"), InstanceLock(tmp_path / "dev.lock")
    first.acquire()
    try:
        with pytest.raises(DevError, match=rf"another `orders dev` is running \(pid {os.getpid()}"):
            second.acquire()
    finally:
        first.release()
    second.acquire()  # free again once released (or once the holder died: flock)
    second.release()


def test_plan_starts_a_local_temporal_with_the_search_attributes(tmp_path: Path) -> None:
    plan = make_plan(Settings(ORDERS_API_PORT=8123), var=tmp_path)
    assert plan.temporal_local
    assert [p for p, _ in plan.ports()] == [7233, 8233, 8123]
    argv = plan.temporal_argv()
    assert argv[0] == str(Path(sys.executable).parent / "temporal")
    assert argv[1:3] == ["server", "start-dev"]
    joined = " ".join(argv)
    assert f"--db-filename {tmp_path}/temporal.db" in joined
    assert "--port 7233" in joined and "--ui-port 8233" in joined
    for name in ("OrderNo", "CustomerId", "SupplierId", "OrderStatus"):
        assert f"--search-attribute {name}=Keyword" in joined
    assert plan.api_url == "http://127.0.0.1:8123"


def test_plan_with_a_remote_temporal_starts_no_server(tmp_path: Path) -> None:
    settings = Settings(TEMPORAL_ADDRESS="temporal.internal:7233", TEMPORAL_NAMESPACE="shop")
    plan = make_plan(settings, var=tmp_path)
    assert not plan.temporal_local
    assert [p for p, _ in plan.ports()] == [settings.api_port]


def test_stop_children_terminates_groups_and_kills_stubborn_ones(tmp_path: Path) -> None:
    polite = Child(
        "polite",
        # A child with a grandchild in its process group: both must be gone.
        [
            sys.executable,
            "-c",
            "import subprocess,time; subprocess.Popen(['sleep','60']); time.sleep(60)",
        ],
        tmp_path / "polite.log",
    )
    stubborn = Child(
        "stubborn",
        [
            sys.executable,
            "-c",
            "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ARMED'.lower(), flush=True); time.sleep(60)",
        ],
        tmp_path / "stubborn.log",
    )
    polite.start()
    stubborn.start()
    deadline = time.monotonic() + 10
    while "armed" not in stubborn.tail().splitlines() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert polite.proc is not None and stubborn.proc is not None
    groups = [polite.proc.pid, stubborn.proc.pid]

    started = time.monotonic()
    notes = stop_children([polite, stubborn], timeout=1.0)
    assert time.monotonic() - started < 8
    assert notes == ["stubborn did not stop within 1s: killed"]
    assert polite.proc.returncode == -signal.SIGTERM
    assert stubborn.proc.returncode == -signal.SIGKILL
    ps = ["ps", "-e", "-o", "pid=,pgid=,stat=,args="]
    listed = [
        line.split(None, 3)
        for line in subprocess.run(ps, capture_output=True, text=True).stdout.splitlines()
    ]
    # Zombies are dead already; an orphan's zombie lingers until PID 1 reaps it.
    left = [p for p in listed if int(p[1]) in groups and p[2][0] not in "ZX"]
    assert left == [], f"left behind: {left}"
