"""Friend pays (代付): the page behind the link a buyer shares.

`/ui/pay/{token}` shows what `GET /pay-requests/{token}` returns — the amount, the items and
the deadline, never the order number, the buyer or the address — and a button that calls
`POST /pay-requests/{token}/pay`. Any logged-in customer may open it; the API refuses the
buyer's own payment with its message. A used-up or unknown link is the API's 404, as a page.
"""

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from starter.api.deps import Sessions
from starter.api.routers.pay_requests import read_pay_request
from starter.web import render
from starter.web.session import CustomerViewer

router = APIRouter(prefix="/ui", include_in_schema=False)

Token = Annotated[str, Path(min_length=1, max_length=200)]


@router.get("/pay/done")
async def paid(request: Request, viewer: CustomerViewer) -> Response:
    return render.page(request, viewer, "pay_done.html")


@router.get("/pay/{token}")
async def pay_request(
    request: Request, token: Token, viewer: CustomerViewer, sessions: Sessions
) -> Response:
    asked = await read_pay_request(token, viewer.principal, sessions)
    return render.page(request, viewer, "pay_request.html", asked=asked, token=token)
