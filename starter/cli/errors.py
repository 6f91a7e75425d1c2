"""How a command gives up: `fail(message)` anywhere below a command raises CliError, and the
command's `with reported():` prints it in red on stderr and exits with status 1 instead of
a traceback. Bad input that Typer should report as a usage error (exit 2) raises
typer.BadParameter instead.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer


class CliError(Exception):
    pass


def fail(message: str) -> NoReturn:
    raise CliError(message)


@contextmanager
def reported() -> Iterator[None]:
    try:
        yield
    except CliError as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
