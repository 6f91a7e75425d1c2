"""The AES-GCM payload codec and its key format (starter/payload_codec.py), without a server."""

import base64
import os

import pytest
from pydantic import ValidationError
from temporalio.api.common.v1 import Payload

from settings import Settings
from starter.payload_codec import (
    ENCODING,
    KEY_ID_METADATA,
    EncryptionCodec,
    PayloadDecryptionError,
    PayloadKeyError,
    data_converter,
    fingerprint,
    generate_key,
    parse_payload_keys,
)
from tests.support.catalog import HOME


def _key() -> tuple[str, bytes]:
    raw = os.urandom(32)
    return base64.b64encode(raw).decode(), raw


def _s(**env: str) -> Settings:
    return Settings.model_validate(env)


def _plain(text: str = '{"phone":"13912345678"}') -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=text.encode())


def test_key_format_named_unnamed_and_url_safe() -> None:
    (b1, raw1), (b2, raw2) = _key(), _key()
    keys = parse_payload_keys(f" new:{b1} , {b2.rstrip('=')}")
    assert [k.key_id for k in keys] == ["new", fingerprint(raw2)]
    assert [k.key for k in keys] == [raw1, raw2]
    urlsafe = base64.urlsafe_b64encode(raw1).decode()
    assert parse_payload_keys(urlsafe)[0].key == raw1
    assert parse_payload_keys(generate_key())[0].key_id.startswith("k-")
    assert "key=" not in repr(keys) and b1 not in repr(keys)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "is empty"),
        ("a:" + base64.b64encode(b"short").decode(), "is 5 bytes; AES-256-GCM needs 32"),
        ("a:not base64!", "entry 1 is not base64"),
        (f"a:{_key()[0]},", "entry 2 is empty"),
        (f"a:{_key()[0]},a:{_key()[0]}", "key id 'a' appears twice"),
        (f"bad id:{_key()[0]}", "has key id 'bad id'"),
    ],
)
def test_bad_keys_are_refused_without_echoing_them(text: str, why: str) -> None:
    with pytest.raises(PayloadKeyError, match=why) as err:
        parse_payload_keys(text)
    secret = text.rpartition(":")[2]
    assert len(secret) < 8 or secret not in str(err.value)


def test_settings_check_the_key_at_start() -> None:
    b64, _ = _key()
    assert _s(ORDERS_PAYLOAD_KEY=f"k1:{b64}").payload_keys()[0].key_id == "k1"
    assert Settings().payload_keys() == ()
    assert _s(ORDERS_PAYLOAD_KEY=" ").payload_keys() == ()  # empty: encryption off
    assert b64 not in repr(_s(ORDERS_PAYLOAD_KEY=b64))
    with pytest.raises(ValidationError, match="ORDERS_PAYLOAD_KEY"):
        _s(ORDERS_PAYLOAD_KEY="k1:" + base64.b64encode(b"x" * 16).decode())


def test_codec_origins_dev_explicit_and_from_the_ui_url() -> None:
    assert _s(ORDERS_DEV_LOGIN="1", TEMPORAL_UI_PORT="18233").codec_origins() == [
        "http://127.0.0.1:18233",
        "http://localhost:18233",
    ]
    assert Settings().codec_origins() == []
    ui = _s(ORDERS_TEMPORAL_UI_URL="https://temporal.example.com/ui/")
    assert ui.codec_origins() == ["https://temporal.example.com"]
    both = _s(ORDERS_CODEC_CORS_ORIGINS="https://a.example, https://b.example/")
    assert both.codec_origins() == ["https://a.example", "https://b.example"]


async def test_round_trip_hides_the_plaintext_and_names_the_key() -> None:
    codec = EncryptionCodec(parse_payload_keys(f"k1:{_key()[0]}"))
    plain = _plain(HOME.model_dump_json())
    [sealed] = await codec.encode([plain])
    assert sealed.metadata["encoding"] == ENCODING == b"binary/encrypted"
    assert sealed.metadata[KEY_ID_METADATA] == b"k1"
    raw = sealed.SerializeToString()
    for secret in (HOME.phone, HOME.address, HOME.name, "json/plain"):
        assert secret.encode() not in raw
    again = codec.encrypt(plain)
    assert again.data != sealed.data  # a fresh nonce each time
    assert await codec.decode([sealed, again]) == [plain, plain]


async def test_plain_payloads_pass_through_decode() -> None:
    codec = EncryptionCodec(parse_payload_keys(_key()[0]))
    plain = _plain()
    assert await codec.decode([plain]) == [plain]


async def test_rotation_new_key_encrypts_old_still_decrypts() -> None:
    old_b64, new_b64 = _key()[0], _key()[0]
    before = EncryptionCodec(parse_payload_keys(f"old:{old_b64}"))
    after = EncryptionCodec(parse_payload_keys(f"new:{new_b64},old:{old_b64}"))
    [written_before] = await before.encode([_plain("before")])
    [written_after] = await after.encode([_plain("after")])
    assert written_after.metadata[KEY_ID_METADATA] == b"new"
    decoded = await after.decode([written_before, written_after])
    assert [p.data for p in decoded] == [b"before", b"after"]
    # Once the old key is dropped, what it wrote is refused by name.
    dropped = EncryptionCodec(parse_payload_keys(f"new:{new_b64}"))
    with pytest.raises(PayloadDecryptionError, match=r"key id 'old'.*not among.*\(new\)"):
        await dropped.decode([written_before])


async def test_wrong_key_or_tampering_fails_loudly() -> None:
    codec = EncryptionCodec(parse_payload_keys(f"k1:{_key()[0]}"))
    impostor = EncryptionCodec(parse_payload_keys(f"k1:{_key()[0]}"))
    [sealed] = await codec.encode([_plain()])
    with pytest.raises(PayloadDecryptionError, match="key id 'k1' failed authentication"):
        await impostor.decode([sealed])
    flipped = Payload()
    flipped.CopyFrom(sealed)
    flipped.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    with pytest.raises(PayloadDecryptionError, match="failed authentication"):
        await codec.decode([flipped])
    # The key id is authenticated too: relabelling a payload does not get it decrypted.
    other = parse_payload_keys(f"k1:{_key()[0]},k2:{_key()[0]}")
    relabel = Payload()
    relabel.CopyFrom(sealed)
    relabel.metadata[KEY_ID_METADATA] = b"k2"
    with pytest.raises(PayloadDecryptionError):
        await EncryptionCodec(other).decode([relabel])


async def test_data_converter_is_pydantic_plus_codec() -> None:
    plain = data_converter(())
    assert plain.payload_codec is None
    converter = data_converter(parse_payload_keys(_key()[0]))
    assert isinstance(converter.payload_codec, EncryptionCodec)
    assert converter.payload_converter_class is plain.payload_converter_class
    [payload] = await converter.encode([HOME])
    assert payload.metadata["encoding"] == ENCODING
    assert await converter.decode([payload], [type(HOME)]) == [HOME]
