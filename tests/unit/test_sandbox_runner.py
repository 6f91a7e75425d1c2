"""starter/sandbox.py: the sandbox runner without per-call compiles and, for a worker with no
payload codec, without per-payload serialization-context round trips into the sandbox.

It leans on private names of temporalio's sandbox runner; these tests fail first if an SDK
upgrade moves them. Workflows running through it are covered by every workflow test (they use
`worker.build_worker`) and the replay tests; the codec's path by tests/e2e/test_encryption.py.
"""

import inspect
import os

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import SerializationContext
from temporalio.worker.workflow_sandbox._runner import _Instance

from starter import sandbox
from starter.payload_codec import PayloadKey, data_converter
from worker import PASSTHROUGH, workflow_runner


def test_the_private_sdk_names_it_overrides_still_exist() -> None:
    assert list(inspect.signature(_Instance._run_code).parameters) == [
        "self",
        "code",
        "extra_globals",
    ]
    for name in ("get_serialization_context", "get_external_store_context"):
        assert list(inspect.signature(getattr(_Instance, name)).parameters) == [
            "self",
            "command_info",
        ]


def test_sandbox_calls_are_compiled_once() -> None:
    code = "with x:\n  y = 1\n"
    assert sandbox._compiled(code) is sandbox._compiled(code)


def test_contexts_are_skipped_only_without_codec_and_storage() -> None:
    key = PayloadKey("k1", os.urandom(32))
    assert sandbox.context_free(pydantic_data_converter)
    assert not sandbox.context_free(data_converter([key]))
    assert not sandbox.context_free(None)  # unknown converter (replayer, tests): SDK path
    assert workflow_runner(pydantic_data_converter).skip_contexts
    assert not workflow_runner(data_converter([key])).skip_contexts
    assert not workflow_runner().skip_contexts


def test_the_sandbox_keeps_its_restrictions() -> None:
    runner = workflow_runner(pydantic_data_converter)
    assert isinstance(runner, sandbox.SandboxedWorkflowRunner)
    assert set(PASSTHROUGH) <= set(runner.restrictions.passthrough_modules)
    # The context-free instance answers without entering the sandbox, as the SDK does when
    # there is no context to give.
    answer = sandbox._ContextFreeInstance.get_serialization_context(None, None)  # type: ignore[arg-type]
    assert answer is None or isinstance(answer, SerializationContext)
