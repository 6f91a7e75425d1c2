"""Finding the uvicorn server that serves the app, so streams can end when it is told to exit.

uvicorn waits for open responses to end before it runs the app's shutdown, and an event
stream never ends by itself; so the hub finds the uvicorn server serving its app
(`uvicorn_server_of`) and, when that server's `should_exit` turns true, ends every stream at
once. Under another ASGI server there is none to find, and the streams end only when the
app's shutdown stops the hub (`serving.stop_hub`).
"""

from __future__ import annotations

import asyncio
from typing import Any


def uvicorn_server_of(app: object) -> Any:
    """The uvicorn Server serving `app` in this event loop, or None.

    uvicorn runs the app's shutdown only after every response has ended, and tells the app
    nothing before: an event stream would keep it waiting for ever. Its `Server.serve`
    coroutine is a task of this loop (the main one under `uvicorn.run`); its `should_exit`
    says when to end the streams.
    """
    try:
        import uvicorn
    except ImportError:  # pragma: no cover - another ASGI server
        return None
    for task in asyncio.all_tasks():
        frame = getattr(task.get_coro(), "cr_frame", None)
        server = frame.f_locals.get("self") if frame is not None else None
        if isinstance(server, uvicorn.Server) and _serves(server.config, app):
            return server
    return None


def _serves(config: Any, app: object) -> bool:
    for candidate in (getattr(config, "app", None), getattr(config, "loaded_app", None)):
        for _ in range(16):  # through uvicorn's wrapping middleware (.app)
            if candidate is None:
                break
            if candidate is app:
                return True
            candidate = getattr(candidate, "app", None)
    return False
