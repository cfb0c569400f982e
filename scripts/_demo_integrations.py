"""The integrations half of ``make demo``: the nine example plugins in ``examples/`` published to
the demo registry by their own namespace, then one of them end to end — a pull request webhook
from a local fake GitHub, verified by the host, handled by ``plugport.github`` in the sandbox,
passed on as a ``notify.github`` event to ``plugport.slack``, which posts a Block Kit message
to a local fake Slack. Nothing leaves 127.0.0.1."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
from _demo_registry import BOLD, DIM, RESET, Api, Cli, DemoRegistry, fail
from _demo_web import _operation

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
        examples = [
            (p.parent, load_manifest(p.parent)) for p in sorted(EXAMPLES.glob("*/plugport.toml"))
        ]
        published = []
        for example, manifest in examples:
            if "integration" in manifest.categories:
                published.append(_publish(api, token, key, dist, example))
        print(f"  {GREEN}{len(published)} integrations published to {NAMESPACE}{RESET}")
        print(f"{DIM}  ...and the UI examples (widget, page, menu items, field, theme):{RESET}")
        for example, manifest in examples:
            if "integration" not in manifest.categories:
                published.append(_publish(api, token, key, dist, example))
    finally:
        api.close()
    return published


def _publish(api: Api, token: str, key: Path, dist: Path, example: Path) -> str:
    """Pack, sign and publish one example; its name."""
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
    credentials = ", ".join(f"{n} ({c.kind})" for n, c in sorted(manifest.credentials.items()))
    print(f"  {manifest.name:<24} {manifest.version}  credentials: {credentials or '-'}")
    return manifest.name


WORKSPACE = "team"
REPO = "acme/api"
HOOK_SECRET = "demo-webhook-secret"  # noqa: S105 - the demo's own stand-in, set on both sides


def github_to_slack(registry: DemoRegistry, work: Path, cli: Cli) -> None:
    """A workspace in the host service with plugport.github and plugport.slack from the
    registry, both pointed at local fakes by the operator's ``[local-services]``; a pull
    request webhook from the fake GitHub goes in, a Slack message comes out."""
    from plugport.testing.services.github import FakeGitHub
    from plugport.testing.services.slack import FakeSlack

    print(
        f"\n{BOLD}== an integration end to end: GitHub -> plugport.github -> plugport.slack{RESET}"
    )
    print(
        f"{DIM}A local fake GitHub and a local fake Slack (plugport.testing.services) stand in "
        "for the real ones: this machine has no way out. The operator's [local-services] in "
        "the workspace's policy.toml has them answer the two plugins' requests to "
        "api.github.com and slack.com; every other check (grants, credential hosts) runs on "
        f"the real URLs.{RESET}"
    )
    service_dir = registry.data_dir / "host-service"
    token = cli(
        "create a workspace for the team",
        "",
        "host", "workspace", "create", WORKSPACE, "--data-dir", str(service_dir),
        cwd=work,
    ).strip().splitlines()[-1]  # fmt: skip
    with FakeGitHub() as github, FakeSlack() as slack:
        home = service_dir / "workspaces" / WORKSPACE
        policy = (
            "[local-services]\n"
            f'"plugport.github" = {{ "api.github.com" = "{github.address}" }}\n'
            f'"plugport.slack" = {{ "slack.com" = "{slack.address}" }}\n'
        )
        home.mkdir(parents=True, exist_ok=True)  # the workspace opens on its first request
        (home / "policy.toml").write_text(policy)
        print(f"\n$ cat {home.relative_to(work)}/policy.toml")
        print("\n".join(f"  {line}" for line in policy.splitlines()))
        api = f"{registry.url}/api/v1/workspaces/{WORKSPACE}"
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
            _install_and_configure(client, api, github, slack)

            github.add_repo(REPO)
            pull = github.add_pull(REPO, title="Fix login on Safari", author="ada")
            payload = github.pull_request_payload("opened", REPO, pull["number"])
            url = f"{registry.url}/hooks/{WORKSPACE}/plugport.github/events"
            sent = github.send(url, "pull_request", payload, HOOK_SECRET)
            print(f"\n  fake GitHub -> POST {url} (X-GitHub-Event: pull_request, signed)")
            print(f"  <- HTTP {sent.status} {sent.body.decode()}")
            if sent.status != 202:
                fail("the host service did not accept the delivery")
            deadline = time.monotonic() + 30
            while not (slack.posted("general") and github.comments):
                if time.monotonic() > deadline:
                    audit = client.get(f"{api}/audit", params={"limit": 20}).json()
                    fail("no Slack message within 30 s", json.dumps(audit, indent=2))
                time.sleep(0.05)
            [message] = slack.posted("general")
            [comment] = github.comments
            print(
                f"\n  {GREEN}fake Slack received in #general{RESET} (chat.postMessage, bot token):"
            )
            for block in message.get("blocks", []):
                print(f"    [{block['type']}] {_block_text(block)}")
            print(f"  {GREEN}fake GitHub received a comment on {REPO}#{pull['number']}:{RESET}")
            print(f"    {comment['body']}")
            trail = client.get(f"{api}/audit", params={"limit": 50}).json()["items"]
            for row in trail:
                reason = row["detail"].get("reason", "")
                if "local service" in reason:
                    print(f"  audit: {row['subject']}: {reason}")
            _release(client, api, github, slack, pull["number"])


def _release(client: httpx.Client, api: str, github: Any, slack: Any, number: int) -> None:
    """The example workflow ``release``: plugport.github's release notes from the merged pull
    requests (a task), then plugport.slack's post of them (a task), run by the host's queue."""
    github.merge_pull(REPO, number)
    slack.add_channel("releases")  # the bot is a member of it, as an operator would invite it
    flow = (EXAMPLES / "github" / "workflows" / "release.toml").read_text()
    given = {"repo": REPO, "since": "2000-01-01", "channel": "releases"}
    started = client.post(f"{api}/workflows/runs", json={"workflow": flow, "input": given})
    _ok(started)
    run = started.json()
    print(f"\n$ curl -X POST {api}/workflows/runs  # examples/github/workflows/release.toml")
    deadline = time.monotonic() + 60
    while run["state"] not in ("succeeded", "failed", "cancelled", "compensated"):
        if time.monotonic() > deadline:
            fail("the release workflow did not finish within 60 s", json.dumps(run))
        time.sleep(0.05)
        answer = client.get(f"{api}/workflows/runs/{run['id']}")
        _ok(answer)
        run = answer.json()
    steps = ", ".join(f"{s['name']} ({s['task']}): {s['state']}" for s in run["steps"])
    print(f"  workflow run {run['id']}: {run['state']}; {steps}")
    if run["state"] != "succeeded":
        fail("the release workflow failed", json.dumps(run, indent=2))
    [posted] = slack.posted("releases")
    print(f"  {GREEN}fake Slack received the release notes in #releases:{RESET}")
    for block in posted.get("blocks", [])[:3]:
        print(f"    [{block['type']}] {_block_text(block)}")


def _install_and_configure(client: httpx.Client, api: str, github: Any, slack: Any) -> None:
    """Both plugins from the registry (with consent to exactly what each asks), their secrets
    and one setting, through the workspace's API as an operator's tooling would."""
    for name in ("plugport.github", "plugport.slack"):
        body: dict[str, Any] = {"plugin": name}
        refused = _operation(client, api, body)
        body["consent"] = refused["error"]["details"]["added"]
        done = _operation(client, api, body)
        if done["state"] != "succeeded":
            fail(f"installing {name} failed", json.dumps(done))
        print(f"  installed {name} with consent to: {'; '.join(body['consent'])}")
    pat = github.add_token("github_pat_demo_0123456789", login="plugport-bot")
    secrets = {
        ("plugport.github", "webhook_secret"): HOOK_SECRET,
        ("plugport.github", "token"): pat,
        ("plugport.slack", "bot"): slack.bot_token,
    }
    for (plugin, secret), value in secrets.items():
        _ok(client.put(f"{api}/installations/{plugin}/secrets/{secret}", json={"value": value}))
        print(f"  secret {plugin} {secret} set (the plugins never see it)")
    setting = {"value": True}
    _ok(client.put(f"{api}/installations/plugport.github/settings/comment_on_open", json=setting))
    print("  setting plugport.github comment_on_open = true")


def _block_text(block: dict[str, Any]) -> str:
    """One line for a Block Kit block: its text, its fields, or its buttons' labels."""
    parts: list[Any] = [block.get("text")]
    parts += block.get("fields") or []
    parts += [e.get("text") for e in block.get("elements") or [] if isinstance(e, dict)]
    texts = [p.get("text", "") if isinstance(p, dict) else "" for p in parts]
    return " | ".join(t.replace("\n", ": ") for t in texts if t)[:100]


def _ok(response: httpx.Response) -> None:
    if not response.is_success:
        fail(
            f"{response.request.method} {response.request.url}: HTTP {response.status_code}",
            response.text,
        )
