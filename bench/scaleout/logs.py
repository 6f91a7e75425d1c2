"""What the logs say: PostgreSQL deadlocks and serialization failures, errors and failed
workflow tasks in the workers' logs; and where a throwaway PostgreSQL keeps its log and pids."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.scaleout.service import Service, read_log

DB_CONFLICT = re.compile(r"deadlock detected|could not serialize access", re.IGNORECASE)


def pg_log_conflicts(log_path: Path | None) -> tuple[int, list[str]]:
    """Deadlocks and serialization failures the PostgreSQL server logged (with statements)."""
    if log_path is None:
        return -1, []
    lines = read_log(log_path).splitlines()
    hits = [k for k, line in enumerate(lines) if DB_CONFLICT.search(line)]
    return len(hits), [" | ".join(lines[k : k + 4])[:300] for k in hits[:3]]


WORKFLOW_TASK_FAILURE = re.compile(r"Failing workflow task|Failed activation|nondetermin", re.I)


def worker_log_problems(workers: Sequence[Service]) -> list[str]:
    """ERROR lines and failed workflow tasks in the workers' logs, counted by message."""
    seen: Counter[str] = Counter()
    for w in workers:
        for line in w.log_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                rec = {"level": "?", "message": line}
            message = str(rec.get("message", ""))
            if rec.get("level") == "ERROR" or WORKFLOW_TASK_FAILURE.search(message):
                seen[message[:160]] += 1
    return [f"{n} x {m}" for m, n in seen.most_common(5)]


def pg_log_and_pids(data_dir: str) -> tuple[Path | None, Callable[[], list[int]]]:
    """The server log of a tests/support/postgres server (DIR/data → DIR/log) and a function
    listing the server's processes (postmaster and its children), when this machine has them."""
    data = Path(data_dir)
    log = data.parent / "log"
    try:
        postmaster = int((data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return (log if log.exists() else None), list

    def pids() -> list[int]:
        out = [postmaster]
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == postmaster:
                out.append(int(d.name))
        return out

    return (log if log.exists() else None), pids
