"""The hub in the app: one per app (`hub_for`, `stop_hub`), and the body of `GET /ui/live`.

`stream` is what the route returns: a retry hint, the replay after the page's last id, then
the live events and heartbeats until the subscription closes. `note_position` is the live
pages' router dependency that fixes, before the page reads, the id its stream starts after.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from sqlalchemy.exc import SQLAlchemyError

from starter.api.deps import Sessions
from starter.web.live.feed import newest_id
from starter.web.live.hub import HubClosed, LiveHub
from starter.web.live.subscription import Closed
from starter.web.live.topics import Grant

log = logging.getLogger("starter.web.live")  # one logger for the whole package

RETRY_MS = 2000  # how long a browser waits before reconnecting


def hub_for(app: Any) -> LiveHub:
    """The app's hub, created on first use (started by its first subscriber)."""
    hub: LiveHub | None = getattr(app.state, "live_hub", None)
    if hub is None:
        hub = LiveHub(app.state.sessions, app=app)
        app.state.live_hub = hub
    return hub


async def stop_hub(app: Any) -> None:
    """App shutdown: end the streams and the watcher, if there is one."""
    hub: LiveHub | None = getattr(app.state, "live_hub", None)
    if hub is not None:
        await hub.stop()


async def stream(hub: LiveHub, grant: Grant, after: int | None) -> AsyncIterator[bytes]:
    """The body of `GET /ui/live`: retry hint, replay after `after`, then live events."""
    try:
        sub = await hub.subscribe(grant)
    except HubClosed:
        return
    except (SQLAlchemyError, OSError) as err:
        log.warning("live updates: cannot subscribe: %s", err)
        yield f"retry: {RETRY_MS}\n\n".encode()
        return
    try:
        yield f"retry: {RETRY_MS}\n: live\n\n".encode()
        replayed: set[int] = set()
        if after is not None and after < sub.upto:
            try:
                events = await hub.replay(grant, after, sub.upto)
            except (SQLAlchemyError, OSError) as err:
                # End the stream: the browser comes back with the same Last-Event-ID.
                log.warning("live updates: replay failed: %s", err)
                return
            for event in events:
                replayed.add(event.id)
                yield event.encode()
        while True:
            item = await sub.next(hub.heartbeat)
            if isinstance(item, Closed):
                return
            if item is None:
                yield b": keepalive\n\n"
            elif item.refresh or item.id not in replayed:
                yield item.encode()
    finally:
        hub.unsubscribe(sub)


async def note_position(request: Request, sessions: Sessions) -> None:
    """Router dependency of the live pages: the newest change id BEFORE the page reads.

    The page carries it (`data-live-since`) and its stream starts after it, so a change
    committed between reading the page and connecting the stream is replayed, not lost.
    """
    request.state.live_since = await newest_id(sessions)
