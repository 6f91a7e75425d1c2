"""Where the pages' CSS and script live (served locally: the pages work offline)."""

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
