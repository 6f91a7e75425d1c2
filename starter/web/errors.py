"""Failures on /ui/ pages render as pages (login redirect, 403, 404...), not JSON.

The API's handlers stay as they are for every other path; for a page request they are
wrapped: the same status and message, in the page's language and layout.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.errors import DomainError
from starter.api.errors import ApiError
from starter.web import render
from starter.web.session import LoginRequired, PageForbidden, login_url, optional_viewer

Handler = Callable[[Request, Any], Awaitable[Response]]


def _is_page(request: Request) -> bool:
    path = request.url.path
    return path.startswith("/ui") and not path.startswith(("/ui/static", "/ui/live"))


def _error_page(request: Request, status: int, message: str) -> Response:
    viewer = optional_viewer(request, request.app.state.settings)
    titles = {401: "Please log in", 403: "Not allowed", 404: "Not found"}
    return render.page(
        request,
        viewer,
        "error.html",
        status_code=status,
        whole=True,
        status=status,
        title=titles.get(status, "Something went wrong"),
        message=message,
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def _login(_: Request, err: LoginRequired) -> Response:
        return RedirectResponse(login_url(err.next_url), status_code=303)

    @app.exception_handler(PageForbidden)
    async def _forbidden(request: Request, err: PageForbidden) -> Response:
        return _error_page(request, 403, err.message)

    def wrap(kind: type[Exception], status_of: Callable[[Any], tuple[int, str]]) -> None:
        original: Handler = app.exception_handlers[kind]  # type: ignore[assignment]

        async def handler(request: Request, err: Any) -> Response:
            form = request.headers.get("content-type", "").startswith(
                "application/x-www-form-urlencoded"
            )
            if _is_page(request) and (request.method == "GET" or form):
                status, message = status_of(err)
                return _error_page(request, status, message)
            return await original(request, err)

        app.exception_handlers[kind] = handler

    wrap(DomainError, lambda e: (e.http_status, e.message))
    wrap(ApiError, lambda e: (e.status, e.message))
    wrap(
        StarletteHTTPException,
        lambda e: (e.status_code, e.detail if isinstance(e.detail, str) else "error"),
    )
