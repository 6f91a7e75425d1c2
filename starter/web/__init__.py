"""The web terminals (DESIGN.md §9): customer, supplier and admin pages under /ui/.

Served by the API process. Pages read the same read model through the same queries and
views as the API; every command a page offers is a call of the API itself from the
page's script (same endpoint, same rules, same refusals), authenticated by the session
cookie and guarded against CSRF.
"""

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from settings import Settings
from starter.web import errors
from starter.web.routes import ROUTERS
from starter.web.session import CsrfCookie
from starter.web.static_files import STATIC_DIR


def install(app: FastAPI, settings: Settings) -> None:
    app.add_middleware(CsrfCookie, secret=settings.jwt_secret)
    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="ui-static")
    for router in ROUTERS:
        app.include_router(router)
    errors.install(app)
