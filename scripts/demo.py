"""``make demo``: a freshly generated plugin walked through the author's workflow.

init -> validate -> pack (twice, to show it is reproducible) -> keygen -> sign -> verify, then
one tampered copy that verification refuses; the archive installed and run in the sandbox next
to a hostile plugin; then a real registry on 127.0.0.1 filled with two dozen sample plugins,
published, reviewed, rated and queried; last, a host home that installs two of them (one
depending on the other) from that registry, runs a hook in the sandbox and shows its audit
trail; then the nine example integrations published, and a pull request webhook from a local
fake GitHub carried by two of them to a local fake Slack. Every step is the real CLI, runtime or
server; the output is its own.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

BOLD, DIM, GREEN, RED, RESET = "\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[0m"
if not sys.stdout.isatty():
    BOLD = DIM = GREEN = RED = RESET = ""


def step(
    title: str,
    why: str,
    *args: str,
    expect: int = 0,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    shown_env: str = "",
) -> str:
    """Run ``plugport ARGS`` and show it; ``shown_env`` is how the command line names ``env``
    (``PLUGPORT_TOKEN=$ADMIN`` rather than the token itself)."""
    print(f"\n{BOLD}== {title}{RESET}" + (f"\n{DIM}{why}{RESET}" if why else ""))
    print(f"$ {shown_env + ' ' if shown_env else ''}plugport {shlex.join(args)}")
    result = subprocess.run(
        [sys.executable, "-m", "plugport", *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,  # never a prompt: the same output in a terminal and in CI
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "100", **(env or {})},
    )
    text = (result.stdout + result.stderr).rstrip()
    print("\n".join(f"  {line}" for line in text.splitlines()))
    if result.returncode != expect:
        print(f"{RED}unexpected exit code {result.returncode} (wanted {expect}){RESET}")
        sys.exit(1)
    print(f"{GREEN}exit {result.returncode}, as expected{RESET}")
    return text


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds like Ctrl-C: the registry stops, files go


def main() -> None:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    work = Path(tempfile.mkdtemp(prefix="plugport-demo-"))
    try:
        run(work)
        run_registry(work)
    except KeyboardInterrupt:
        print(f"\n{RED}interrupted{RESET}: what the demo started is stopped, {work} removed")
        sys.exit(130)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{BOLD}Demo complete.{RESET} Next: `make test` runs the whole suite.")


def run(work: Path) -> None:
    archive = "dist/acme.word-count-0.1.0.plugport"
    step(
        "init",
        "Generate a task-processor plugin from a template.",
        "init",
        "acme.word-count",
        "--template",
        "task-processor",
        cwd=work,
    )
    step(
        "validate",
        "Manifest schema, entry class, hooks implemented, risky imports.",
        "validate",
        "word-count",
        cwd=work,
    )
    (work / "dist").mkdir()
    first = step(
        "pack",
        "Sorted entries, fixed timestamps and modes: a reproducible archive.",
        "pack",
        "word-count",
        "-o",
        "dist",
        cwd=work,
    )
    os.utime(work / "word-count" / "plugport.toml", (0, 0))
    second = step(
        "pack again",
        "Touching files changes nothing: same bytes, same sha256.",
        "pack",
        "word-count",
        "-o",
        "dist",
        cwd=work,
    )
    same = first.splitlines()[-1] == second.splitlines()[-1]
    print(f"  {GREEN if same else RED}sha256 identical across packs: {same}{RESET}")
    if not same:
        sys.exit(1)
    step(
        "keygen",
        "An Ed25519 publisher key; the private half is written with mode 0600.",
        "keygen",
        "-o",
        "keys/acme.key",
        cwd=work,
    )
    step(
        "sign",
        "A signature over name, version, sha256 and length.",
        "sign",
        archive,
        "--key",
        "keys/acme.key",
        cwd=work,
    )
    step(
        "verify",
        "What a host does before it installs anything.",
        "verify",
        archive,
        "--key",
        "keys/acme.key.pub",
        cwd=work,
    )
    tampered = work / "dist" / "tampered.plugport"
    data = bytearray((work / archive).read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered.write_bytes(bytes(data))
    shutil.copy(work / f"{archive}.sig", work / "dist" / "tampered.plugport.sig")
    step(
        "verify a tampered copy",
        "One byte flipped in the archive: refused, and it says why.",
        "verify",
        "dist/tampered.plugport",
        "--key",
        "keys/acme.key.pub",
        expect=1,
        cwd=work,
    )
    bad = work / "bad"
    shutil.copytree(work / "word-count", bad)
    manifest = (bad / "plugport.toml").read_text()
    manifest = manifest.replace('version = "0.1.0"', 'version = "0.1.x"')
    manifest = manifest.replace("description =", "descripton =", 1)
    manifest = manifest.replace('storage = "1 MiB"', 'storage = "1 MiB"\nfilesystem = ["/"]')
    (bad / "plugport.toml").write_text(manifest)
    step(
        "validate a broken manifest",
        "Bad version, unknown permission, typo'd key: three precise errors.",
        "validate",
        "bad",
        expect=1,
        cwd=work,
    )
    print(f"\n{BOLD}== run it in the sandbox{RESET}")
    print(
        f"{DIM}A host installs the signed archive and runs it next to a hostile plugin; every "
        f"attempt to escape is refused and audited, and its crash never reaches the host.{RESET}"
    )
    sys.path.insert(0, str(Path(__file__).parent))
    import _demo_runtime

    _demo_runtime.main(work / archive, work)


def run_registry(work: Path) -> None:
    """Serve a registry, fill it, query it; it stops when the block ends, however it ends."""
    print(f"\n{BOLD}== a registry with sample plugins{RESET}")
    print(
        f"{DIM}The marketplace side: `plugport serve` on 127.0.0.1, namespaces with publisher "
        f"keys, two dozen plugins from the templates, review decisions, ratings and "
        f"downloads.{RESET}"
    )
    sys.path.insert(0, str(Path(__file__).parent))
    import _demo_registry as registry

    port = registry.choose_port()
    data_dir = work / "registry"
    admin = registry.create_admin(data_dir, work, step)
    registry.enable_tuf(data_dir, work, step)
    print()
    with registry.serve(data_dir, port) as server:
        filled = registry.populate(server, admin, work, step)
        registry.show_queries(filled)
        # Anything that needs the running registry (filled.url, .admin_token, .publisher) goes
        # here, before linger() keeps it up for a reader at a terminal.
        import _demo_host

        _demo_host.main(filled, work, step)
        import _demo_web

        _demo_web.main(filled, work, step)
        import _demo_integrations

        _demo_integrations.publish_examples(filled, work)
        _demo_integrations.github_to_slack(filled, work, step)
        import _demo_ui

        _demo_ui.main(filled, work, step)
        registry.linger(server)


if __name__ == "__main__":
    main()
