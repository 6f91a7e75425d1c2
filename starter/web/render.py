"""Jinja2 for the pages: autoescaped templates, the language, and what every page shows.

`page(request, viewer, "x.html", ...)` renders a whole page; `?fragment=<name>` renders
only the named live region (templates/partials/), which the page's script swaps in when
the server says something changed.
"""

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from starlette.requests import Request
from starlette.responses import HTMLResponse

from starter.web import i18n, words
from starter.web.session import Viewer

TEMPLATES = Path(__file__).parent / "templates"


@pass_context
def _gettext(ctx: Context, message: str) -> str:
    return i18n.gettext_for(ctx.get("locale", i18n.DEFAULT_LOCALE))(message)


@pass_context
def _ngettext(ctx: Context, singular: str, plural: str, n: int) -> str:
    return _gettext(ctx, singular if n == 1 else plural)


@pass_context
def _status(ctx: Context, code: str | None) -> str:
    if not code:
        return ""
    return _gettext(ctx, words.STATUS_WORDS.get(str(code), str(code)))


@pass_context
def _close_reason(ctx: Context, code: str | None) -> str:
    if not code:
        return ""
    return _gettext(ctx, words.CLOSE_REASON_WORDS.get(str(code), str(code)))


@pass_context
def _in_words(ctx: Context, at: datetime | None) -> str:
    """'in 9 days' / '3 hours ago', in the page's language."""
    if at is None:
        return ""
    delta = words.as_utc(at) - datetime.now(UTC)
    n, unit = words.span(delta)
    template = "in {n} {unit}" if delta.total_seconds() >= 0 else "{n} {unit} ago"
    return _gettext(ctx, template).format(n=n, unit=_gettext(ctx, unit))


def _money(value: Decimal | str | None) -> str:
    return "" if value is None else f"¥{Decimal(value):.2f}"


def _utc_text(at: datetime | None) -> str:
    return "" if at is None else words.as_utc(at).strftime("%Y-%m-%d %H:%M UTC")


def _iso(at: datetime | None) -> str:
    return "" if at is None else words.as_utc(at).isoformat().replace("+00:00", "Z")


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(
        status=_status,
        close_reason=_close_reason,
        in_words=_in_words,
        money=_money,
        utc=_utc_text,
        iso=_iso,
    )
    env.globals.update(words=words, locale_names=i18n.LOCALE_NAMES)
    return env


ENV = _environment()


def page(
    request: Request,
    viewer: Viewer | None,
    template: str,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    whole: bool = False,
    **context: Any,
) -> HTMLResponse:
    """Render a page, or only its live region when the script asks with `?fragment=`.

    `whole=True` always renders the whole template (error pages: a refused fragment
    request gets the error page, which the script does not swap in).
    """
    locale = i18n.choose(request)
    fragment = None if whole else request.query_params.get("fragment")
    if fragment is not None:
        if not fragment.isidentifier():
            fragment = "missing"
        template = f"partials/{fragment}.html"
    html = ENV.get_template(template).render(
        request=request,
        viewer=viewer,
        locale=locale,
        html_lang=i18n.html_lang(locale),
        csrf_token=request.state.csrf_token if hasattr(request.state, "csrf_token") else "",
        path=request.url.path,
        live_since=getattr(request.state, "live_since", ""),
        **context,
    )
    response = HTMLResponse(html, status_code=status_code, headers=dict(headers or {}))
    # Pages show private data: never cached by shared caches nor offered back from history.
    response.headers.setdefault("Cache-Control", "no-store")
    return response
