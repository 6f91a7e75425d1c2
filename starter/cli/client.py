"""The CLI's HTTP side: `Api` calls the order service's API (DESIGN.md §6) like a user's own
code would, with a short-lived bearer token it mints for one principal from
ORDERS_JWT_SECRET. An unreachable API or an error response becomes a CliError with a
one-line message; tests swap the network for an httpx.MockTransport through the click
context (`client_for`).
"""

import json
import warnings
from typing import Any

import httpx
import jwt
import typer

from settings import Settings, get_settings
from starter.cli.errors import fail
from starter.security import Role, mint_token

ADMIN_SUB = "orders-cli"
TOKEN_TTL = 600


def mint(sub: str, role: Role, supplier_id: str | None, ttl: int) -> str:
    secret = get_settings().jwt_secret
    if secret == Settings.model_fields["jwt_secret"].default:
        # Only the built-in dev default is let off PyJWT's short-key warning (it would print
        # on every call); a real ORDERS_JWT_SECRET that is too short still warns.
        warnings.filterwarnings("ignore", category=jwt.InsecureKeyLengthWarning)
    return mint_token(secret, sub, role, supplier_id, ttl)


def default_api_url() -> str:
    return f"http://127.0.0.1:{get_settings().api_port}"


class Api:
    """The API at `base_url`, called with a bearer token for one principal."""

    def __init__(
        self,
        base_url: str | None,
        role: Role,
        sub: str,
        supplier_id: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = (base_url or default_api_url()).rstrip("/")
        token = mint(sub, role, supplier_id, TOKEN_TTL)
        self.http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}"},
            transport=transport,
            timeout=30.0,
        )

    def __enter__(self) -> "Api":
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content: bytes | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        params = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            r = self.http.request(
                method, path, json=body, content=content, params=params, headers=headers
            )
        except httpx.TransportError as err:
            fail(
                f"cannot reach the API at {self.base_url} ({err or type(err).__name__}).\n"
                "Is `make dev` running? Point elsewhere with --api or ORDERS_API_URL."
            )
        if r.status_code >= 400:
            fail(f"{method} {path} → {r.status_code} {_error_text(r)}")
        if not r.content:
            return None
        return r.json()


def _error_text(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return r.text[:500] or r.reason_phrase
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return f"{error.get('code', 'error')}: {error.get('message', '')}"
    return json.dumps(body)[:500]


def _transport(ctx: typer.Context) -> httpx.BaseTransport | None:
    """Tests hand an httpx.MockTransport in through the click context's obj."""
    obj = ctx.find_root().obj
    return obj.get("transport") if isinstance(obj, dict) else None


def client_for(
    ctx: typer.Context, url: str | None, role: Role, sub: str, supplier_id: str | None = None
) -> Api:
    return Api(url, role, sub, supplier_id, transport=_transport(ctx))
