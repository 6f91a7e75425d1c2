"""Snowflake order numbers: time-ordered, unique across API processes."""

import os
import threading
import time

EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
_WORKER_BITS = 10
_SEQ_BITS = 12


class Snowflake:
    """41 bits of milliseconds, 10 bits of node id, 12 bits of sequence."""

    def __init__(self, node_id: int | None = None) -> None:
        if node_id is None:
            node_id = os.getpid()
        self.node_id = node_id & ((1 << _WORKER_BITS) - 1)
        self._lock = threading.Lock()
        self._last_ms = -1
        self._seq = 0

    def next(self) -> int:
        with self._lock:
            now = int(time.time() * 1000)
            if now < self._last_ms:  # clock stepped back: keep ids monotonic
                now = self._last_ms
            if now == self._last_ms:
                self._seq = (self._seq + 1) & ((1 << _SEQ_BITS) - 1)
                if self._seq == 0:
                    while now <= self._last_ms:
                        now = int(time.time() * 1000)
            else:
                self._seq = 0
            self._last_ms = now
            return (
                ((now - EPOCH_MS) << (_WORKER_BITS + _SEQ_BITS))
                | (self.node_id << _SEQ_BITS)
                | self._seq
            )

    def next_order_no(self) -> str:
        return str(self.next())


_default = Snowflake()


def new_order_no() -> str:
    return _default.next_order_no()
