"""`python -m starter.api`: serve the HTTP API (settings from the environment)."""

from shutdown import exit_now
from starter.api.app import serve

if __name__ == "__main__":
    serve()
    exit_now(0)
