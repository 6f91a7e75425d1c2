"""`POST /codec/encode|decode` (Temporal's codec server protocol) over HTTP, without Temporal:
the JSON shape the Temporal UI sends, who may call it, CORS for the UI's origin only, and
loud failures. Decoding real histories is in tests/e2e/test_encryption.py."""

import base64
import json
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from settings import Settings
from starter.api.app import create_app
from starter.payload_codec import KEY_ID_METADATA
from starter.security import TOKEN_COOKIE, Role, mint_token

SECRET = "codec-tests-jwt-secret-0123456789abcdef"
UI = "http://127.0.0.1:18233"
OLD, NEW = (base64.b64encode(os.urandom(32)).decode() for _ in range(2))


def _settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.model_validate(
        {
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/orders.db",
            "ORDERS_JWT_SECRET": SECRET,
            "TEMPORAL_UI_PORT": "18233",
            **env,
        }
    )


@asynccontextmanager
async def _api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as c,
    ):
        yield c


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _body(*texts: str) -> dict[str, Any]:
    """What the Temporal UI posts: protobuf JSON of Payloads, bytes as base64."""
    return {
        "payloads": [
            {"metadata": {"encoding": _b64(b"json/plain")}, "data": _b64(t.encode())} for t in texts
        ]
    }


def _admin(role: Role = Role.ADMIN) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(SECRET, 'ops', role)}"}


UI_HEADERS = {"Content-Type": "application/json", "X-Namespace": "default"}


async def test_encode_then_decode_round_trip_as_the_ui_sends_it(tmp_path: Path) -> None:
    settings = _settings(tmp_path, ORDERS_PAYLOAD_KEY=f"k1:{NEW}")
    async with _api(settings) as api:
        body = _body('{"phone":"13912345678"}', '"plain"')
        r = await api.post("/codec/encode", json=body, headers={**UI_HEADERS, **_admin()})
        assert r.status_code == 200, r.text
        sealed = r.json()
        assert "13912345678" not in r.text
        for p in sealed["payloads"]:
            assert base64.b64decode(p["metadata"]["encoding"]) == b"binary/encrypted"
            assert base64.b64decode(p["metadata"][KEY_ID_METADATA]) == b"k1"
        # Plain payloads in the same request come back as they were.
        sealed["payloads"].append(body["payloads"][1])
        r = await api.post("/codec/decode", json=sealed, headers={**UI_HEADERS, **_admin()})
        assert r.status_code == 200, r.text
        assert r.json() == {"payloads": [*body["payloads"], body["payloads"][1]]}
        # protobuf JSON: empty fields may be left out; URL-safe base64 is accepted.
        r = await api.post(
            "/codec/decode",
            json={"payloads": [{}, {"data": base64.urlsafe_b64encode(b"\xfb\xff").decode()}]},
            headers=_admin(),
        )
        assert r.status_code == 200, r.text
        assert r.json() == {
            "payloads": [{"metadata": {}, "data": ""}, {"metadata": {}, "data": _b64(b"\xfb\xff")}]
        }


async def test_outside_dev_mode_only_an_admin_may_call_it(tmp_path: Path) -> None:
    settings = _settings(tmp_path, ORDERS_PAYLOAD_KEY=NEW)
    async with _api(settings) as api:
        for path in ("/codec/decode", "/codec/encode"):
            r = await api.post(path, json=_body("x"), headers=UI_HEADERS)
            assert r.status_code == 401, r.text
            assert r.json()["error"]["code"] == "unauthorized"
            assert r.headers["WWW-Authenticate"] == "Bearer"
            r = await api.post(path, json=_body("x"), headers={"Authorization": "Bearer nope"})
            assert r.status_code == 401, r.text
            for role in (Role.CUSTOMER, Role.SUPPLIER):
                r = await api.post(path, json=_body("x"), headers=_admin(role))
                assert r.status_code == 403, r.text
        # The admin's session cookie of the web pages works too (the UI's "include credentials").
        cookie = {TOKEN_COOKIE: mint_token(SECRET, "ops", Role.ADMIN)}
        api.cookies.update(cookie)
        r = await api.post("/codec/decode", json=_body("x"), headers=UI_HEADERS)
        assert r.status_code == 200, r.text


async def test_dev_mode_needs_no_token(tmp_path: Path) -> None:
    settings = _settings(tmp_path, ORDERS_PAYLOAD_KEY=NEW, ORDERS_DEV_LOGIN="1")
    async with _api(settings) as api:
        r = await api.post("/codec/decode", json=_body("x"), headers=UI_HEADERS)
        assert r.status_code == 200, r.text


async def test_cors_preflight_answers_for_the_ui_origin_only(tmp_path: Path) -> None:
    settings = _settings(tmp_path, ORDERS_PAYLOAD_KEY=NEW, ORDERS_DEV_LOGIN="1")
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-namespace",
    }
    async with _api(settings) as api:
        for origin in (UI, "http://localhost:18233"):
            for path in ("/codec/decode", "/codec/encode"):
                r = await api.options(path, headers={**preflight, "Origin": origin})
                assert r.status_code == 204, r.text
                assert r.headers["Access-Control-Allow-Origin"] == origin
                assert r.headers["Access-Control-Allow-Credentials"] == "true"
                assert "POST" in r.headers["Access-Control-Allow-Methods"]
                allowed = r.headers["Access-Control-Allow-Headers"].lower()
                for header in ("content-type", "x-namespace", "authorization"):
                    assert header in allowed
            r = await api.post(
                "/codec/decode", json=_body("x"), headers={**UI_HEADERS, "Origin": origin}
            )
            assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == origin

        for origin in ("http://evil.example", "http://127.0.0.1:18234", "null"):
            r = await api.options("/codec/decode", headers={**preflight, "Origin": origin})
            assert r.status_code == 403, r.text
            assert "Access-Control-Allow-Origin" not in r.headers
            # A simple (non-preflighted) request from another origin is refused too.
            r = await api.post(
                "/codec/decode",
                content=json.dumps(_body("x")),
                headers={"Content-Type": "text/plain", "Origin": origin},
            )
            assert r.status_code == 403, r.text
            assert "Access-Control-Allow-Origin" not in r.headers
        r = await api.options(
            "/codec/decode", headers={**preflight, "Access-Control-Request-Method": "DELETE"}
        )
        assert r.status_code == 403
    # Outside dev mode the origins are configured (or derived from ORDERS_TEMPORAL_UI_URL).
    ops = _settings(tmp_path, ORDERS_TEMPORAL_UI_URL="https://temporal.example.com/")
    async with _api(ops) as api:
        for origin, status in ((UI, 403), ("https://temporal.example.com", 204)):
            r = await api.options("/codec/decode", headers={**preflight, "Origin": origin})
            assert r.status_code == status, (origin, r.text)
        # Errors carry the CORS headers too, so the UI can show why.
        r = await api.post(
            "/codec/decode",
            json=_body("x"),
            headers={**UI_HEADERS, "Origin": "https://temporal.example.com"},
        )
        assert r.status_code == 401
        assert r.headers["Access-Control-Allow-Origin"] == "https://temporal.example.com"


async def test_wrong_key_and_bad_input_fail_loudly(tmp_path: Path) -> None:
    async with _api(_settings(tmp_path, ORDERS_PAYLOAD_KEY=f"old:{OLD}")) as api:
        r = await api.post("/codec/encode", json=_body("secret"), headers=_admin())
        sealed = r.json()
    cases = {
        f"new:{NEW}": r"key id 'old', which is not among the configured keys \(new\)",
        f"old:{NEW}": "key id 'old' failed authentication",
        None: "encrypted but ORDERS_PAYLOAD_KEY is not set",
    }
    for key, why in cases.items():
        env = {"ORDERS_PAYLOAD_KEY": key} if key else {}
        async with _api(_settings(tmp_path, **env)) as api:
            r = await api.post("/codec/decode", json=sealed, headers=_admin())
            assert r.status_code == 400, r.text
            assert r.json()["error"]["code"] == "undecryptable"
            assert re.search(why, r.json()["error"]["message"]), r.text
    async with _api(_settings(tmp_path, ORDERS_PAYLOAD_KEY=f"new:{NEW},old:{OLD}")) as api:
        r = await api.post("/codec/decode", json=sealed, headers=_admin())
        assert r.status_code == 200 and r.json() == _body("secret")  # rotation
        for bad in (
            b"not json",
            b'{"payloads": [{"data": "***"}]}',
            b'{"payloads": [{"metadata": {"encoding": 5}}]}',
            b'{"payloads": "x"}',
        ):
            r = await api.post("/codec/decode", content=bad, headers=_admin())
            assert r.status_code == 422, (bad, r.text)
            assert r.json()["error"]["code"] == "invalid_input"
    async with _api(_settings(tmp_path)) as api:
        r = await api.post("/codec/encode", json=_body("x"), headers=_admin())
        assert r.status_code == 409 and r.json()["error"]["code"] == "encryption_off"
