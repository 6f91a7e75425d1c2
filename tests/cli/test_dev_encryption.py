"""`make dev` and payload encryption: the dev key under var/ (0600, reused across restarts),
handed to the worker and the API unless the caller set ORDERS_PAYLOAD_KEY, and the Temporal
UI started pointed at the API's codec endpoint (checked on the real `temporal` binary)."""

import os
import socket
import stat
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from settings import Settings
from starter.dev import DevError, child_env, dev_payload_key, make_plan, payloads_line
from starter.payload_codec import parse_payload_keys


def test_dev_key_is_made_once_private_and_reused(tmp_path: Path) -> None:
    var = tmp_path / "var"
    key = dev_payload_key(var)
    path = var / "payload.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(parse_payload_keys(key)[0].key) == 32
    assert dev_payload_key(var) == key  # a restart keeps it: var/temporal.db needs it

    plan = make_plan(Settings(), var=var)
    assert child_env(plan, {})["ORDERS_PAYLOAD_KEY"] == key
    assert "var/payload.key" in payloads_line(plan, {})
    # The caller's own key (or "" for plain payloads) wins.
    assert child_env(plan, {"ORDERS_PAYLOAD_KEY": "mine"})["ORDERS_PAYLOAD_KEY"] == "mine"
    assert child_env(plan, {"ORDERS_PAYLOAD_KEY": ""})["ORDERS_PAYLOAD_KEY"] == ""
    assert "ORDERS_PAYLOAD_KEY is empty" in payloads_line(plan, {"ORDERS_PAYLOAD_KEY": ""})
    assert Settings.model_validate({"ORDERS_PAYLOAD_KEY": ""}).payload_keys() == ()

    other = make_plan(Settings(), var=tmp_path / "elsewhere")
    child_env(other, {"ORDERS_PAYLOAD_KEY": "mine"})
    assert not (tmp_path / "elsewhere" / "payload.key").exists()


def test_a_damaged_dev_key_is_named(tmp_path: Path) -> None:
    (tmp_path / "payload.key").write_text("not a key\n")
    with pytest.raises(DevError, match=r"payload\.key: .*not base64.*delete it"):
        dev_payload_key(tmp_path)


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def test_the_temporal_ui_is_pointed_at_the_codec_endpoint(tmp_path: Path) -> None:
    temporal_port, ui_port, api_port = _free_ports(3)
    settings = Settings.model_validate(
        {
            "TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
            "TEMPORAL_UI_PORT": str(ui_port),
            "ORDERS_API_PORT": str(api_port),
        }
    )
    plan = make_plan(settings, var=tmp_path)
    argv = plan.temporal_argv()
    assert argv[argv.index("--ui-codec-endpoint") + 1] == f"http://127.0.0.1:{api_port}/codec"
    # The API lets the UI's origins call it (dev mode).
    api_settings = Settings.model_validate(
        {"TEMPORAL_UI_PORT": str(ui_port), **child_env(plan, {}), "ORDERS_DEV_LOGIN": "1"}
    )
    assert plan.ui_url in api_settings.codec_origins()

    # The real server and UI take the flag: the UI's settings name the endpoint.
    log = (tmp_path / "temporal.log").open("wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "temporal.log").read_text()[-2000:]
            try:
                r = httpx.get(f"{plan.ui_url}/api/v1/settings", timeout=2)
                if r.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "Temporal UI did not answer within 60 s"
            time.sleep(0.1)
        assert r.json()["Codec"]["Endpoint"] == f"{plan.api_url}/codec"
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
        log.close()
