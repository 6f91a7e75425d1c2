"""The baseline: a workflow that returns at once (one workflow task, no commands but complete).

Kept in its own tiny module because the sandbox re-imports a workflow's module for every new
run: the baseline must not pay for importing the benchmark's driver.
"""

from temporalio import workflow


@workflow.defn(name="BenchEmpty")
class EmptyWorkflow:
    @workflow.run
    async def run(self) -> None:
        return None
