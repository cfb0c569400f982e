"""The ``plugport`` command line: one Typer app, one module per command group."""

from __future__ import annotations

from typing import Annotated

import typer

from plugport._version import __version__
from plugport.cli import (
    authoring,
    check,
    dev,
    docs,
    host,
    keys,
    lifecycle,
    marketplace,
    namespaces,
    oauth2,
    registry,
    runtime,
    trust,
)
from plugport.cli._output import out

__all__ = ["app", "main"]

app = typer.Typer(
    name="plugport",
    help="Sandboxed plugins for Python applications, and the marketplace to publish them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Markdown, not Rich markup: help texts name TOML tables ([credentials], [python]), which
    # Rich markup would take for style tags and drop; paragraphs rewrap to the terminal
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        out.print(f"plugport {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Sandboxed plugins for Python applications, and the marketplace to publish them."""


authoring.register(app)
check.register(app)
dev.register(app)
keys.register(app)
runtime.register(app)
registry.register(app)
marketplace.register(app)
namespaces.register(app)
lifecycle.register(app)
host.register(app)
oauth2.register(app)
docs.register(app)
trust.register(app)


def main() -> None:
    app()
