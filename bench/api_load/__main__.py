"""`python -m bench.api_load`: see bench/api_load/__init__.py and bench/README.md."""

import asyncio
import sys

from bench.api_load.cli import main

if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
