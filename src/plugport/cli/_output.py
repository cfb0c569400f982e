"""How every command talks to the user: one console for results, one for errors, one exit-code
convention (0 ok, 1 failed or invalid, 2 usage error)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

from plugport.errors import PluginCallError, PlugportError, TrustError

__all__ = ["EXIT_FAILED", "EXIT_USAGE", "err", "out", "passphrase", "reporting_errors"]

EXIT_FAILED = 1
EXIT_USAGE = 2
PASSPHRASE_ENV = "PLUGPORT_KEY_PASSPHRASE"  # noqa: S105 - the name of a variable, not a secret

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


@contextmanager
def reporting_errors() -> Iterator[None]:
    """Turn our exceptions into a red message and exit code 1, at the edge and nowhere else."""
    try:
        yield
    except TrustError as exc:
        err.print(f"[bold red]refused:[/] {_escape(str(exc))}")
        raise typer.Exit(EXIT_FAILED) from None
    except PlugportError as exc:
        err.print(f"[bold red]error:[/] {_escape(str(exc))}")
        if isinstance(exc, PluginCallError) and exc.traceback:
            # The plugin's own frames, paths relative to its code dir; the whole trace is in
            # the host's log.
            err.print(_escape(exc.traceback.rstrip()), style="dim")
        raise typer.Exit(EXIT_FAILED) from None
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        err.print(f"[bold red]error:[/] {_escape(exc.strerror or str(exc))}{_escape(where)}")
        raise typer.Exit(EXIT_FAILED) from None


def _escape(text: str) -> str:
    return text.replace("[", r"\[")


def passphrase(*, ask: bool, confirm: bool = False) -> bytes | None:
    """The key passphrase from ``$PLUGPORT_KEY_PASSPHRASE``, else a hidden prompt when asked."""
    from_env = os.environ.get(PASSPHRASE_ENV)
    if from_env:
        return from_env.encode()
    if not ask:
        return None
    text: str = typer.prompt("Key passphrase", hide_input=True, confirmation_prompt=confirm)
    return text.encode()
