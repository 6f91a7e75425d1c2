"""`GET /ui/live`: the pages' server-sent events (DESIGN.md §9; the hub is starter.web.live).

`?topics=` lists what the page shows (`order:<no> customer:<id> supplier:<id> admin`);
topics the viewer may not see are dropped, and with none left the answer is 403 (401
when not logged in). A reconnecting browser sends `Last-Event-ID` (or the page passes
`?last_event_id=`): what it missed is sent first.
"""

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from starter.api.deps import Sessions
from starter.api.errors import ApiError, forbidden, unauthorized
from starter.web import i18n, live
from starter.web.session import MaybeViewer

router = APIRouter(prefix="/ui", include_in_schema=False)


def _last_id(*candidates: str | int | None) -> int | None:
    for value in candidates:
        if value is None:
            continue
        try:
            n = int(str(value).strip())
        except ValueError:
            continue
        if n >= 0:
            return n
    return None


@router.get("/live")
async def live_stream(
    request: Request,
    viewer: MaybeViewer,
    sessions: Sessions,
    topics: Annotated[str, Query(max_length=4000)] = "",
    last_event_id: Annotated[str | None, Query(max_length=20)] = None,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    if viewer is None:
        raise unauthorized("log in to follow live changes")
    grant = await live.grant_topics(
        sessions, viewer.principal, live.parse_topics(topics), i18n.choose(request)
    )
    if not grant.topics:
        raise forbidden("none of these topics may be followed by this account")
    hub = live.hub_for(request.app)
    if hub.closed:
        raise ApiError(503, "unavailable", "the server is shutting down")
    return StreamingResponse(
        live.stream(hub, grant, _last_id(last_event_id_header, last_event_id)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
