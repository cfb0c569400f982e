"""Signing commands: keygen, sign, verify."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from plugport import authoring, signing
from plugport.cli._output import out, passphrase, reporting_errors

__all__ = ["DEFAULT_KEY", "register"]

DEFAULT_KEY = Path("~/.plugport/keys/signing.key")


def keygen(
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Private key file; the public key goes to FILE.pub."),
    ] = DEFAULT_KEY,
    protect: Annotated[
        bool,
        typer.Option("--passphrase", help="Encrypt the key (prompt, or $PLUGPORT_KEY_PASSPHRASE)."),
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace existing key files.")] = False,
) -> None:
    """Create an Ed25519 publisher key pair (private key mode 0600)."""
    target = output.expanduser()
    with reporting_errors():
        secret = passphrase(ask=protect, confirm=True)
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = signing.generate_private_key()
        private, public = signing.write_keypair(target, key, passphrase=secret, overwrite=force)
    out.print(
        f"private key  {private} (mode 0600{', encrypted' if secret else ''}; keep it secret)"
    )
    out.print(f"public key   {public}")
    out.print(f"key id       {signing.key_id(key.public_key())}")


def sign(
    archive: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, help="The .plugport file, or a plugin wheel (.whl)."
        ),
    ],
    key: Annotated[Path, typer.Option("--key", "-k", help="Private key file.")] = DEFAULT_KEY,
    protect: Annotated[
        bool, typer.Option("--passphrase", help="Ask for the key's passphrase.")
    ] = False,
) -> None:
    """Sign an archive or a plugin wheel: writes ARCHIVE.sig binding its name, version, sha256
    and length."""
    with reporting_errors():
        target, facts, keyid = authoring.sign_archive(
            archive, key.expanduser(), passphrase=passphrase(ask=protect)
        )
    out.print(f"signed {facts.name} {facts.version} -> {target}")
    out.print(f"  sha256  {facts.sha256}  ({facts.length} bytes)")
    out.print(f"  key id  {keyid}")


def verify(
    archive: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, help="The .plugport file, or a plugin wheel (.whl)."
        ),
    ],
    key: Annotated[Path, typer.Option("--key", "-k", exists=True, help="Publisher's .pub file.")],
    sig: Annotated[
        Path | None, typer.Option("--sig", help="Signature (default ARCHIVE.sig).")
    ] = None,
) -> None:
    """Check an archive's signature; exit 0 only if archive, statement, signature and key match."""
    with reporting_errors():
        verified = authoring.verify_archive(archive, key, sig)
    facts = verified.facts
    out.print(f"[green]verified[/] {facts.name} {facts.version}")
    out.print(f"  sha256  {facts.sha256}  ({facts.length} bytes)")
    out.print(f"  key id  {verified.keyid}")


def register(app: typer.Typer) -> None:
    for command in (keygen, sign, verify):
        app.command()(command)
