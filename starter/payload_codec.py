"""AES-GCM encryption of every payload the API and the worker send to Temporal.

Workflow inputs, update arguments and results, activity arguments and results, local
activity markers, signals, queries and the summaries shown in the UI are payloads: with
`ORDERS_PAYLOAD_KEY` set they reach Temporal's store encrypted, so customers' addresses and
phone numbers are not readable there (nor in the Temporal UI without the codec endpoint,
`starter/api/routers/codec.py`). Search attributes are not payloads the codec sees: they stay
plain and hold no personal data (order number, customer, supplier and status ids).

Key format (`ORDERS_PAYLOAD_KEY`): comma-separated entries `[key-id:]base64-of-32-bytes`.
The first entry encrypts; every entry decrypts. An entry without an id gets the id
`k-<first 8 hex digits of SHA-256(key)>`, so `NEW,OLD` rotates without naming keys. To rotate:
deploy `new:…,old:…` everywhere, then drop `old` once no open workflow history still needs it
(the longest order lifetime plus the namespace's retention period).

An encrypted payload has metadata `encoding: binary/encrypted` and `encryption-key-id: <id>`;
its data is the 12-byte nonce followed by AES-256-GCM of the original payload (metadata and
data, serialized), authenticated together with the key id. Payloads without that encoding
(written before encryption was turned on) pass through decode unchanged. A payload whose key
id is unknown, or that fails authentication (a wrong key under a known id, tampered bytes),
raises `PayloadDecryptionError` naming the key id: never garbage.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
KEY_SIZE = 32
NONCE_SIZE = 12
KEY_ENV = "ORDERS_PAYLOAD_KEY"
_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class PayloadKeyError(ValueError):
    """ORDERS_PAYLOAD_KEY does not parse (the message never contains key material)."""


class PayloadDecryptionError(Exception):
    """An encrypted payload cannot be decrypted with the configured keys."""


@dataclass(frozen=True)
class PayloadKey:
    key_id: str
    key: bytes = field(repr=False)


def fingerprint(key: bytes) -> str:
    return "k-" + hashlib.sha256(key).hexdigest()[:8]


def generate_key() -> str:
    """A new key in ORDERS_PAYLOAD_KEY's format (one entry, id derived from the key)."""
    return base64.b64encode(os.urandom(KEY_SIZE)).decode("ascii")


def decode_base64(text: str) -> bytes:
    """Standard or URL-safe base64, padding optional (as protobuf JSON accepts)."""
    text = text.strip().replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    return base64.b64decode(text, validate=True)


def parse_payload_keys(text: str) -> tuple[PayloadKey, ...]:
    """`[id:]base64[,[id:]base64...]` → keys, the encrypting one first."""
    keys: list[PayloadKey] = []
    entries = [e.strip() for e in text.split(",")]
    if not any(entries):
        raise PayloadKeyError(f"{KEY_ENV} is empty")
    for n, entry in enumerate(entries, start=1):
        if not entry:
            raise PayloadKeyError(f"{KEY_ENV}: entry {n} is empty")
        key_id, sep, encoded = entry.rpartition(":")
        try:
            key = decode_base64(encoded)
        except (binascii.Error, ValueError):
            raise PayloadKeyError(f"{KEY_ENV}: entry {n} is not base64") from None
        if len(key) != KEY_SIZE:
            raise PayloadKeyError(
                f"{KEY_ENV}: entry {n} is {len(key)} bytes; AES-256-GCM needs {KEY_SIZE} "
                "(generate one with: python -c 'import os,base64; "
                "print(base64.b64encode(os.urandom(32)).decode())')"
            )
        if not sep:
            key_id = fingerprint(key)
        if not _KEY_ID.match(key_id):
            raise PayloadKeyError(
                f"{KEY_ENV}: entry {n} has key id {key_id!r}; use 1-64 of A-Z a-z 0-9 . _ -"
            )
        if any(k.key_id == key_id for k in keys):
            raise PayloadKeyError(f"{KEY_ENV}: key id {key_id!r} appears twice")
        keys.append(PayloadKey(key_id, key))
    return tuple(keys)


def _aad(key_id: str) -> bytes:
    return b"orders-payload/v1:" + key_id.encode("ascii")


class EncryptionCodec(PayloadCodec):
    """Encrypts with the first key; decrypts with whichever key the payload names."""

    def __init__(self, keys: Sequence[PayloadKey]) -> None:
        if not keys:
            raise PayloadKeyError("at least one key is needed to encrypt")
        self.primary = keys[0].key_id
        self._ciphers = {k.key_id: AESGCM(k.key) for k in keys}

    @property
    def key_ids(self) -> list[str]:
        return list(self._ciphers)

    def encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_SIZE)
        sealed = self._ciphers[self.primary].encrypt(
            nonce, payload.SerializeToString(), _aad(self.primary)
        )
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_METADATA: self.primary.encode("ascii")},
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode("ascii", "replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PayloadDecryptionError(
                f"payload encrypted with key id {key_id!r}, which is not among the "
                f"configured keys ({', '.join(self._ciphers)}); add it to {KEY_ENV}"
            )
        data = payload.data
        try:
            plain = cipher.decrypt(data[:NONCE_SIZE], data[NONCE_SIZE:], _aad(key_id))
        except InvalidTag:
            raise PayloadDecryptionError(
                f"payload under key id {key_id!r} failed authentication: the configured key "
                "with that id is not the one it was encrypted with, or the data was altered"
            ) from None
        decoded = Payload()
        decoded.ParseFromString(plain)
        return decoded

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]


def data_converter(keys: Sequence[PayloadKey]) -> DataConverter:
    """The pydantic converter, with the encryption codec when there are keys."""
    if not keys:
        return pydantic_data_converter
    return dataclasses.replace(pydantic_data_converter, payload_codec=EncryptionCodec(keys))
