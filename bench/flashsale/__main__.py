"""`python -m bench.flashsale`: see bench/flashsale/__init__.py and bench/README.md."""

import asyncio
import sys

from bench.flashsale.cli import main

if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
