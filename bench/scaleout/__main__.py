"""`python -m bench.scaleout`: see bench/scaleout/__init__.py and bench/README.md."""

import asyncio
import sys

from bench.scaleout.cli import main

if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
