"""`python -m bench.lifecycle`: see bench/lifecycle/__init__.py and bench/README.md."""

import asyncio
import sys

from bench.lifecycle.cli import main

if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
