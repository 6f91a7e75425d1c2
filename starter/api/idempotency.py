"""`Idempotency-Key` for mutating calls, stored in the `idempotency_keys` table.

The key row is reserved *before* the work runs (a unique insert), so two
identical requests racing with one key do the work once: the loser polls for
the stored response. The reservation carries a `seed` (for a submit: the order
number) that the work derives its identity from, so even a retry after a crash,
or a loser that gave up waiting, lands on the same workflow id and the same
update id, which Temporal de-duplicates.

- same key, same body: the first response is replayed (header `Idempotent-Replayed: true`);
- same key, different body: 422 `idempotency_key_reused`;
- the work refused the request (a 4xx; nothing was created): the reservation is
  dropped so the key can be used again;
- the outcome is unknown (timeout, Temporal down): the reservation is kept in state
  `retry` so the next attempt proceeds at once with the same seed.
"""

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.session import insert_if_absent, write_one
from db.tables import IdempotencyKey
from domain.errors import DomainError
from starter.api.errors import ApiError
from starter.security import Principal

Work = Callable[[dict[str, Any]], Awaitable[tuple[int, BaseModel]]]

WAIT_FOR_FIRST = 10.0
POLL = 0.05


def request_hash(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _definitive(err: BaseException) -> bool:
    """A refusal that created nothing: the key may be used again."""
    if isinstance(err, DomainError):
        return True
    return isinstance(err, ApiError) and 400 <= err.status < 500


async def _load(sessions: async_sessionmaker[AsyncSession], key: str) -> IdempotencyKey | None:
    async with sessions() as s:
        return await s.get(IdempotencyKey, key)


async def _claim(
    sessions: async_sessionmaker[AsyncSession], key: str, scope: str, digest: str, seed: Any
) -> bool:
    """Reserve the key for this request; False if another request holds it."""
    row = {
        "key": key,
        "scope": scope[:60],
        "request_hash": digest,
        "result": {"state": "pending", "seed": seed},
        "created_at": datetime.now(UTC),
    }
    return await insert_if_absent(sessions, IdempotencyKey, row)


async def _finish(
    sessions: async_sessionmaker[AsyncSession], key: str, seed: Any, status: int, body: Any
) -> None:
    await write_one(
        sessions,
        update(IdempotencyKey)
        .where(IdempotencyKey.key == key, IdempotencyKey.status_code.is_(None))
        .values(status_code=status, result={"state": "done", "seed": seed, "response": body}),
    )


async def _release(
    sessions: async_sessionmaker[AsyncSession], key: str, seed: Any, retry: bool
) -> None:
    """Keep an unanswered key for a retry with the same seed, or drop it."""
    unanswered = (IdempotencyKey.key == key, IdempotencyKey.status_code.is_(None))
    if retry:
        keep = {"state": "retry", "seed": seed}
        await write_one(sessions, update(IdempotencyKey).where(*unanswered).values(result=keep))
    else:
        await write_one(sessions, delete(IdempotencyKey).where(*unanswered))


def _replay(row: IdempotencyKey) -> JSONResponse:
    assert row.status_code is not None
    body = (row.result or {}).get("response")
    return JSONResponse(body, status_code=row.status_code, headers={"Idempotent-Replayed": "true"})


async def run_idempotent(
    sessions: async_sessionmaker[AsyncSession],
    principal: Principal,
    route: str,
    key: str | None,
    payload: Any,
    work: Work,
    seed: Callable[[], dict[str, Any]] = dict,
) -> JSONResponse:
    """Run `work(seed)` at most once per (caller, route, key); replay its response."""
    if key is None:
        status, model = await work(seed())
        return JSONResponse(model.model_dump(mode="json"), status_code=status)

    full_key = f"api:{principal.sub}:{route}:{key}"
    digest = request_hash(payload)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_FOR_FIRST
    owner = False
    fresh = seed()
    while True:
        # Claim first: a new key (the common case) costs one statement, and only a key
        # already taken is read back.
        if await _claim(sessions, full_key, f"api:{route}", digest, fresh):
            owner, chosen = True, fresh
            break
        row = await _load(sessions, full_key)
        if row is None:
            continue  # released by a refused first attempt in between: claim again
        if row.request_hash != digest:
            raise ApiError(
                422,
                "idempotency_key_reused",
                "this Idempotency-Key was already used with a different request",
            )
        if row.status_code is not None:
            return _replay(row)
        state = (row.result or {}).get("state")
        chosen = (row.result or {}).get("seed") or {}
        if state == "retry" or loop.time() > deadline:
            # The first attempt failed without a known outcome, or is taking too
            # long: go on with its seed (same order number, same update id).
            owner = True
            break
        await asyncio.sleep(POLL)

    try:
        status, model = await work(chosen)
    except BaseException as err:
        if owner:
            retry = not _definitive(err)
            await asyncio.shield(_release(sessions, full_key, chosen, retry))
        raise
    body = model.model_dump(mode="json")
    await _finish(sessions, full_key, chosen, status, body)
    return JSONResponse(body, status_code=status)


def update_id(principal: Principal, route: str, key: str | None) -> str | None:
    """The Temporal update id of a keyed command (Temporal de-duplicates by it)."""
    if key is None:
        return None
    return f"api:{principal.sub}:{route}:{key}"
