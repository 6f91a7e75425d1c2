"""The workflow sandbox runner, without two per-call costs of temporalio 1.35's runner.

The sandbox stays on, with the same restrictions and the same isolation: every workflow run
still gets its own module namespace and its own restricted importer. What changes is how the
worker's thread talks to a sandboxed instance. The SDK does that by `exec`-ing a small source
string (`"with __temporal_importer.applied(): ..."`) for each call, which compiles the string
again every time, and it makes such a call for every payload of every activation and completion
(three to four times per payload: codec, external storage, storage references), only to learn
the serialization context the payload codec and external storage would receive.

- Compiled once: the source strings are a handful of constants (plus one per workflow class);
  their code objects are cached, so `exec` runs without compiling (~80 µs a call here).
- No context round trips when nothing uses the context: with no payload codec and no external
  storage on the worker's data converter, every one of those per-payload steps is a no-op
  whatever context it gets, so the instance answers "no context" without entering the sandbox.
  With a codec (ORDERS_PAYLOAD_KEY) or external storage the SDK's path is kept unchanged.

Measured by bench/lifecycle (py-spy, GIL samples of the worker): the two were ~8 % and ~12 % of
the worker's Python CPU. Private SDK names are used (`_Instance`, `_run_code`): temporalio is
pinned, and tests/unit/test_sandbox_runner.py fails if they move.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from types import CodeType
from typing import Any

from temporalio.converter import DataConverter, SerializationContext
from temporalio.converter._extstore import StorageDriverStoreContext
from temporalio.worker import _command_aware_visitor
from temporalio.worker._workflow_instance import WorkflowInstance, WorkflowInstanceDetails
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox._runner import _Instance


@functools.lru_cache(maxsize=256)
def _compiled(code: str) -> CodeType:
    return compile(code, "<string>", "exec")


class _CompiledInstance(_Instance):
    """A sandboxed instance whose calls into the sandbox are compiled once."""

    def _run_code(self, code: str, **extra_globals: Any) -> None:
        # exec() takes a code object as well as a string; the rest is the SDK's.
        super()._run_code(_compiled(code), **extra_globals)  # type: ignore[arg-type]


class _ContextFreeInstance(_CompiledInstance):
    """For a worker whose data converter has no codec and no external storage."""

    def get_serialization_context(
        self, command_info: _command_aware_visitor.CommandInfo | None
    ) -> SerializationContext | None:
        return None

    def get_external_store_context(
        self, command_info: _command_aware_visitor.CommandInfo | None
    ) -> StorageDriverStoreContext:
        return StorageDriverStoreContext(target=None)


def context_free(data_converter: DataConverter | None) -> bool:
    """True when no payload codec and no external storage would see a serialization context."""
    return (
        data_converter is not None
        and data_converter.payload_codec is None
        and data_converter.external_storage is None
    )


@dataclass(frozen=True)
class FastSandboxedWorkflowRunner(SandboxedWorkflowRunner):
    """`SandboxedWorkflowRunner` with compiled sandbox calls; `skip_contexts` for a worker
    whose data converter has no codec and no external storage (see `context_free`)."""

    skip_contexts: bool = False

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        cls = _ContextFreeInstance if self.skip_contexts else _CompiledInstance
        return cls(det, self.runner_class, self.restrictions)
