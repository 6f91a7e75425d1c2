"""`python -m starter.api`: serve the HTTP API (settings from the environment)."""

from starter.api.app import serve

if __name__ == "__main__":
    serve()
