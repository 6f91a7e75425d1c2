"""Ending a process that holds a Temporal client or worker.

temporalio's Rust core keeps native threads that may call into Python while the interpreter
finalizes; CPython then aborts the process ("PyGILState_Release: thread state ... must be
current", SIGABRT, exit -6; an open SDK issue, sdk-python#300). A worker stopped cleanly by
SIGTERM did that 2 times in 3 here. So once everything of ours has shut down, the entry points
leave with os._exit: no finalization, a clean exit status for the supervisor.
"""

import contextlib
import logging
import os
import sys
from typing import NoReturn


def exit_now(code: int = 0) -> NoReturn:
    """Flush logs and stdio, then end the process without interpreter finalization."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed or broken: nothing to say
            stream.flush()
    os._exit(code)
