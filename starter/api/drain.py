"""Graceful stop of `python -m starter.api` (docs/operations.md, "Readiness and drain").

On SIGTERM the API

1. turns draining: `GET /readyz` answers 503 (`"draining": true`), everything else is still
   served, for `ORDERS_API_DRAIN_DELAY` (default 0 s) so a load balancer or Kubernetes
   stops sending new requests while the listener still accepts them;
2. closes the listener and waits up to `ORDERS_API_SHUTDOWN_TIMEOUT` (default 30 s) for the
   requests in flight (uvicorn's graceful shutdown; idle keep-alive connections are closed,
   busy ones close after their response);
3. runs the lifespan shutdown (database pool disposed) and exits with status 0.

SIGINT (Ctrl-C at a terminal) skips the delay. A second signal cuts the drain short; a second
Ctrl-C during step 2 abandons the requests still running (uvicorn's force exit).
"""

import logging
import signal
import socket
import time
from dataclasses import dataclass
from types import FrameType

import uvicorn

log = logging.getLogger("starter.api.drain")


@dataclass
class Drain:
    """Shared between the server (sets it) and /readyz (reads it)."""

    draining: bool = False
    since: float | None = None

    def start(self) -> None:
        if not self.draining:
            self.draining = True
            self.since = time.monotonic()


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, drain: Drain, delay: float = 0.0) -> None:
        super().__init__(config)
        self.drain = drain
        self.delay = max(0.0, delay)
        self._close_at: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Not recorded in uvicorn's _captured_signals: once drained, the process exits 0
        # instead of re-raising the signal at itself (uvicorn's default, exit status 143).
        if not self.drain.draining:
            self.drain.start()
            if sig == signal.SIGINT or self.delay == 0:
                log.info("draining: /readyz answers 503; closing the listener now")
                self.should_exit = True
            else:
                log.info(
                    "draining: /readyz answers 503; still serving for %.1fs, then closing "
                    "the listener",
                    self.delay,
                    extra={"drain_delay_s": self.delay},
                )
                self._close_at = time.monotonic() + self.delay
        elif not self.should_exit:
            log.info("second signal: closing the listener now")
            self.should_exit = True
        elif sig == signal.SIGINT:
            self.force_exit = True

    async def on_tick(self, counter: int) -> bool:
        if self._close_at is not None and time.monotonic() >= self._close_at:
            self._close_at = None
            self.should_exit = True
        return await super().on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        in_flight = len(self.server_state.tasks)
        log.info(
            "closing the listener; finishing %d request(s) in flight (up to %ss)",
            in_flight,
            self.config.timeout_graceful_shutdown,
            extra={"in_flight": in_flight},
        )
        await super().shutdown(sockets)
        log.info("stopped")
