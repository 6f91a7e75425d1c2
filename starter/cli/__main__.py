"""`python -m starter.cli`: the `orders` command line, as the console script runs it."""

from starter.cli import app

if __name__ == "__main__":
    app()
