"""One open stream's side of the hub: a bounded queue of events that turns into `refresh`.

The hub offers each subscriber the events meant for it; the stream takes them with `next`,
which also says when it is time for a heartbeat and when the subscription is closed
(`CLOSED`). A subscriber that falls behind does not grow a backlog: once its queue is full,
what it holds and whatever comes before the stream takes the next item turn into a single
`refresh` event (its page reloads every live region anyway).
"""

from __future__ import annotations

import asyncio
from collections import deque

from starter.web.live.events import Event
from starter.web.live.topics import Grant


class Closed:
    """What `Subscription.next` returns once the subscription is closed (`CLOSED`)."""


CLOSED = Closed()


class Subscription:
    """One open stream: its grant, a bounded queue, and where the watcher stood when it joined."""

    def __init__(self, grant: Grant, maxsize: int, upto: int) -> None:
        self.grant = grant
        self.upto = upto  # rows up to this id are the replay's, later ones come live
        self.maxsize = maxsize
        self.closed = False
        self.dropped = 0
        self._items: deque[Event] = deque()
        self._overflow: int | None = None  # newest id dropped while the queue was full
        self._wake = asyncio.Event()

    def offer(self, event: Event) -> None:
        if self.closed:
            return
        if self._overflow is not None:
            self._overflow = max(self._overflow, event.id)
            self.dropped += 1
        elif len(self._items) >= self.maxsize:
            self.dropped += len(self._items) + 1
            self._overflow = max([event.id, *(e.id for e in self._items)])
            self._items.clear()
        else:
            self._items.append(event)
        self._wake.set()

    def close(self) -> None:
        self.closed = True
        self._wake.set()

    def pending(self) -> int:
        return len(self._items)

    async def next(self, timeout: float) -> Event | Closed | None:
        """The next event; None after `timeout` s with nothing (time for a heartbeat)."""
        if not self._items and self._overflow is None and not self.closed:
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                return None
        if self._overflow is not None:
            newest, self._overflow = self._overflow, None
            return Event(newest, {"action": "refresh"}, refresh=True)
        if self._items:
            return self._items.popleft()
        return CLOSED if self.closed else None
