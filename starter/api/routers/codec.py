"""Temporal's codec server protocol: `POST /codec/encode`, `POST /codec/decode`.

The Temporal UI (`temporal server start-dev --ui-codec-endpoint <api>/codec`, or the UI
server's `TEMPORAL_CODEC_ENDPOINT`) and the `temporal` CLI (`--codec-endpoint <api>/codec
--codec-auth "Bearer $TOKEN"`) send `{"payloads": [{"metadata": {k: base64}, "data": base64}]}`
(protobuf JSON of `temporal.api.common.v1.Payloads`) with an `X-Namespace` header, and show
what comes back. Decode turns payloads encrypted by `starter/payload_codec.py` back into the
JSON the workflows exchanged; plain payloads come back unchanged. A payload that cannot be
decrypted (unknown key id, wrong key) is a 400 naming the key id, never garbage.

Who may call it: in dev mode (ORDERS_DEV_LOGIN=1) anyone who reaches the API; otherwise an
admin, by `Authorization: Bearer <admin JWT>` (what the UI sends with its codec setting "pass
access token", the CLI with `--codec-auth`) or the admin's session cookie of the web pages (the
UI's "include credentials"). The endpoints change nothing, so a cookie needs no CSRF token:
what protects the answer is CORS, which lets only the Temporal UI's origins
(`Settings.codec_origins`, ORDERS_CODEC_CORS_ORIGINS) read it; a browser request from any
other origin is refused outright.

Every answer, errors included, is built here so it carries the CORS headers the UI needs to
read it (the app-wide exception handlers would drop them).
"""

import base64
import binascii
import json
import logging
from collections.abc import Callable
from functools import lru_cache
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, ValidationError
from temporalio.api.common.v1 import Payload

from settings import Settings
from starter.api.deps import SettingsDep
from starter.api.errors import error_body
from starter.api.routers._common import errors
from starter.payload_codec import (
    ENCODING,
    EncryptionCodec,
    PayloadDecryptionError,
    PayloadKey,
    decode_base64,
)
from starter.security import TOKEN_COOKIE, InvalidToken, Role, decode_token

log = logging.getLogger("starter.api.codec")

router = APIRouter(prefix="/codec", tags=["codec"])

MAX_BODY = 16 * 1024 * 1024
MAX_PAYLOADS = 10_000
# Payload data is at most 2 MB on a default Temporal server (blob size limit); base64 grows it.
MAX_DATA_CHARS = 4 * 1024 * 1024
ALLOWED_HEADERS = "authorization, content-type, x-namespace"

_bearer = HTTPBearer(
    auto_error=False,
    description="An admin's JWT; not needed in dev mode (ORDERS_DEV_LOGIN=1)",
)


class CodecPayload(BaseModel):
    """One `temporal.api.common.v1.Payload` in protobuf JSON (bytes as base64)."""

    metadata: dict[
        Annotated[str, Field(max_length=256)], Annotated[str, Field(max_length=4096)]
    ] = Field(default_factory=dict, max_length=64, examples=[{"encoding": "anNvbi9wbGFpbg=="}])
    data: str = Field(default="", max_length=MAX_DATA_CHARS, examples=["eyJhIjogMX0="])


class CodecPayloads(BaseModel):
    """`temporal.api.common.v1.Payloads` in protobuf JSON."""

    payloads: list[CodecPayload] = Field(default_factory=list, max_length=MAX_PAYLOADS)


class CodecError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


@lru_cache(maxsize=4)
def _codec(keys: tuple[PayloadKey, ...]) -> EncryptionCodec | None:
    return EncryptionCodec(keys) if keys else None


def _to_proto(body: CodecPayloads) -> list[Payload]:
    out = []
    for n, p in enumerate(body.payloads):
        try:
            metadata = {k: decode_base64(v) for k, v in p.metadata.items()}
            data = decode_base64(p.data)
        except (binascii.Error, ValueError):
            raise CodecError(
                422, "invalid_input", f"payloads.{n}: metadata values and data must be base64"
            ) from None
        out.append(Payload(metadata=metadata, data=data))
    return out


def _to_json(payloads: list[Payload]) -> dict[str, Any]:
    return {
        "payloads": [
            {
                "metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                "data": base64.b64encode(p.data).decode(),
            }
            for p in payloads
        ]
    }


def _origin_allowed(request: Request, settings: Settings) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser's cross-origin call (curl, the temporal CLI)
    same = f"{request.url.scheme}://{request.url.netloc}"
    return origin.rstrip("/") in (*settings.codec_origins(), same)


def _cors_headers(request: Request, settings: Settings) -> dict[str, str]:
    origin = request.headers.get("origin")
    if origin is None or origin.rstrip("/") not in settings.codec_origins():
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        "Vary": "Origin",
    }


def _check_caller(
    request: Request, settings: Settings, creds: HTTPAuthorizationCredentials | None
) -> None:
    if settings.dev_login:
        return
    if creds is not None:
        token: str | None = creds.credentials if creds.scheme.lower() == "bearer" else None
    else:
        token = request.cookies.get(TOKEN_COOKIE)
    if not token:
        raise CodecError(401, "unauthorized", "an admin's bearer token is required")
    try:
        principal = decode_token(settings.jwt_secret, token)
    except InvalidToken as err:
        raise CodecError(401, "unauthorized", f"invalid token: {err}") from None
    if principal.role is not Role.ADMIN:
        raise CodecError(403, "forbidden", "only an admin may use the codec endpoints")


async def _body(request: Request) -> CodecPayloads:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY:
        raise CodecError(413, "payload_too_large", f"at most {MAX_BODY} bytes")
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise CodecError(413, "payload_too_large", f"at most {MAX_BODY} bytes")
    try:
        return CodecPayloads.model_validate(json.loads(raw))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CodecError(422, "invalid_input", "the body is not JSON") from None
    except ValidationError as err:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
            for e in err.errors()[:20]
        ]
        summary = "; ".join(f"{p['field'] or 'body'}: {p['message']}" for p in problems[:5])
        raise CodecError(422, "invalid_input", summary, fields=problems) from None


async def _handle(
    request: Request,
    settings: Settings,
    creds: HTTPAuthorizationCredentials | None,
    convert: Callable[[EncryptionCodec | None, list[Payload]], list[Payload]],
) -> JSONResponse:
    cors = _cors_headers(request, settings)
    try:
        if not _origin_allowed(request, settings):
            raise CodecError(
                403, "origin_not_allowed", "this origin may not call the codec endpoints"
            )
        _check_caller(request, settings, creds)
        payloads = _to_proto(await _body(request))
        converted = convert(_codec(settings.payload_keys()), payloads)
    except CodecError as err:
        headers = dict(cors)
        if err.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return JSONResponse(
            error_body(err.code, err.message, **err.extra), status_code=err.status, headers=headers
        )
    return JSONResponse(_to_json(converted), headers=cors)


def _encode(codec: EncryptionCodec | None, payloads: list[Payload]) -> list[Payload]:
    if codec is None:
        raise CodecError(
            409, "encryption_off", "ORDERS_PAYLOAD_KEY is not set on this API: nothing to encode"
        )
    return [codec.encrypt(p) for p in payloads]


def _decode(codec: EncryptionCodec | None, payloads: list[Payload]) -> list[Payload]:
    out = []
    for n, p in enumerate(payloads):
        try:
            if codec is not None:
                out.append(codec.decrypt(p))
            elif p.metadata.get("encoding") == ENCODING:
                raise PayloadDecryptionError(
                    "the payload is encrypted but ORDERS_PAYLOAD_KEY is not set on this API"
                )
            else:
                out.append(p)
        except PayloadDecryptionError as err:
            log.warning("codec: cannot decrypt payload %d: %s", n, err)
            raise CodecError(400, "undecryptable", f"payloads.{n}: {err}") from None
    return out


CODEC_RESPONSES = errors(400, 401, 403, 409, 413, 422)
Creds = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CodecPayloads"}}},
    }
}


@router.post(
    "/encode", response_model=CodecPayloads, responses=CODEC_RESPONSES, openapi_extra=BODY_DOC
)
async def encode(request: Request, settings: SettingsDep, creds: Creds) -> JSONResponse:
    """Encrypt payloads with the current key (as the API and worker do before sending)."""
    return await _handle(request, settings, creds, _encode)


@router.post(
    "/decode", response_model=CodecPayloads, responses=CODEC_RESPONSES, openapi_extra=BODY_DOC
)
async def decode(request: Request, settings: SettingsDep, creds: Creds) -> JSONResponse:
    """Decrypt payloads (any configured key); plain payloads come back unchanged."""
    return await _handle(request, settings, creds, _decode)


@router.options("/encode", include_in_schema=False)
@router.options("/decode", include_in_schema=False)
async def preflight(request: Request, settings: SettingsDep) -> Response:
    """CORS preflight: allowed only for the Temporal UI's origins, for POST."""
    cors = _cors_headers(request, settings)
    method = request.headers.get("access-control-request-method", "")
    if not cors or method.upper() != "POST":
        return JSONResponse(
            error_body("origin_not_allowed", "CORS preflight refused for this origin or method"),
            status_code=403,
        )
    return Response(
        status_code=204,
        headers={
            **cors,
            "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": "600",
        },
    )
