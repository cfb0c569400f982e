"""Runtime commands: doctor (and the layer table ``dev`` shows too)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from plugport.cli._output import EXIT_FAILED, out

if TYPE_CHECKING:
    from plugport.runtime.sandbox import LayerStatus

__all__ = ["layer_table", "register"]


def doctor(
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 if any layer strict mode needs is missing.")
    ] = False,
    syscalls: Annotated[
        bool,
        typer.Option(
            "--syscalls",
            help="Also print the seccomp inventory: every system call, its number on x86_64 "
            "and aarch64, whether it is allowed, allowed only on the worker itself, checked by "
            "argument or refused, and why.",
        ),
    ] = False,
) -> None:
    """Show which sandbox layers this machine offers, and the kernel facts behind each."""
    from plugport.runtime.sandbox import doctor as probe

    layers = probe()
    out.print(layer_table(layers))
    if syscalls:
        _print_syscalls()
    missing = [layer.name for layer in layers if not layer.available]
    if missing:
        out.print(f"strict mode would refuse to start plugins: missing {', '.join(missing)}")
        if strict:
            raise typer.Exit(EXIT_FAILED)
    else:
        out.print("every layer is available: strict mode can run plugins here")


def layer_table(layers: Sequence[LayerStatus]) -> Table:
    """The sandbox layer table ``doctor`` prints (``plugport dev`` prints it at start too)."""
    table = Table(title="Plugport sandbox layers")
    table.add_column("layer")
    table.add_column("available")
    table.add_column("detail")
    for layer in layers:
        mark = "[green]yes[/]" if layer.available else "[red]no[/]"
        table.add_row(layer.name, mark, layer.detail)
    return table


_VERDICTS = {
    "allowed": "[green]allowed[/]",
    "self": "[yellow]worker only[/]",
    "checked": "[yellow]by argument[/]",
    "refused": "[red]refused[/]",
}


def _print_syscalls() -> None:
    from plugport.runtime.sandbox.syscall_policy import NUMBERS, RULES

    table = Table(title="Seccomp inventory (any other number: ENOSYS)")
    for column in ("syscall", "x86_64", "aarch64", "verdict", "otherwise", "why"):
        table.add_column(column)
    x86_64, aarch64 = NUMBERS["x86_64"], NUMBERS["aarch64"]
    order = sorted(RULES.values(), key=lambda rule: (rule.verdict, rule.why, rule.name))
    for rule in order:
        otherwise = "" if rule.verdict == "allowed" else rule.errno_name
        table.add_row(
            rule.name,
            str(x86_64.get(rule.name, "-")),
            str(aarch64.get(rule.name, "-")),
            _VERDICTS[rule.verdict],
            otherwise,
            rule.why,
        )
    out.print(table)


def register(app: typer.Typer) -> None:
    app.command()(doctor)
