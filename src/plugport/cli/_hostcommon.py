"""What the host commands share: the ``--home``/``--registry``/... options, opening a
:class:`~plugport.host.PluginHost` on a home for one action (with consent prompts and a
download progress bar), and the host home's default."""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

from plugport import _loop
from plugport._permissions import is_dangerous
from plugport.cli._output import err, out, reporting_errors
from plugport.errors import InvalidInputError

T = TypeVar("T")

Home = Annotated[
    Path | None,
    typer.Option("--home", help="The host home (default $PLUGPORT_HOME, else ./plugport-home)."),
]
Registry = Annotated[
    list[str] | None,
    typer.Option(
        "--registry", help="Registry URL; repeat for several (default $PLUGPORT_REGISTRY)."
    ),
]
App = Annotated[
    str, typer.Option("--app", envvar="PLUGPORT_APP", help="The host application's name.")
]
AppVersion = Annotated[
    str,
    typer.Option("--app-version", envvar="PLUGPORT_APP_VERSION", help="Its version (PEP 440)."),
]
Offline = Annotated[
    bool, typer.Option("--offline", help="Use only the cache and local archives; no network.")
]
Sandbox = Annotated[
    str,
    typer.Option("--sandbox", envvar="PLUGPORT_SANDBOX", help="strict (default) or best-effort."),
]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Accept the permissions asked for.")]
TrustNewKey = Annotated[
    bool, typer.Option("--trust-new-key", help="Accept a publisher key this host has not seen.")
]


def home_dir(home: Path | None) -> Path:
    return home or Path(os.environ.get("PLUGPORT_HOME") or "plugport-home")


def _registries(given: list[str] | None) -> list[str]:
    if given:
        return given
    env = os.environ.get("PLUGPORT_REGISTRY", "")
    return [url for url in env.split(",") if url.strip()]


POLICY_FILE = "policy.toml"
UNSIGNED_INDEX_ENV = "PLUGPORT_ALLOW_UNSIGNED_INDEX"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def _policy(home: Path) -> dict[str, Any]:
    """``HOME/policy.toml``, the operator's policy for this home (empty when there is none)."""
    from plugport.host.policy import read_policy

    return read_policy(home)


def _preapproved(home: Path) -> Any:
    """``HOME/policy.toml``'s ``[preapproved]`` table (the manifest's permission vocabulary):
    what an unattended install or update may be granted without asking."""
    from pydantic import ValidationError

    from plugport.manifest import Permissions

    policy = _policy(home)
    if "preapproved" not in policy:
        return None
    try:
        return Permissions.model_validate(policy["preapproved"])
    except ValidationError as exc:
        raise InvalidInputError(f"{home / POLICY_FILE}: not a valid policy ({exc})") from None


def _mail(home: Path) -> Any:
    """``HOME/policy.toml``'s ``[mail]`` table: the SMTP relay plugins' ``mail.send`` goes
    through (``None``: no relay, and plugins' mail is refused naming this table). Its password
    is the host's secret ``password-secret`` (``plugport secret set _host NAME``), never here."""
    from plugport.runtime.capabilities.mail import MailRelay

    table = _policy(home).get("mail")
    if table is None:
        return None
    if not isinstance(table, dict):
        raise InvalidInputError(f"{home / POLICY_FILE}: mail must be a [mail] table")
    return MailRelay.from_policy(table, str(home / POLICY_FILE))


def _allow_unsigned_index(home: Path) -> bool:
    """Whether the operator allows plugin wheels from a package index with no signature (and
    no registry listing them): ``allow_unsigned_index = true`` in ``HOME/policy.toml``, or
    ``PLUGPORT_ALLOW_UNSIGNED_INDEX=1`` in the environment (which, when set, decides either
    way). Never a flag of the install
    command: the one who types ``plugport install`` is not necessarily the one who decides."""
    env = os.environ.get(UNSIGNED_INDEX_ENV)
    if env is not None:  # set: it decides, either way
        if env.strip().lower() in _TRUE + _FALSE:
            return env.strip().lower() in _TRUE
        raise InvalidInputError(
            f"{UNSIGNED_INDEX_ENV}={env!r}: write 1 (allow unsigned index installs) or 0"
        )
    value = _policy(home).get("allow_unsigned_index", False)
    if not isinstance(value, bool):
        raise InvalidInputError(
            f"{home / POLICY_FILE}: allow_unsigned_index must be true or false, not {value!r}"
        )
    return value


def _ask(yes: bool) -> Any:
    from plugport.host.consent import ConsentRequest, accept_all, refuse_growth

    if yes:
        return accept_all
    if not sys.stdin.isatty():
        return refuse_growth

    def prompt(request: ConsentRequest) -> bool:
        before = f" (installed: {request.previous_version})" if request.previous_version else ""
        out.print(f"[bold]{request.name} {request.version}[/]{before} asks to:")
        added = [request.publisher] if request.publisher else []
        for line in [*added, *request.added] if request.previous_version else request.lines:
            shown = escape(line)
            out.print(f"  • [bold red]{shown}[/]" if is_dangerous(line) else f"  • {shown}")
        return bool(typer.confirm("Allow?", default=False))

    return prompt


def run_host(
    home: Path | None,
    registry: list[str] | None,
    action: Callable[[Any], Awaitable[T]],
    *,
    app: str = "plugport-cli",
    app_version: str = "0",
    offline: bool = False,
    yes: bool = False,
    sandbox: str = "strict",
    progress: bool = False,
    plugins: bool = True,
    read_only: bool = False,
    installed: str | None = None,
) -> T:
    """``read_only``: the command only reads, so a home that does not exist stays absent (it
    reads as empty) instead of being created. ``installed``: the command changes this
    installed plugin, so a home that does not exist is that plugin's absence, said without
    creating the home."""
    from plugport.host import PluginHost
    from plugport.host.policy import (
        local_services,
        policy_location,
        private_targets,
        trust_policy,
    )

    if installed is not None and not home_dir(home).exists():
        with reporting_errors():
            raise InvalidInputError(
                f"no installed plugin {installed!r}: there is no host home at {home_dir(home)} "
                "(install a plugin first, or pass --home / set PLUGPORT_HOME)"
            )

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        console=err,
        transient=True,
        disable=not progress or not err.is_terminal,
    )
    tasks: dict[str, Any] = {}

    def on_progress(what: str, done: int, total: int) -> None:
        if what not in tasks:
            tasks[what] = bar.add_task(what, total=total)
        bar.update(tasks[what], completed=done)

    async def main() -> T:
        if sandbox not in ("strict", "best-effort"):
            raise InvalidInputError(f"--sandbox: {sandbox!r} is not strict or best-effort")
        trust = trust_policy(home_dir(home))
        host = PluginHost(
            app=app,
            app_version=app_version,
            home=home_dir(home),
            registries=_registries(registry),
            consent=_ask(yes),
            preapproved=_preapproved(home_dir(home)),
            mail=_mail(home_dir(home)),
            allow_unsigned_index=_allow_unsigned_index(home_dir(home)),
            tuf_roots=trust.tuf_roots,
            index_fallback=trust.index_fallback,
            private_targets=private_targets(home_dir(home)),
            local_services=local_services(home_dir(home)),
            private_targets_from=policy_location(home_dir(home)),
            offline=offline,
            sandbox=sandbox,  # type: ignore[arg-type]
            progress=on_progress,
            telemetry=os.environ.get("PLUGPORT_TELEMETRY", "1").lower() not in ("0", "off", "no"),
            read_only=read_only,
            run_tasks=False,  # a command submits; the host service (or the app) runs tasks
        )
        try:
            host.open()
            if plugins:
                await host.start_runtime()
            return await action(host)
        finally:
            await host.stop()

    with reporting_errors(), bar:
        return _loop.run(main())


async def resolved(value: T) -> T:
    return value
