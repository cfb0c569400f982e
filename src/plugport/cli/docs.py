"""``plugport docs``: build and serve the documentation site of this checkout on 127.0.0.1.

The site's sources (``mkdocs.yml``, ``docs/``) live next to ``src/`` in a source checkout; the
tools that build it are the ``docs`` extra. Either missing is one clear message, before
anything starts.
"""

from __future__ import annotations

import errno
import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.markup import escape

import plugport
from plugport.cli._output import EXIT_FAILED, err, out

__all__ = ["register"]

CONFIG = Path(plugport.__file__).resolve().parents[2] / "mkdocs.yml"
DOCS_PACKAGES = {"mkdocs": "mkdocs", "material": "mkdocs-material", "mkdocstrings": "mkdocstrings"}
DEFAULT_PORT = 8001


def docs(
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, help="Port on 127.0.0.1 to serve on.")
    ] = DEFAULT_PORT,
) -> None:
    """Build the documentation site and serve it on 127.0.0.1 (Ctrl-C stops it)."""
    if not CONFIG.is_file():
        _fail(
            f"no docs site here: {CONFIG} does not exist. The site is built from a source "
            "checkout of Plugport (mkdocs.yml and docs/ next to src/); run this command there."
        )
    missing = [dist for module, dist in DOCS_PACKAGES.items() if not _importable(module)]
    if missing:
        _fail(
            f"the docs extra is not installed (missing {', '.join(missing)}); "
            "install it with: pip install 'plugport[docs]'  (in a checkout: make docs-serve)"
        )
    _check_port_free(port)
    out.print(f"building the docs site from {CONFIG.parent}; serving on http://127.0.0.1:{port}/")
    command = [sys.executable, "-m", "mkdocs", "serve", "-f", str(CONFIG)]
    command += ["--dev-addr", f"127.0.0.1:{port}"]
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    try:
        result = subprocess.run(command, env=env, check=False)
    except KeyboardInterrupt:
        return  # mkdocs got the same Ctrl-C and stopped
    if result.returncode not in (0, -2):
        _fail(f"mkdocs stopped with exit code {result.returncode} (its messages are above)")


def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the server will: a port with only closed connections in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            _fail(f"port {port} on 127.0.0.1 is in use; choose another with --port")


def _fail(message: str) -> NoReturn:
    err.print("[bold red]error:[/]", escape(message))
    raise typer.Exit(EXIT_FAILED)


def register(app: typer.Typer) -> None:
    app.command()(docs)
