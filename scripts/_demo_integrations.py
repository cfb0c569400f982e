"""The integrations half of ``make demo``: the nine example plugins in ``examples/`` published to
the demo registry by their own namespace, then one of them end to end — a pull request webhook
from a local fake GitHub, verified by the host, handled by ``plugport.github`` in the sandbox,
passed on as a ``notify.github`` event to ``plugport.slack``, which posts a Block Kit message
to a local fake Slack. Nothing leaves 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from _demo_registry import BOLD, DIM, RESET, Api, DemoRegistry, fail

from plugport import signing
from plugport.authoring import pack_plugin, sign_archive
from plugport.manifest import load_manifest

GREEN = "\033[32m" if BOLD else ""
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NAMESPACE = "plugport"
OWNER = "examples@plugport.dev"


def publish_examples(registry: DemoRegistry, work: Path) -> list[str]:
    """A trusted ``plugport`` namespace with its own key, and every example packed, signed and
    published to it; returns the names published."""
    print(f"\n{BOLD}== the example integrations{RESET}")
    print(
        f"{DIM}examples/ holds nine real plugins (Slack, Microsoft Teams, Discord, Jira, Linear, "
        "GitHub, GitLab, e-mail, Sentry), each tested against a local fake of its service. They "
        f"are packed, signed with the namespace's key and published like any other.{RESET}"
    )
    api = Api(registry.url)
    try:
        admin = registry.admin_token
        api.call("POST", "/api/v1/namespaces", admin,
                 json={"name": NAMESPACE, "owner": OWNER, "trusted": True})  # fmt: skip
        scoped = {"identity": OWNER, "scopes": [f"publish:{NAMESPACE}"], "description": "demo"}
        token = api.call("POST", "/api/v1/tokens", admin, json=scoped)["token"]
        key = work / "keys" / f"{NAMESPACE}.key"
        signing.write_keypair(key, signing.generate_private_key())
        pem = Path(f"{key}.pub").read_text()
        api.call("POST", f"/api/v1/namespaces/{NAMESPACE}/keys", token,
                 json={"public_key_pem": pem})  # fmt: skip
        dist = work / "dist-examples"
        dist.mkdir()
        published = []
        for example in sorted(p.parent for p in EXAMPLES.glob("*/plugport.toml")):
            manifest = load_manifest(example)
            archive = pack_plugin(example, dist).result.path
            sign_archive(archive, key)
            files = {
                "archive": (archive.name, archive.read_bytes(), "application/zip"),
                "signature": (f"{archive.name}.sig", Path(f"{archive}.sig").read_bytes()),
            }
            done = api.call("POST", f"/api/v1/plugins/{manifest.name}/versions", token, files=files)
            if done["status"] != "published":
                fail(f"{manifest.name} was not published", json.dumps(done))
            credentials = ", ".join(
                f"{n} ({c.kind})" for n, c in sorted(manifest.credentials.items())
            )
            print(f"  {manifest.name:<18} {manifest.version}  credentials: {credentials or '-'}")
            published.append(manifest.name)
    finally:
        api.close()
    print(f"  {GREEN}{len(published)} integrations published to {NAMESPACE}{RESET}")
    return published


def _printable(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)
