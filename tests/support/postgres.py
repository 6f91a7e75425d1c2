"""Throwaway PostgreSQL servers for tests.

`start_postgres()` runs a real server (initdb + pg_ctl) in a temp dir under /tmp on a free
loopback port and yields an async SQLAlchemy URL for its `orders` database. The binaries
refuse to run as root, so when we are root the dir is chowned to `postgres` and every server
command runs through `runuser -u postgres --`.
"""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.engine import make_url

__all__ = [
    "create_database",
    "create_database_sync",
    "drop_database",
    "find_pg_bin_dir",
    "start_postgres",
    "with_database",
]

USER = "app"
DATABASE = "orders"
_OS_USER = "postgres"
_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

T = TypeVar("T")


def find_pg_bin_dir() -> Path:
    """Directory holding initdb/pg_ctl: PATH first, then /usr/lib/postgresql/*/bin (newest)."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent

    def version(p: str) -> int:
        m = re.search(r"/postgresql/(\d+)/", p)
        return int(m.group(1)) if m else 0

    for initdb in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version, reverse=True):
        bin_dir = Path(initdb).parent
        if (bin_dir / "pg_ctl").exists():
            return bin_dir
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH nor under "
        "/usr/lib/postgresql/*/bin; `make test` installs them "
        "(apt-get install -y postgresql)."
    )


def _runuser() -> str:
    for cand in (shutil.which("runuser"), "/usr/sbin/runuser", "/sbin/runuser"):
        if cand and os.path.exists(cand):
            return cand
    raise RuntimeError("running as root but `runuser` (util-linux) was not found")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even if an event loop is running here."""
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as e:
            error.append(e)

    t = threading.Thread(target=target, name="pg-helper")
    t.start()
    t.join()
    if error:
        raise error[0]
    return result[0]


def with_database(url: str, database: str) -> str:
    """Same server and credentials as the SQLAlchemy `url`, other database."""
    return make_url(url).set(database=database).render_as_string(hide_password=False)


def _dsn(url: str, database: str) -> str:
    """SQLAlchemy URL (postgresql+asyncpg://...) -> plain libpq DSN for asyncpg."""
    u = make_url(url).set(drivername="postgresql", database=database, query={})
    return u.render_as_string(hide_password=False)


def _check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise ValueError(f"bad database name {name!r}: use [a-z_][a-z0-9_]*")
    return name


async def create_database(url_base: str, name: str, *, template: str | None = None) -> str:
    """Create an empty database `name` on the server of `url_base`; return its SQLAlchemy URL.

    `url_base` is any URL on the server (e.g. the `pg_url` fixture). Pass `template` to copy an
    existing database (e.g. one with migrations already applied) instead of starting empty.
    """
    _check_name(name)
    conn = await asyncpg.connect(_dsn(url_base, "postgres"), ssl=False)
    try:
        sql = f'CREATE DATABASE "{name}"'
        if template is not None:
            sql += f' TEMPLATE "{_check_name(template)}"'
        await conn.execute(sql)
    finally:
        await conn.close()
    return with_database(url_base, name)


async def drop_database(url_base: str, name: str) -> None:
    conn = await asyncpg.connect(_dsn(url_base, "postgres"), ssl=False)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{_check_name(name)}" WITH (FORCE)')
    finally:
        await conn.close()


def create_database_sync(url_base: str, name: str, *, template: str | None = None) -> str:
    """`create_database` for sync code (works whether or not an event loop is running)."""
    return _run_sync(create_database(url_base, name, template=template))


@contextmanager
def start_postgres() -> Iterator[str]:
    """Start a throwaway PostgreSQL server; yield `postgresql+asyncpg://app@127.0.0.1:PORT/orders`.

    The server is always stopped and its directory removed on exit.
    """
    bin_dir = find_pg_bin_dir()
    as_root = os.geteuid() == 0
    prefix: list[str] = [_runuser(), "-u", _OS_USER, "--"] if as_root else []
    root = Path(tempfile.mkdtemp(prefix="orders-pg-", dir="/tmp"))
    data = root / "data"
    log = root / "log"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"

    def run(*args: str) -> None:
        cmd = [*prefix, str(bin_dir / args[0]), *args[1:]]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=root)
        if proc.returncode != 0:
            tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
            raise RuntimeError(
                f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}{tail}"
            )

    started = False
    try:
        if as_root:
            pw = pwd.getpwnam(_OS_USER)  # KeyError here: create the user or apt-get postgresql
            os.chown(root, pw.pw_uid, pw.pw_gid)
        run("initdb", "-D", str(data), "-A", "trust", "-U", USER, "-E", "UTF8", "--no-sync")
        opts = (
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        run("pg_ctl", "-D", str(data), "-o", opts, "-l", str(log), "-w", "-t", "60", "start")
        started = True
        # No TLS on a loopback test server: asyncpg's default "prefer" first tries an SSL
        # handshake, which segfaulted in-process after the Temporal tests had run.
        url = f"postgresql+asyncpg://{USER}@127.0.0.1:{port}/{DATABASE}?ssl=disable"
        create_database_sync(url, DATABASE)
        yield url
    finally:
        try:
            if started:
                try:
                    run("pg_ctl", "-D", str(data), "-m", "fast", "-w", "-t", "30", "stop")
                except RuntimeError:
                    run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(root, ignore_errors=True)
