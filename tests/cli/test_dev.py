"""`orders dev`: pre-flight and process handling, and one smoke run of the whole stack."""

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from domain.states import ProductKind
from settings import Settings, get_settings
from starter.dev import (
    Child,
    DevError,
    InstanceLock,
    check_ports_free,
    child_env,
    main,
    make_plan,
    port_in_use,
    stop_children,
)
from starter.security import Role, mint_token
from starter.seed import CUSTOMERS, PRODUCTS

T = TypeVar("T")


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


def test_ui_port_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert Settings().temporal_ui_port == 8233
    monkeypatch.setenv("TEMPORAL_UI_PORT", "18233")
    assert Settings().temporal_ui_port == 18233
    get_settings.cache_clear()
    for bad in ("ui", "0", "70000", "-1"):
        monkeypatch.setenv("TEMPORAL_UI_PORT", bad)
        # `orders dev` names the variable and its value and starts nothing.
        assert main() == 1
        err = capsys.readouterr().err
        assert f"TEMPORAL_UI_PORT={bad!r}" in err and "Traceback" not in err, err
        get_settings.cache_clear()
    monkeypatch.setenv("TEMPORAL_UI_PORT", "18233")
    plan = make_plan(Settings(TEMPORAL_ADDRESS="127.0.0.1:17233"), var=tmp_path)
    assert [p for p, _ in plan.ports()] == [17233, 18233, 8000]
    assert "--port 17233" in " ".join(plan.temporal_argv())
    assert "--ui-port 18233" in " ".join(plan.temporal_argv())
    assert plan.ui_url == "http://127.0.0.1:18233"


def test_children_get_dev_login_unless_the_caller_chose(tmp_path: Path) -> None:
    plan = make_plan(Settings(TEMPORAL_UI_PORT=18233), var=tmp_path)
    env = child_env(plan, {"PATH": "/bin"})
    assert env["ORDERS_DEV_LOGIN"] == "1" and env["PATH"] == "/bin"
    assert env["ORDERS_WORKER_METRICS_PORT"] == "9464"
    assert env["ORDERS_WEBHOOK_ALLOW_PRIVATE"] == "1"  # receivers on localhost in dev
    assert env["ORDERS_TEMPORAL_UI_URL"] == "http://127.0.0.1:18233"
    assert child_env(plan, {"ORDERS_DEV_LOGIN": "0"})["ORDERS_DEV_LOGIN"] == "0"
    remote = make_plan(Settings(TEMPORAL_ADDRESS="temporal.internal:7233"), var=tmp_path)
    assert "ORDERS_TEMPORAL_UI_URL" not in child_env(remote, {})


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


# --- the whole stack, as `make dev` runs it -----------------------------------------------------

ORDERS = Path(sys.executable).parent / "orders"  # the venv's entry point, like `make dev`
JWT_SECRET = "dev-stack-test-jwt-secret-0123456789abcdef"


def _until(what: str, probe: Callable[[], T | None], timeout: float, why: Callable[[], str]) -> T:
    """Poll `probe` until it returns something truthy; fail after `timeout` with `why()`."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s\n{why()}")
        time.sleep(0.1)


def _live_members(pgid: int) -> list[str]:
    """Live (not zombie) processes of process group `pgid`, from /proc."""
    live = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # exited meanwhile
        comm = text[text.find("(") + 1 : text.rfind(")")]
        state, _ppid, pgrp = text.rpartition(")")[2].split()[:3]
        if int(pgrp) == pgid and state not in ("Z", "X"):
            live.append(f"{stat.parent.name} {comm} {state}")
    return live


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="checks process groups through /proc")
def test_dev_stack_starts_serves_the_example_refuses_a_second_and_stops_clean(
    tmp_path: Path,
) -> None:
    """`orders dev` in a fresh directory (its own var/) on free ports, for real: banner,
    migrated and seeded read model, the printed example works, a second start is refused,
    a SIGKILLed worker is restarted and an order placed meanwhile completes, SIGINT stops
    everything (the restarted worker too) within the bound and leaves no process behind."""
    temporal_port, ui_port, api_port = _free_ports(3)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ORDERS_", "TEMPORAL_")) and k != "DATABASE_URL"
    }
    env |= {
        "TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
        "TEMPORAL_UI_PORT": str(ui_port),
        "ORDERS_API_PORT": str(api_port),
        "ORDERS_JWT_SECRET": JWT_SECRET,
    }
    home = tmp_path / "stack"  # var/ (and the default var/orders.db) land here
    home.mkdir()
    out, err = home / "stdout.txt", home / "stderr.txt"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [str(ORDERS), "dev"],
            cwd=home,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,  # so a failed test can still clean up its whole group
        )
    children: dict[str, int] = {}  # name -> pid (= its process group), from the banner
    others: list[subprocess.Popen[str]] = []

    def report() -> str:
        logs = sorted((home / "var" / "logs").glob("*.log"))
        tails = [f"--- {p.name}\n" + "\n".join(p.read_text().splitlines()[-15:]) for p in logs]
        parts = [f"exit code: {proc.poll()}", "--- stdout", out.read_text()]
        return "\n".join([*parts, "--- stderr", err.read_text(), *tails])

    try:
        # 1. Ready: the banner (printed once /healthz is 200 and the worker polls).
        def banner() -> str | None:
            if proc.poll() is not None:
                raise AssertionError(f"`orders dev` exited during start\n{report()}")
            text = out.read_text()
            return text if "Ctrl-C stops everything." in text else None

        started = time.monotonic()
        text = _until("the banner", banner, 90, report)
        startup = time.monotonic() - started
        api = f"http://127.0.0.1:{api_port}"
        ui = f"http://127.0.0.1:{ui_port}"
        assert f"API docs     {api}/docs" in text
        assert f"Temporal UI  {ui}" in text
        assert f"{ui}/namespaces/default/workflows?query=OrderNo%3D%22" in text
        assert "demo data: 9 products upserted; customers created: alice, bob" in text
        children = {
            name: int(pid)
            for name, pid in re.findall(r"^ {4}(\w+) +\S+\.log +\(pid (\d+)\)", text, re.M)
        }
        assert sorted(children) == ["api", "temporal", "worker"], text
        for name, pid in children.items():
            assert _live_members(pid), f"{name} (pid {pid}) is not running\n{report()}"

        # The example, as printed: who the token is for, the URLs, the body.
        token_line = re.search(r"TOKEN=\$\((\S+) token (.*)\)$", text, re.M)
        submit_url = re.search(r"ORDER=\$\(curl -s -X POST (\S+) ", text)
        body = re.search(r"-d '(\{.*\})'", text)
        pay_url = re.search(r"curl -s -X POST (\S+)\$ORDER(\S*) ", text)
        show = re.search(r"^ +(\S+) show \$ORDER$", text, re.M)
        assert token_line and submit_url and body and pay_url and show, text
        assert Path(home, token_line[1]).resolve() == ORDERS.resolve()
        args = shlex.split(token_line[2])
        role, sub = args[args.index("--role") + 1], args[args.index("--sub") + 1]
        assert submit_url[1] == f"{api}/orders"
        assert pay_url[1] == f"{api}/orders/" and pay_url[2] == "/pay"
        example = json.loads(body[1])

        with httpx.Client(base_url=api, timeout=30) as http:
            assert http.get("/healthz").status_code == 200
            assert http.get("/docs").status_code == 200
            # The web pages, with the demo login `make dev` turns on.
            assert f"Web pages    {api}/ui/" in text
            login = http.get("/ui/login")
            assert login.status_code == 200 and 'data-account="alice"' in login.text
            assert httpx.get(ui, timeout=10).status_code == 200

            # 2. Migrated and seeded: every demo product and customer is there.
            admin = {"Authorization": f"Bearer {mint_token(JWT_SECRET, 'root', Role.ADMIN)}"}
            for p in PRODUCTS:
                r = http.get(f"/products/{p.sku}")
                assert r.status_code == 200, r.text
                got = r.json()
                assert (got["supplier_id"], got["kind"], Decimal(got["price"])) == (
                    p.supplier_id,
                    p.kind.value,
                    p.price,
                )
            for c in CUSTOMERS:
                r = http.get(f"/admin/customers/{c.id}", headers=admin)
                assert r.status_code == 200, r.text
                assert Decimal(r.json()["coins"]) == c.coins
                assert r.json()["default_address"]["name"] == c.address.name

            # 3. The printed example, submit then pay, with a token minted like `orders token`.
            me = {"Authorization": f"Bearer {mint_token(JWT_SECRET, sub, Role(role))}"}
            r = http.post(submit_url[1], json=example, headers=me)
            assert r.status_code == 201, r.text
            order_no = r.json()["order_no"]
            assert r.json()["status"] == "PENDING_PAYMENT"
            r = http.post(f"{pay_url[1]}{order_no}{pay_url[2]}", headers=me)
            assert r.status_code == 202, r.text

            def paid() -> Any:
                got = http.get(f"/orders/{order_no}", headers=me).json()
                return got if got["status"] == "PAID" and got["supplier_orders"] else None

            order = _until(f"order {order_no} PAID", paid, 30, report)
            bought = {line["sku"] for line in example["lines"]}
            suppliers = {p.supplier_id for p in PRODUCTS if p.sku in bought}
            assert {so["supplier_id"] for so in order["supplier_orders"]} == suppliers
            assert order["paid"] == order["payable"]
            r = http.get(f"/admin/customers/{sub}", headers=admin)
            start_coins = next(c.coins for c in CUSTOMERS if c.id == sub)
            assert Decimal(r.json()["coins"]) == start_coins - Decimal(example["coins"])
            # ... and its last step, `orders show $ORDER` (the CLI finds the API by env).
            shown = subprocess.run(
                [show[1], "show", order_no],
                cwd=home,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert shown.returncode == 0, shown.stdout + shown.stderr
            assert order_no in shown.stdout and "PAID" in shown.stdout, shown.stdout

            # 4. A second `orders dev` on the same var/ is refused by the lock; one elsewhere
            #    on the same ports by the port check. Neither disturbs the running stack.
            other = tmp_path / "other"
            other.mkdir()
            for where in (home, other):
                others.append(
                    subprocess.Popen(
                        [str(ORDERS), "dev"],
                        cwd=where,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                        start_new_session=True,
                    )
                )
            (same_out, same_err), (ports_out, ports_err) = (
                again.communicate(timeout=60) for again in others
            )
            assert others[0].returncode == 1, same_out + same_err
            assert f"another `orders dev` is running (pid {proc.pid}, lock " in same_err
            assert f"kill {proc.pid}" in same_err
            assert others[1].returncode == 1, ports_out + ports_err
            for port in (temporal_port, ui_port, api_port):
                assert f"port {port} " in ports_err and "is already in use" in ports_err
            assert http.get("/healthz").status_code == 200
            assert (home / "var" / "dev.lock").read_text().strip() == str(proc.pid)

            # 5. The worker is SIGKILLed: the supervisor prints its exit code and log's end and
            #    starts a new one after 1 s; an order submitted meanwhile completes on it.
            old_worker = children["worker"]
            os.kill(old_worker, signal.SIGKILL)
            killed = time.monotonic()
            gift = next(p for p in PRODUCTS if p.kind is ProductKind.VIRTUAL)
            placed = None
            deadline = time.monotonic() + 90
            while placed is None:
                # Waits for a worker; a 504 is retried with the same key, as a client would.
                r = http.post(
                    "/orders",
                    json={"lines": [{"sku": gift.sku, "qty": 1}]},
                    headers={**me, "Idempotency-Key": "after-the-kill"},
                )
                assert r.status_code in (201, 504), r.text
                placed = r.json() if r.status_code == 201 else None
                assert placed or time.monotonic() < deadline, report()

            def restarted() -> re.Match[str] | None:
                return re.search(
                    r"^worker restarted \(pid (\d+), restart #1\)$", out.read_text(), re.M
                )

            new_worker = int(_until("the worker's restart", restarted, 60, report)[1])
            assert new_worker != old_worker
            children["worker (restarted)"] = new_worker  # must be gone after Ctrl-C too
            _until(
                "the restarted worker polling",
                lambda: f"worker is ready again (pid {new_worker}," in out.read_text(),
                60,
                report,
            )
            back = time.monotonic() - killed
            text = out.read_text()
            exit_line = re.search(
                r"^worker exited unexpectedly \(exit code -9 \(SIGKILL\)\) after [\d.]+s; "
                r"restarting it in 1s\. Last lines of var/logs/worker\.log:\n((?:  \| .*\n)+)",
                text,
                re.M,
            )
            assert exit_line, text
            # The log's end, its JSON lines shown readably.
            assert re.search(r"  \| [\d:.]+ INFO +worker: worker on task queue", exit_line[1]), text
            assert _live_members(new_worker) and not _live_members(old_worker)

            order_b = placed["order_no"]
            r = http.post(f"/orders/{order_b}/pay", headers=me)
            assert r.status_code == 202, r.text
            so_id = f"{order_b}-{gift.supplier_id}"

            def paid_b() -> Any:
                got = http.get(f"/orders/{order_b}", headers=me).json()
                return got if got["status"] == "PAID" and got["supplier_orders"] else None

            so = _until(f"order {order_b} PAID", paid_b, 30, report)["supplier_orders"][0]
            assert so["id"] == so_id
            items = [
                {"item_id": i["item_id"], "qty": i["qty"]}
                for s in so["sub_orders"]
                for i in s["items"]
            ]
            seller = {
                "Authorization": "Bearer "
                + mint_token(JWT_SECRET, gift.supplier_id, Role.SUPPLIER, gift.supplier_id)
            }
            shipment = {"carrier": "email", "tracking_no": f"CODE-{order_b}", "method": "virtual"}
            r = http.post(
                f"/supplier/orders/{so_id}/shipments",
                json={**shipment, "items": items},
                headers=seller,
            )
            assert r.status_code in (200, 201), r.text
            r = http.post(f"/supplier-orders/{so_id}/confirm-receipt", headers=me)
            assert r.status_code == 200, r.text
            r = http.post(f"/supplier-orders/{so_id}/reviews", json={"rating": 5}, headers=me)
            assert r.status_code == 200, r.text
            _until(
                f"order {order_b} FINISHED",
                lambda: http.get(f"/orders/{order_b}", headers=me).json()["status"] == "FINISHED",
                30,
                report,
            )

        # 6. Ctrl-C: everything stops within the bound, nothing is left running.
        stop_started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"`orders dev` still running 20s after SIGINT\n{report()}"
            ) from None
        stopping = time.monotonic() - stop_started
        assert code == 0, report()
        text = out.read_text()
        assert "stopping api, worker, temporal ..." in text
        assert "stopped in" in text and "killed" not in text, text
        for pgid in (proc.pid, *children.values()):
            assert _live_members(pgid) == [], f"left running in group {pgid}\n{report()}"
        for port in (temporal_port, ui_port, api_port):
            assert not port_in_use(port), f"port {port} still taken after stop"
        print(
            f"dev stack: ready in {startup:.1f}s, a SIGKILLed worker polling again after "
            f"{back:.1f}s, stopped in {stopping:.1f}s"
        )
    finally:
        # Whatever failed, stop what this test started (by pid/process group, nothing else):
        # `orders dev` through its own stop path first, then force what is left.
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        for again in others:
            if again.poll() is None:
                os.killpg(again.pid, signal.SIGKILL)
                again.communicate(timeout=10)
        for pgid in children.values():
            if _live_members(pgid):
                os.killpg(pgid, signal.SIGKILL)
