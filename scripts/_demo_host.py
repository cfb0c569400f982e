"""The host half of ``make demo``: a host home that installs from the demo's registry with the
real ``plugport`` CLI, the way an operator would.

It searches, installs a plugin together with the one it depends on, runs a hook in the sandbox,
is refused an install that asks for the network until the operator consents, is refused an
uninstall that would break a dependent, and ends with the audit trail and an update check.
"""

from __future__ import annotations

import json
from pathlib import Path

from _demo_registry import (
    BOLD,
    DIM,
    RESET,
    SAMPLES,
    SENTIMENT,
    SHOWN,
    WORD_COUNT,
    Cli,
    DemoRegistry,
    fail,
)

TEXT = "Ada wrote the first program. Ada was right."
TASK = {"id": "1", "text": TEXT}
WORD_COUNT_TASK = "WORD_COUNT_SUMMARIZE"  # the task type the task-processor template names
PINNED = "1.0.0"  # the notifier version the operator reviewed; 1.1.0 is newer


def main(registry: DemoRegistry, work: Path, cli: Cli) -> None:
    """Every step is ``plugport ...`` in a subprocess; each opens the home, does one thing and
    closes it, so what one step did is what the next one finds."""
    url = registry.url
    home = str(work / "host")  # absolute: the runtime refuses a relative data directory
    where = ("--home", home, "--registry", url)
    needs = next(s for s in SAMPLES if s.name == SENTIMENT).dependencies[WORD_COUNT]
    print(f"\n{BOLD}== a host that installs from the registry{RESET}")
    print(
        f"{DIM}The application's side, with the same CLI: a new host home installs from the "
        "registry above. Each archive is checked against the registry's TUF metadata (from the "
        "root its operator shipped) and its publisher's key (trusted on first use, then "
        "pinned), unpacked, started in the "
        "sandbox and health-checked before it counts as installed; if any step fails, "
        f"everything is rolled back.{RESET}"
    )
    (work / "host").mkdir(exist_ok=True)
    root = work / "registry" / "tuf-root.json"  # written by `plugport registry tuf init`
    (work / "host" / "policy.toml").write_text(
        f'[trust.tuf_roots]\n"{url}" = "{root}"\n', encoding="utf-8"
    )
    cli(
        "how this host will verify the registry",
        "The operator shipped the registry's TUF root in HOME/policy.toml ([trust.tuf_roots]): "
        "what the registry offers is checked with python-tuf from that root.",
        "trust", "status", *where,
        cwd=work,
    )  # fmt: skip
    cli(
        "search",
        "What an operator sees before choosing; the registry ranks, the host only asks.",
        "search", "notifier", *where,
        cwd=work,
    )  # fmt: skip
    text = cli(
        "install a plugin and what it depends on",
        f"{SENTIMENT} declares {WORD_COUNT} {needs} (the plugin written at the start of the "
        "demo): both are resolved, verified and activated together, or neither is. Both ask "
        "for storage and events; --yes is the operator's consent.",
        "install", SENTIMENT, *where, "--yes",
        cwd=work,
    )  # fmt: skip
    for name in (WORD_COUNT, SENTIMENT):
        if f"installed {name} " not in text:
            fail(f"plugport install did not report {name} as installed", text)
    cli(
        "list",
        "The dependency is marked as such: it was not asked for by name.",
        "list", "--home", home,
        cwd=work,
    )  # fmt: skip
    text = cli(
        "process a task in the sandbox",
        f"{WORD_COUNT} declares the task type {WORD_COUNT_TASK}. The payload is checked "
        "against its schema, the task is committed to the home's durable queue, and --wait "
        "runs the queue here until the task's one attempt in a sandboxed worker ends.",
        "task", "submit", WORD_COUNT_TASK, "--payload", json.dumps(TASK), "--wait", "--json",
        "--sandbox", "best-effort", "--home", home,
        cwd=work,
    )  # fmt: skip
    try:
        record = json.loads(text)
    except ValueError:
        fail("plugport task submit did not print JSON", text)
    result = record.get("result") if isinstance(record, dict) else None
    if not isinstance(result, dict) or result.get("words") != len(TEXT.split()):
        fail("the task returned an unexpected word count", text)
    cli(
        "a payload its schema refuses",
        "Refused before anything is queued, naming the field.",
        "task", "submit", WORD_COUNT_TASK, "--payload", '{"id": "2"}', "--home", home,
        expect=1,
        cwd=work,
    )  # fmt: skip
    pinned = f"{SHOWN}=={PINNED}"
    cli(
        "install without consent",
        f"{SHOWN} asks for the network. The demo gives the CLI no terminal to ask on and no "
        "--yes: refused, naming what it wanted, and nothing is installed.",
        "install", pinned, *where,
        expect=1,
        cwd=work,
    )  # fmt: skip
    cli(
        "install with consent",
        f"Pinned to {PINNED}, the version the operator reviewed; --yes grants what it asks.",
        "install", pinned, *where, "--yes",
        cwd=work,
    )  # fmt: skip
    cli(
        "uninstall a dependency",
        f"Refused while {SENTIMENT} needs it; the message says who needs it and why.",
        "uninstall", WORD_COUNT, "--home", home,
        expect=1,
        cwd=work,
    )  # fmt: skip
    cli(
        "the audit trail",
        "Who did what to which plugin, and how it ended, refusals included.",
        "audit", "--home", home,
        cwd=work, env={"COLUMNS": "120"},
    )  # fmt: skip
    cli(
        "check for updates",
        "Asks the registry again (revalidated, not from the cache): the pinned notifier has a "
        "newer version.",
        "check-updates", *where,
        cwd=work,
    )  # fmt: skip
