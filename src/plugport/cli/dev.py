"""``plugport dev [PATH]``: run a plugin from source with live reload, a stream of what it does
and a local page (see :mod:`plugport.dev`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Literal, cast

import typer

from plugport import _loop
from plugport.cli._output import EXIT_USAGE, err, out
from plugport.cli.runtime import layer_table

__all__ = ["register"]


def dev(  # noqa: PLR0917 one parameter per command-line option
    path: Annotated[Path, typer.Argument(help="The plugin directory.")] = Path("."),
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per line instead of colour.")
    ] = False,
    port: Annotated[
        int, typer.Option("--port", help="Port of the local page on 127.0.0.1 (0: a free one).")
    ] = 0,
    no_page: Annotated[bool, typer.Option("--no-page", help="Serve no page.")] = False,
    sandbox: Annotated[
        str, typer.Option("--sandbox", help="strict (default, as in production) or best-effort.")
    ] = "strict",
    home: Annotated[
        Path | None,
        typer.Option("--home", help="Dev state: storage, settings (default PATH/.plugport-dev)."),
    ] = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Start with empty storage and settings.")
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Settings from a TOML or JSON file, checked against the manifest's config "
            "schema and applied again when the file changes (dev only).",
        ),
    ] = None,
    allow_local: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-local",
            help="HOST:PORT that net.fetch may reach although it is local, e.g. a fake of the "
            "service the plugin talks to (dev only; repeat for several).",
        ),
    ] = None,
) -> None:
    """Run a plugin from its source in the sandbox; reload it on every change; stream its
    logs, capability calls and hook calls; serve a page to call it. Ctrl-C stops it all."""
    from plugport.dev import DevOptions, DevStartError, Stream, run_dev
    from plugport.runtime.sandbox import doctor as probe

    if sandbox not in ("strict", "best-effort"):
        err.print(f"[bold red]error:[/] --sandbox must be strict or best-effort, not {sandbox!r}")
        raise typer.Exit(EXIT_USAGE)
    if not 0 <= port <= 65535:
        err.print(f"[bold red]error:[/] --port must be 0-65535, not {port}")
        raise typer.Exit(EXIT_USAGE)
    stream = Stream(as_json=as_json, out=sys.stdout)
    layers = probe()
    if as_json:
        rows = [{"name": x.name, "available": x.available, "detail": x.detail} for x in layers]
        stream.json("layers", layers=rows, sandbox=sandbox)
    else:
        out.print(layer_table(layers))
    options = DevOptions(
        path=path,
        home=home,
        sandbox=cast(Literal["strict", "best-effort"], sandbox),
        port=None if no_page else port,
        as_json=as_json,
        fresh=fresh,
        config_file=config,
        allow_local=tuple(allow_local or ()),
    )
    try:
        code = _loop.run(run_dev(options, stream))
    except DevStartError as exc:
        for problem in exc.problems:
            stream.json("error", **problem.to_json(), keeping="")
            err.print(f"[bold red]error:[/] {_escape(str(problem))}")
        err.print("plugport dev did not start; fix the above and run it again")
        if as_json:
            sys.stdout.write(json.dumps({"event": "stopped", "exit": EXIT_USAGE}) + "\n")
        raise typer.Exit(EXIT_USAGE) from None
    raise typer.Exit(code)


def _escape(text: str) -> str:
    return text.replace("[", r"\[")


def register(app: typer.Typer) -> None:
    app.command()(dev)
