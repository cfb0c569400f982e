"""``plugport secret``: the operator sets, lists, rotates and deletes plugins' secrets on a host
home, and rotates the master key that encrypts them.

The rule it protects: a value is read from a hidden prompt, a file or stdin, never from the
command line (it would stay in shell history and in ``ps``), and it is never printed."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from plugport.cli._hostcommon import Home, home_dir, resolved, run_host
from plugport.cli._output import EXIT_USAGE, err, out
from plugport.errors import InvalidInputError

__all__ = ["secret_group"]

FromFile = Annotated[
    Path | None,
    typer.Option(
        "--from-file",
        help="Read the value from this file (one trailing newline is dropped).",
        dir_okay=False,
    ),
]
_EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}


def _refuse_argv(ctx: typer.Context) -> None:
    """An extra argument is most likely the value itself: refuse it without echoing it."""
    if ctx.args:
        err.print(
            "[bold red]error:[/] a secret's value is never taken from the command line (it "
            "would stay in shell history and ps); type it at the prompt, or pass --from-file "
            "PATH, or pipe it on stdin"
        )
        raise typer.Exit(EXIT_USAGE)


def _strip_newline(data: bytes) -> bytes:
    for ending in (b"\r\n", b"\n"):
        if data.endswith(ending):
            return data[: -len(ending)]
    return data


def _read_value(from_file: Path | None) -> bytes:
    if from_file is not None:
        try:
            return _strip_newline(from_file.read_bytes())
        except OSError as exc:
            raise InvalidInputError(
                f"--from-file: cannot read {from_file}: {exc.strerror or exc}"
            ) from None
    if not sys.stdin.isatty():
        return _strip_newline(sys.stdin.buffer.read())
    text: str = typer.prompt("Value", hide_input=True, confirmation_prompt=True)
    return text.encode()


def _change(
    plugin: str, name: str, from_file: Path | None, home: Path | None, rotate: bool
) -> None:
    from plugport.cli._output import reporting_errors

    with reporting_errors():
        value = _read_value(from_file)

    def act(host: Any) -> Any:
        return resolved(
            (host.set_secret(plugin, name, value, rotate=rotate), host.state.get(plugin))
        )

    info, installation = run_host(
        home,
        None,
        act,
        sandbox="best-effort",
        plugins=False,
        installed=plugin if rotate else None,
    )
    verb = "rotated" if rotate else "set"
    out.print(f"{verb} {plugin} {name} (fingerprint {info.fingerprint})")
    if installation is None:
        out.print(
            f"note: {plugin} is not installed in {home_dir(home)}; the secret waits for it "
            "(its manifest must declare [credentials." + name + "])"
        )


def secret_set(
    ctx: typer.Context,
    plugin: str,
    name: Annotated[str, typer.Argument(help="The credential's name ([credentials.NAME]).")],
    from_file: FromFile = None,
    home: Home = None,
) -> None:
    """Set a plugin's secret, read from a hidden prompt, --from-file, or stdin when it is not
    a terminal (never from the command line). Stored encrypted; only a fingerprint is shown."""
    _refuse_argv(ctx)
    _change(plugin, name, from_file, home, rotate=False)


def secret_rotate(
    ctx: typer.Context,
    plugin: str,
    name: str,
    from_file: FromFile = None,
    home: Home = None,
) -> None:
    """Replace a secret that is set (refused when it is not), read like secret set."""
    _refuse_argv(ctx)
    _change(plugin, name, from_file, home, rotate=True)


def secret_list(
    plugin: Annotated[str | None, typer.Argument(help="Only this plugin's.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    home: Home = None,
) -> None:
    """The secrets that are set: name, fingerprint, when updated and by whom, last used.
    Never the values."""
    infos = run_host(
        home,
        None,
        lambda host: resolved(host.list_secrets(plugin)),
        sandbox="best-effort",
        plugins=False,
        read_only=True,
    )
    if as_json:
        print(json.dumps([info.__dict__ for info in infos], indent=2))
        return
    if not infos:
        out.print(f"no secrets set in {home_dir(home)}" + (f" for {plugin}" if plugin else ""))
        return
    table = Table("plugin", "name", "fingerprint", "updated", "by", "last used")
    for info in infos:
        table.add_row(
            info.plugin,
            info.name,
            info.fingerprint,
            _when(info.updated_at),
            info.updated_by,
            _when(info.last_used_at) if info.last_used_at else "never",
        )
    out.print(table)


def secret_delete(plugin: str, name: str, home: Home = None) -> None:
    """Delete a plugin's secret; the plugin's next use of it fails until it is set again."""
    _home_exists(home)
    run_host(
        home,
        None,
        lambda host: resolved(host.delete_secret(plugin, name)),
        sandbox="best-effort",
        plugins=False,
    )
    out.print(f"deleted {plugin} {name}")


def rotate_master_key(
    new_key_env: Annotated[
        str | None,
        typer.Option(
            "--new-key-env",
            metavar="NAME",
            help="With PLUGPORT_MASTER_KEY: the variable holding the new key (base64url of "
            "32 bytes). Without it, a new key file is made.",
        ),
    ] = None,
    home: Home = None,
) -> None:
    """Re-encrypt every secret of the home under a new master key, in one transaction. Back up
    master.key and secrets.sqlite together afterwards."""
    from plugport.cli._output import reporting_errors
    from plugport.host.secrets.masterkey import KEY_ENV, decode_key

    _home_exists(home)
    new_key = None
    if new_key_env is not None:
        with reporting_errors():
            if not os.environ.get(new_key_env):
                raise InvalidInputError(f"--new-key-env: ${new_key_env} is not set")
            new_key = decode_key(os.environ[new_key_env], where=f"${new_key_env}")
    new_id = run_host(
        home,
        None,
        lambda host: resolved(host.rotate_master_key(new_key)),
        sandbox="best-effort",
        plugins=False,
    )
    out.print(f"master key rotated; new key id {new_id}")
    if os.environ.get(KEY_ENV):
        out.print(f"now set {KEY_ENV} to the value of ${new_key_env} wherever this host runs")


def _home_exists(home: Path | None) -> None:
    from plugport.cli._output import reporting_errors

    if not home_dir(home).exists():
        with reporting_errors():
            raise InvalidInputError(
                f"there is no host home at {home_dir(home)} (pass --home or set PLUGPORT_HOME)"
            )


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def secret_group() -> typer.Typer:
    group = typer.Typer(
        help="Plugins' secrets (their [credentials]), encrypted in the host home: set, list, "
        "rotate, delete; and the master key's rotation. Values are write-only.",
        no_args_is_help=True,
    )
    group.command("set", context_settings=_EXTRA)(secret_set)
    group.command("list")(secret_list)
    group.command("rotate", context_settings=_EXTRA)(secret_rotate)
    group.command("delete")(secret_delete)
    group.command("rotate-master-key")(rotate_master_key)
    return group
