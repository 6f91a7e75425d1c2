"""The deployment files, checked offline (no container engine or cluster on these machines):

- deploy/compose.yaml against the Compose Specification (check-jsonschema's built-in schema),
  and wired as docs/deploy.md says: one-shot schema/namespace/migration steps before the
  service, restart policies, health checks, replicas, the Temporal UI on the codec endpoint;
- deploy/k8s/*.yaml against Kubernetes' own schemas (kubernetes-validate, strict), the KEDA
  ScaledObject against a small schema of ours, and the objects consistent with each other;
- every ORDERS_* / TEMPORAL_* / DATABASE_URL / OTEL_* variable handed to the application
  (compose environment, ConfigMap, Secret, container env, Dockerfile ENV) is a setting of
  settings.py or a standard OpenTelemetry variable: a misspelt name would be silently ignored;
- the image's roles (deploy/entrypoint.sh) start what they say, and the Dockerfile copies
  every package the project has.
"""

import asyncio
import copy
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
from ruamel.yaml import YAML
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    ListSearchAttributesRequest,
    ListSearchAttributesResponse,
)
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from settings import Settings
from starter.api.app import create_app
from starter.dev import SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
K8S = DEPLOY / "k8s"
BIN = Path(sys.executable).parent
APP_IMAGE = re.compile(r"\borders-app\b")

# Variables of the OpenTelemetry SDK specification the SDK itself reads.
OTEL_STANDARD = {
    "OTEL_SDK_DISABLED",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_LOG_LEVEL",
    "OTEL_PROPAGATORS",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_TRACES_EXPORTER",
    "OTEL_METRICS_EXPORTER",
    "OTEL_LOGS_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_CERTIFICATE",
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    "OTEL_BSP_EXPORT_TIMEOUT",
}
CHECKED_PREFIXES = ("ORDERS_", "TEMPORAL_", "OTEL_")

# What we rely on in a ScaledObject (KEDA's CRD is not among Kubernetes' schemas).
SCALED_OBJECT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"}
            },
        },
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "additionalProperties": False,
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {
                        "name": {"type": "string"},
                        "kind": {"type": "string"},
                        "apiVersion": {"type": "string"},
                    },
                },
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "pollingInterval": {"type": "integer", "minimum": 1},
                "cooldownPeriod": {"type": "integer", "minimum": 0},
                "idleReplicaCount": {"type": "integer", "minimum": 0},
                "advanced": {"type": "object"},
                "fallback": {"type": "object"},
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["type", "metadata"],
                        "properties": {
                            "type": {"const": "temporal"},
                            "name": {"type": "string"},
                            "authenticationRef": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {"name": {"type": "string"}},
                            },
                            # KEDA takes every metadata value as a string.
                            "metadata": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                                "required": ["namespace", "taskQueue", "targetQueueSize"],
                                "anyOf": [
                                    {"required": ["endpoint"]},
                                    {"required": ["endpointFromEnv"]},
                                ],
                                "properties": {
                                    "targetQueueSize": {
                                        "type": "string",
                                        "pattern": "^[1-9][0-9]*$",
                                    },
                                    "activationTargetQueueSize": {
                                        "type": "string",
                                        "pattern": "^[0-9]+$",
                                    },
                                    "queueTypes": {
                                        "type": "string",
                                        "pattern": "^(workflow|activity)(,(workflow|activity))?$",
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}
KUSTOMIZATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "resources"],
    "properties": {
        "apiVersion": {"const": "kustomize.config.k8s.io/v1beta1"},
        "kind": {"const": "Kustomization"},
        "resources": {"type": "array", "items": {"type": "string"}},
    },
}


def _yaml_docs(path: Path) -> list[Any]:
    return [d for d in YAML(typ="safe").load_all(path.read_text()) if d is not None]


def _tool(name: str) -> str:
    found = BIN / name
    return str(found) if found.is_file() else (shutil.which(name) or name)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    [doc] = _yaml_docs(COMPOSE)
    assert isinstance(doc, dict)
    return doc


@pytest.fixture(scope="module")
def k8s() -> list[tuple[Path, dict[str, Any]]]:
    docs = [(p, d) for p in sorted(K8S.glob("*.yaml")) for d in _yaml_docs(p)]
    assert docs
    return docs


def _by_kind(docs: list[tuple[Path, dict[str, Any]]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for _, d in docs if d["kind"] == kind}


def _setting_names() -> set[str]:
    return {f.alias or name for name, f in Settings.model_fields.items()}


def unknown_variables(names: set[str]) -> set[str]:
    """Names the application would ignore: not a setting, not a standard OTEL variable."""
    checked = {n for n in names if n.startswith(CHECKED_PREFIXES) or n == "DATABASE_URL"}
    return checked - _setting_names() - OTEL_STANDARD


# --- compose ----------------------------------------------------------------------------------


def _check_compose(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_compose_file_follows_the_compose_specification(tmp_path: Path) -> None:
    ok = _check_compose(COMPOSE)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # The check can fail: the same file with a misspelt service option.
    broken = tmp_path / "compose.yaml"
    text = COMPOSE.read_text()
    assert "stop_grace_period: 40s" in text
    broken.write_text(text.replace("stop_grace_period: 40s", "stop_grace_periods: 40s"))
    bad = _check_compose(broken)
    assert bad.returncode != 0 and "stop_grace_periods" in bad.stdout + bad.stderr


def test_compose_wiring(compose: dict[str, Any]) -> None:
    services: dict[str, Any] = compose["services"]
    app = {n: s for n, s in services.items() if APP_IMAGE.search(str(s.get("image", "")))}
    assert sorted(app) == ["api", "migrate", "worker"]
    assert all(s["build"]["dockerfile"] == "deploy/Dockerfile" for s in app.values())
    assert {n: s["command"] for n, s in app.items()} == {
        "api": ["api"],
        "migrate": ["migrate"],
        "worker": ["worker"],
    }
    # One-shot steps first: schema, namespace and search attributes, migration.
    assert services["migrate"]["restart"] == "no"
    for name in ("api", "worker"):
        s = services[name]
        assert s["restart"] == "unless-stopped"
        assert s["deploy"]["replicas"] >= 2
        assert s["healthcheck"]["test"] and s["stop_grace_period"]
        assert s["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert s["depends_on"]["temporal-setup"]["condition"] == "service_completed_successfully"
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])
    port = services["worker"]["environment"]["ORDERS_WORKER_METRICS_PORT"]
    assert f":{port}/metrics" in " ".join(services["worker"]["healthcheck"]["test"])
    assert services["temporal"]["depends_on"]["temporal-schema"]["condition"] == (
        "service_completed_successfully"
    )
    for name in ("temporal", "temporal-schema", "temporal-setup", "temporal-ui"):
        assert services[name]["image"].startswith("temporalio/"), name
    assert services["temporal"]["environment"]["DB"] == "postgres12"

    # The namespace the app uses is the one registered (the script runs for real below).
    env = services["api"]["environment"]
    setup = "\n".join(services["temporal-setup"]["command"])
    assert f"--namespace {env['TEMPORAL_NAMESPACE']}" in setup
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert env["DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert "@orders-db:5432/" in env["DATABASE_URL"]

    # The Temporal UI decodes payloads through the API, and the API lets the UI's origin in.
    ui = services["temporal-ui"]
    ui_port = ui["ports"][0].split(":")[0]
    api_port = services["api"]["ports"][0].split(":")[0].split("-")[0]
    assert ui["environment"]["TEMPORAL_CODEC_ENDPOINT"] == f"http://localhost:{api_port}/codec"
    assert f"http://localhost:{ui_port}" in env["ORDERS_CODEC_CORS_ORIGINS"].split(",")
    # Production secrets must be given: compose refuses to start without them.
    for secret in ("ORDERS_JWT_SECRET", "ORDERS_WEBHOOK_SECRET", "ORDERS_PAYLOAD_KEY"):
        assert re.fullmatch(r"\$\{" + secret + r":\?.+\}", env[secret]), secret


# --- Kubernetes -------------------------------------------------------------------------------


def test_k8s_manifests_follow_the_kubernetes_schemas(
    k8s: list[tuple[Path, dict[str, Any]]],
) -> None:
    version = kubernetes_validate.latest_version()
    own = {"ScaledObject": SCALED_OBJECT_SCHEMA, "Kustomization": KUSTOMIZATION_SCHEMA}
    kinds = set()
    for path, doc in k8s:
        kinds.add(doc["kind"])
        if doc["kind"] in own:
            jsonschema.validate(doc, own[doc["kind"]])
            with pytest.raises(kubernetes_validate.SchemaNotFoundError):
                kubernetes_validate.validate(doc, version, strict=True)
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as err:
            pytest.fail(f"{path.name}: {doc['kind']}/{doc['metadata']['name']}: {err}")
    assert kinds >= {
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "Job",
        "ScaledObject",
    }
    # The checks can fail: an unknown field, and a ScaledObject with a number where KEDA
    # wants a string.
    deployment = copy.deepcopy(_by_kind(k8s, "Deployment")["orders-api"])
    deployment["spec"]["template"]["spec"]["containers"][0]["lifecycel"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, version, strict=True)
    scaled = copy.deepcopy(_by_kind(k8s, "ScaledObject")["orders-worker"])
    scaled["spec"]["triggers"][0]["metadata"]["targetQueueSize"] = 20
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(scaled, SCALED_OBJECT_SCHEMA)


def _containers(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = doc.get("spec", {})
    pod = spec.get("template", {}).get("spec", {})
    yield from pod.get("containers", [])


def test_k8s_objects_fit_together(k8s: list[tuple[Path, dict[str, Any]]]) -> None:
    config = _by_kind(k8s, "ConfigMap")["orders-config"]["data"]
    secrets = _by_kind(k8s, "Secret")["orders-secrets"]["stringData"]
    deployments = _by_kind(k8s, "Deployment")
    assert sorted(deployments) == ["orders-api", "orders-worker"]
    for name, d in deployments.items():
        pod = d["spec"]["template"]
        assert d["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        [c] = pod["spec"]["containers"]
        assert APP_IMAGE.search(c["image"]), name
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            assert probe in c, (name, probe)
        assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
        assert "preStop" in c["lifecycle"]
        refs = {next(iter(r.values()))["name"] for r in c["envFrom"]}
        assert refs == {"orders-config", "orders-secrets"}
        # Long enough for what the process does on SIGTERM.
        grace = pod["spec"]["terminationGracePeriodSeconds"]
        role = c["args"][0]
        shutdown = int(config[f"ORDERS_{role.upper()}_SHUTDOWN_TIMEOUT"])
        drain = int(config["ORDERS_API_DRAIN_DELAY"]) if role == "api" else 0
        pre_stop = int(c["lifecycle"]["preStop"]["exec"]["command"][-1])
        assert grace > pre_stop + drain + shutdown, name
    api = deployments["orders-api"]["spec"]["template"]
    [api_container] = api["spec"]["containers"]
    assert api_container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api_container["livenessProbe"]["httpGet"]["path"] == "/livez"
    paths = create_app(Settings()).openapi()["paths"]
    assert {"/readyz", "/livez", "/codec/decode"} <= set(paths)
    worker = deployments["orders-worker"]["spec"]["template"]["spec"]["containers"][0]
    assert worker["readinessProbe"]["httpGet"]["port"] == "metrics"
    assert {p["name"]: p["containerPort"] for p in worker["ports"]} == {
        "metrics": int(config["ORDERS_WORKER_METRICS_PORT"])
    }

    service = _by_kind(k8s, "Service")["orders-api"]["spec"]
    assert service["selector"].items() <= api["metadata"]["labels"].items()
    port_names = {p["name"] for p in api_container["ports"]}
    assert {p["targetPort"] for p in service["ports"]} <= port_names

    hpa = _by_kind(k8s, "HorizontalPodAutoscaler")["orders-api"]["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "orders-api",
    }
    assert hpa["minReplicas"] >= 2

    # KEDA watches the queue the workers poll, on the server and namespace they use.
    scaled = _by_kind(k8s, "ScaledObject")["orders-worker"]["spec"]
    assert scaled["scaleTargetRef"]["name"] == "orders-worker"
    assert scaled["minReplicaCount"] >= 1
    [trigger] = scaled["triggers"]
    assert trigger["metadata"]["taskQueue"] == config["ORDERS_TASK_QUEUE"]
    assert trigger["metadata"]["namespace"] == config["TEMPORAL_NAMESPACE"]
    assert trigger["metadata"]["endpoint"] == config["TEMPORAL_ADDRESS"]

    [migrate] = _containers(_by_kind(k8s, "Job")["orders-migrate"])
    assert migrate["args"] == ["migrate"] and APP_IMAGE.search(migrate["image"])
    images = {c["image"] for c in [migrate, api_container, worker]}
    assert len(images) == 1, images

    setup = next(_containers(_by_kind(k8s, "Job")["orders-temporal-setup"]))
    assert {e["name"] for e in setup["env"]} == {"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE"}
    assert setup["image"].startswith("temporalio/admin-tools:")

    # The secret settings live in the Secret, never in the ConfigMap.
    for secret in (
        "DATABASE_URL",
        "ORDERS_JWT_SECRET",
        "ORDERS_WEBHOOK_SECRET",
        "ORDERS_PAYLOAD_KEY",
    ):
        assert secret in secrets and secret not in config
    assert not any(("SECRET" in k or "KEY" in k) for k in config), config

    [kustomization] = [d for _, d in k8s if d["kind"] == "Kustomization"]
    for resource in kustomization["resources"]:
        assert (K8S / resource).is_file(), resource


async def test_temporal_setup_scripts_register_namespace_and_search_attributes(
    dev_env: WorkflowEnvironment,
    compose: dict[str, Any],
    k8s: list[tuple[Path, dict[str, Any]]],
) -> None:
    """The compose and Kubernetes setup scripts, run as written (twice: re-running must be
    harmless) with the `temporal` CLI against a real server, register what the workflows use."""
    services = compose["services"]
    compose_script = "\n".join(services["temporal-setup"]["command"]).replace("$$", "$")
    job = next(_containers(_by_kind(k8s, "Job")["orders-temporal-setup"]))
    scripts = {
        services["api"]["environment"]["TEMPORAL_NAMESPACE"]: compose_script,
        f"k8s-{uuid.uuid4().hex[:8]}": "\n".join(job["args"]),
    }
    address = dev_env.client.service_client.config.target_host
    for namespace, script in scripts.items():
        env = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "TEMPORAL_ADDRESS": address,
            "TEMPORAL_NAMESPACE": namespace,
        }
        for _ in range(2):
            proc = await asyncio.create_subprocess_exec(
                "/bin/sh",
                "-c",
                script,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            async with asyncio.timeout(120):
                out, _ = await proc.communicate()
            assert proc.returncode == 0, (namespace, out.decode())
        listed = await _list_search_attributes(dev_env, namespace)
        keyword = IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
        registered = {n for n, t in listed.custom_attributes.items() if t == keyword}
        assert set(SEARCH_ATTRIBUTES) <= registered, (namespace, dict(listed.custom_attributes))


async def _list_search_attributes(
    env: WorkflowEnvironment, namespace: str
) -> ListSearchAttributesResponse:
    """Asked again (up to 30 s) while the server answers CANCELLED or UNAVAILABLE: seen once on
    a loaded machine right after the scripts registered the namespace, before its caches had it.
    Any other error, or an answer without the attributes, fails the test as before."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return await env.client.operator_service.list_search_attributes(
                ListSearchAttributesRequest(namespace=namespace)
            )
        except RPCError as err:
            transient = err.status in (RPCStatusCode.CANCELLED, RPCStatusCode.UNAVAILABLE)
            if not transient or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


# --- variables --------------------------------------------------------------------------------


def _dockerfile_env() -> set[str]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("ENV "):
            names |= set(re.findall(r"([A-Z][A-Z0-9_]*)=", line))
    return names


def passed_variables(
    compose: dict[str, Any], k8s: list[tuple[Path, dict[str, Any]]]
) -> dict[str, set[str]]:
    """Where each variable handed to the application comes from."""
    found: dict[str, set[str]] = {}

    def add(names: Any, where: str) -> None:
        for name in names:
            found.setdefault(str(name), set()).add(where)

    for name, service in compose["services"].items():
        if APP_IMAGE.search(str(service.get("image", ""))):
            add(service.get("environment", {}), f"compose {name}")
    for path, doc in k8s:
        if doc["kind"] == "ConfigMap":
            add(doc.get("data", {}), path.name)
        elif doc["kind"] == "Secret":
            add({**doc.get("data", {}), **doc.get("stringData", {})}, path.name)
        for c in _containers(doc):
            if APP_IMAGE.search(c["image"]):
                add((e["name"] for e in c.get("env", [])), f"{path.name} {c['name']}")
    add(_dockerfile_env(), "Dockerfile")
    return found


def test_every_variable_passed_is_a_setting(
    compose: dict[str, Any], k8s: list[tuple[Path, dict[str, Any]]]
) -> None:
    passed = passed_variables(compose, k8s)
    assert {"DATABASE_URL", "TEMPORAL_ADDRESS", "ORDERS_PAYLOAD_KEY", "ORDERS_API_HOST"} <= set(
        passed
    )
    unknown = unknown_variables(set(passed))
    assert not unknown, {name: sorted(passed[name]) for name in unknown}
    # The check can fail: a misspelt name, or one that is not ours.
    assert unknown_variables({"ORDERS_PAYLOAD_KEYS", "TEMPORAL_TLS_CLIENT_CERT_PATH"}) == {
        "ORDERS_PAYLOAD_KEYS",
        "TEMPORAL_TLS_CLIENT_CERT_PATH",
    }
    assert unknown_variables({"OTEL_SERVICE_NAME", "PATH", "ORDERS_TASK_QUEUE"}) == set()


# --- the image --------------------------------------------------------------------------------


def test_dockerfile_copies_every_package() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    copied = {
        part.rstrip("/")
        for line in text.splitlines()
        if line.startswith("COPY ") and "--from=" not in line
        for part in line.split()[1:-1]
    }
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    setuptools = project["tool"]["setuptools"]
    packages = [p.rstrip("*") for p in setuptools["packages"]["find"]["include"]]
    modules = [f"{m}.py" for m in setuptools["py-modules"]]
    expected = {p for p in packages if (ROOT / p).is_dir()} | set(modules) | {"alembic.ini"}
    assert expected <= copied, expected - copied
    dockerignore = (ROOT / ".dockerignore").read_text().split()
    assert not expected & set(dockerignore)


@pytest.mark.parametrize(
    ("role", "runs"),
    [
        ("api", "python -m starter.api"),
        ("worker", "python -m worker"),
        ("migrate", "alembic upgrade head"),
        ("sh", "sh"),
    ],
)
def test_image_roles_start_what_they_say(tmp_path: Path, role: str, runs: str) -> None:
    for tool in ("python", "alembic", "sh"):
        stub = tmp_path / tool
        stub.write_text(f'#!/bin/sh\necho "{tool} $*"\n')
        stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ.get('PATH', '')}"}
    out = subprocess.run(
        ["/bin/sh", str(DEPLOY / "entrypoint.sh"), role],
        capture_output=True,
        text=True,
        env=env,
        timeout=10,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == runs
    # The modules the roles name exist.
    assert (ROOT / "starter" / "api" / "__main__.py").is_file()
    assert (ROOT / "worker.py").is_file() and (ROOT / "alembic.ini").is_file()
