"""`python -m tests.e2e.gated_worker`: the real worker (`worker.main`, as `python -m worker`
runs it) with a payment provider that holds every refund until the test opens a gate.

The provider touches `$GATE_DIR/started-<refund id>` when a refund reaches it, then waits for
`$GATE_DIR/open`: so a test knows an activity is in flight and decides when it may finish.
"""

import asyncio
import logging
import os
from pathlib import Path

import worker
from shutdown import exit_now

log = logging.getLogger("tests.gated_provider")


class GatedProvider:
    def __init__(self, gate: Path) -> None:
        self.gate = gate

    async def refund(self, refund_id: str, method: str, amount: str) -> str:
        log.info("refund %s of %s reached the provider", refund_id, amount)
        (self.gate / f"started-{refund_id}").touch()
        while not (self.gate / "open").exists():  # noqa: ASYNC110 (a file is the signal)
            await asyncio.sleep(0.05)
        log.info("refund %s settled", refund_id)
        return f"gated-{refund_id}"


if __name__ == "__main__":
    asyncio.run(worker.main(provider=GatedProvider(Path(os.environ["GATE_DIR"]))))
    exit_now(0)
