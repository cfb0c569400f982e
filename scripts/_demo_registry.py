"""The registry half of ``make demo``: a real ``plugport serve`` on 127.0.0.1, filled with two
dozen plugins generated from the templates, then published, reviewed, rated, downloaded and
queried the way its users would.

:func:`serve` starts the server and always stops it; :func:`populate` fills it and returns what
a later step needs to talk to it (URL, admin token, a publisher's token and keys). The first of
each kind of step goes through the real CLI so the reader sees it; the bulk goes through the
same HTTP API (and the library for scaffolding, packing and signing) to keep the demo fast.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import httpx

from plugport import signing
from plugport.authoring import pack_plugin, sign_archive
from plugport.manifest import CATEGORIES
from plugport.scaffold import create_plugin

BOLD, DIM, RED, RESET = "\033[1m", "\033[2m", "\033[31m", "\033[0m"
if not sys.stdout.isatty():
    BOLD = DIM = RED = RESET = ""

DEFAULT_PORT = 8000
HOST_APP, HOST_VERSION, OLD_HOST_VERSION = "myapp", "2.4.0", "1.9"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0

Cli = Callable[..., str]
"""``demo.step``: runs ``plugport ARGS`` as a subprocess, prints it, returns its output."""


# --- the catalogue --------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One plugin of the demo catalogue: a template plus the identity an author would give it.

    ``changes`` maps a version to manifest keys that differ from the first one; ``stars`` has
    one digit per rater (in :data:`RATERS` order, skipping the plugin's own namespace)."""

    name: str
    template: str
    display_name: str
    description: str
    categories: tuple[str, ...]
    tags: tuple[str, ...]
    downloads: int
    stars: str
    network: tuple[str, ...] = ()
    storage: str | None = None
    host_range: str | None = None
    versions: tuple[str, ...] = ("1.0.0",)
    changes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    dependencies: Mapping[str, str] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def short(self) -> str:
        return self.name.split(".", 1)[1]


OWNERS = {
    "acme": "ada@acme.example",
    "northwind": "nora@northwind.example",
    "globex": "hank@globex.example",
    "initech": "peter@initech.example",
    "umbrella": "alice@umbrella.example",
}
TRUSTED = "acme"
REVIEWER = "rita@registry.example"
RATERS = (*OWNERS.values(), REVIEWER)

WORD_COUNT = "acme.word-count"  # packed and signed by the author half of the demo
SHOWN = "northwind.slack-notifier"  # the one generated, packed and signed with the CLI
SENTIMENT = "globex.sentiment"  # depends on WORD_COUNT: the host half installs the pair
PENDING = ("initech.email-digest", "0.9.0")
REJECTED = (
    "umbrella.pii-redactor",
    "1.1.0",
    "1.1.0 adds network access to telemetry.umbrella.example, which a redaction plugin "
    "should not need; remove it or explain it in the description",
)
YANKED = (
    "acme.csv-cleaner",
    "1.1.0",
    "corrupts quoted fields that contain newlines; 1.0.0 is safe",
)
DEPRECATED = ("northwind.hipchat-notifier", "HipChat was shut down in 2019", SHOWN)

SAMPLES = (  # word-count's archive is the author half's; only its popularity is used here
    Sample(WORD_COUNT, "task-processor", "Word Count", "Counts words in text tasks and "
           "finds the most frequent ones.", ("task-processor",), ("tasks", "text"), 20, "4454",
           versions=("0.1.0",)),
    Sample("acme.csv-cleaner", "task-processor", "CSV Cleaner", "Trims whitespace, drops "
           "duplicate rows and normalises dates in CSV text before import.",
           ("data", "task-processor"), ("csv", "cleaning", "import"), 19, "5444",
           host_range=">=1.5", versions=("1.0.0", "1.1.0")),
    Sample("acme.markdown-lint", "task-processor", "Markdown Linter", "Flags broken links, "
           "heading jumps and trailing whitespace in Markdown documents.",
           ("devtools", "task-processor"), ("markdown", "lint", "docs"), 10, "4435"),
    Sample("acme.json-schema-check", "task-processor", "JSON Schema Check", "Validates JSON "
           "payloads in tasks against a schema from the plugin's settings.",
           ("devtools", "data"), ("json", "validation"), 5, "54"),
    Sample("acme.clock-widget", "widget", "World Clock", "A dashboard widget with the time in "
           "up to six cities.", ("ui",), ("clock", "time", "dashboard"), 16, "5545",
           host_range=">=2"),
    Sample("acme.hello-world", "basic", "Hello World", "The smallest useful plugin: greets "
           "whoever the host names. Start here.", ("other",), ("example", "starter"), 7, "44"),
    Sample(SHOWN, "integration", "Slack Notifier", "Posts to a Slack channel when a task is "
           "processed, or on command.", ("integration", "automation"),
           ("slack", "chat", "notifications"), 25, "55545", network=("hooks.slack.com",),
           host_range="<2", versions=("1.0.0", "1.1.0"),
           changes={"1.1.0": {"engines": {HOST_APP: ">=2"}}}),
    Sample("northwind.webhook-relay", "integration", "Webhook Relay", "Forwards host events "
           "to an HTTPS endpoint you configure.", ("integration", "automation"),
           ("webhook", "events"), 8, "434", network=("hooks.example.com",)),
    Sample("northwind.teams-notifier", "integration", "Microsoft Teams Notifier", "Sends task "
           "updates to a Microsoft Teams channel through an incoming webhook.",
           ("integration",), ("teams", "chat", "notifications"), 7, "43",
           network=("outlook.office.com",)),
    Sample(DEPRECATED[0], "integration", "HipChat Notifier", "Sends task updates to a HipChat "
           "room.", ("integration",), ("hipchat", "chat"), 2, "2",
           network=("api.hipchat.com",), host_range="<2"),
    Sample("northwind.weather-widget", "widget", "Weather", "Current conditions and a "
           "three-day forecast for the office, on the dashboard.", ("ui",),
           ("weather", "dashboard"), 13, "4543", network=("api.open-meteo.com",),
           host_range=">=2,<3"),
    Sample("globex.github-issue-sync", "integration", "GitHub Issue Sync", "Mirrors the "
           "host's tasks as GitHub issues, both ways.", ("integration", "devtools"),
           ("github", "issues", "sync"), 17, "5454", network=("api.github.com",),
           storage="4 MiB", versions=("1.0.0", "1.1.0")),
    Sample("globex.jira-bridge", "integration", "Jira Bridge", "Opens Jira tickets for "
           "failed tasks and links them back.", ("integration",), ("jira", "tickets"), 9,
           "433", network=("api.atlassian.com", "*.atlassian.net"), host_range="<2"),
    Sample("globex.build-status", "widget", "Build Status", "The latest CI runs of your "
           "repositories, as a dashboard widget.", ("ui", "devtools"),
           ("ci", "github", "dashboard"), 12, "545", network=("api.github.com",),
           host_range=">=2.2"),
    Sample("globex.image-resizer", "task-processor", "Image Resizer", "Makes thumbnails and "
           "web sizes of images attached to tasks.", ("task-processor", "data"),
           ("images", "thumbnails"), 11, "3443", storage="32 MiB"),
    Sample(SENTIMENT, "task-processor", "Sentiment Scorer", "Scores text tasks from -1 to 1 "
           "and tags angry customer messages; builds on acme.word-count.",
           ("task-processor", "data"), ("nlp", "text", "support"), 5, "34",
           dependencies={WORD_COUNT: ">=0.1,<1"}),
    Sample("initech.pagerduty-alerts", "integration", "PagerDuty Alerts", "Triggers and "
           "resolves PagerDuty incidents when tasks fail or recover.",
           ("integration", "automation"), ("pagerduty", "alerts", "on-call"), 15, "5545",
           network=("events.pagerduty.com",), versions=("1.0.0", "1.1.0")),
    Sample("initech.tps-report", "task-processor", "TPS Report Builder", "Collects processed "
           "tasks into a weekly report, with the new cover sheet.", ("automation",),
           ("reports", "weekly"), 4, "23", host_range="<2"),
    Sample("initech.sprint-burndown", "widget", "Sprint Burndown", "A burndown chart of the "
           "current sprint's tasks, as a dashboard chart.", ("ui",), ("agile", "charts"), 6, "44",
           host_range=">=2.5"),
    Sample(PENDING[0], "integration", "Email Digest", "Emails a daily digest of processed "
           "tasks through SendGrid.", ("integration",), ("email", "digest"), 0, "",
           network=("api.sendgrid.com",), versions=(PENDING[1],)),
    Sample(REJECTED[0], "task-processor", "PII Redactor", "Masks e-mail addresses, phone "
           "numbers and card numbers in text before it is stored.",
           ("security", "task-processor"), ("privacy", "gdpr", "redaction"), 13, "5554",
           versions=("1.0.0", "1.1.0"),
           changes={"1.1.0": {"permissions": {"network": ["telemetry.umbrella.example"]}}}),
    Sample("umbrella.uptime-widget", "widget", "Uptime", "Uptime and response time of your "
           "status page, on the dashboard.", ("ui",), ("monitoring", "status"), 8, "435",
           network=("api.statuspage.io",)),
    Sample("umbrella.audit-export", "integration", "Audit Log Export", "Ships the host's "
           "audit events to your SIEM over HTTPS.", ("security", "integration"),
           ("audit", "siem", "compliance"), 4, "45", network=("input.splunkcloud.com",)),
    Sample("umbrella.secret-scanner", "task-processor", "Secret Scanner", "Finds API keys and "
           "passwords pasted into tasks before anyone else sees them.",
           ("security", "devtools"), ("secrets", "scanning"), 10, "5545"),
)  # fmt: skip

REVIEW_TEXTS = {
    5: ("Does exactly what it says; set up in two minutes.", "Rock solid for months now."),
    4: ("Works well; the settings could be better documented.", "Solid, a few rough edges."),
    3: ("Fine for small jobs, slow on big inputs.",),
    2: ("Half the features are missing.",),
    1: ("Did not work for us at all.",),
}


# --- the server -----------------------------------------------------------------------------


@dataclass
class Server:
    """A ``plugport serve`` subprocess in its own process group."""

    url: str
    data_dir: Path
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def fail(message: str, detail: str = "") -> NoReturn:
    print(f"{RED}{message}{RESET}")
    if detail:
        print("\n".join(f"  | {line}" for line in detail.splitlines()))
    raise SystemExit(1)


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def _any_free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def choose_port() -> int:
    """$PLUGPORT_DEMO_PORT (0: any free port), else 8000, else any free port, said so."""
    wanted = os.environ.get("PLUGPORT_DEMO_PORT", "").strip()
    if wanted:
        if not wanted.isdigit() or int(wanted) > 65535:
            fail(f"PLUGPORT_DEMO_PORT={wanted!r}: give a port number, or 0 for any free port")
        return int(wanted) or _any_free_port()
    if _port_free(DEFAULT_PORT):
        return DEFAULT_PORT
    port = _any_free_port()
    print(f"port {DEFAULT_PORT} is taken; using {port} (set PLUGPORT_DEMO_PORT to choose)")
    return port


def _wait_healthy(server: Server, deadline: float) -> dict[str, Any]:
    """Its /healthz answers, and uvicorn says it bound the port: not some other server that
    already listened there."""
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            fail(
                f"the registry exited with code {server.process.returncode} before it answered",
                server.log_tail(),
            )
        with contextlib.suppress(httpx.HTTPError):
            response = httpx.get(f"{server.url}/healthz", timeout=1)
            log = server.log_tail()
            # uvicorn says so when it binds; with --host-service, serve binds first and says so
            ours = "Uvicorn running on" in log or f"host service at {server.url}" in log
            if response.status_code == 200 and ours:
                health: dict[str, Any] = response.json()
                return health
        time.sleep(0.1)
    fail(
        f"the registry did not answer {server.url}/healthz within {START_TIMEOUT_S:.0f} s",
        server.log_tail(),
    )


def stop(server: Server) -> None:
    """SIGTERM to the whole group (uvicorn shuts down cleanly), SIGKILL if it lingers."""
    if server.process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    try:
        server.process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pass
    finally:  # also when a second Ctrl-C interrupts the wait
        if server.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
            server.process.wait()


@contextlib.contextmanager
def serve(data_dir: Path, port: int) -> Iterator[Server]:
    """``plugport serve`` until the block ends, however it ends (error, Ctrl-C, SIGTERM)."""
    args = ["serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir)]
    args.append("--host-service")  # the workspaces of _demo_web, served beside the registry
    print(f"$ plugport {' '.join(args)}")
    log = data_dir.parent / "registry.log"
    started = time.monotonic()
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "plugport", *args],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the demo, which stops the server itself
            env={
                **os.environ,
                "NO_COLOR": "1",
                "PLUGPORT_HOST_SERVICE_APP": HOST_APP,
                "PLUGPORT_HOST_SERVICE_APP_VERSION": HOST_VERSION,
            },
        )
    server = Server(f"http://127.0.0.1:{port}", data_dir, log, process)
    try:
        health = _wait_healthy(server, started + START_TIMEOUT_S)
        print(
            f"  registry up at {server.url} in {time.monotonic() - started:.1f} s "
            f"(pid {server.pid}, {health['database']} schema {health['schema']}, "
            f"data in {data_dir})"
        )
        yield server
    finally:
        stop(server)


def linger(server: Server) -> None:
    """In a terminal (and not in CI), keep the registry up for the reader until Ctrl-C."""
    stdin = sys.stdin  # None when the demo was started with stdin closed
    if stdin is None or not stdin.isatty() or os.environ.get("CI"):
        return
    print(f"\n{BOLD}Registry running at {server.url} — press Ctrl-C to stop{RESET}")
    try:
        code = server.process.wait()
    except KeyboardInterrupt:
        print("\nstopping the registry")
        return
    fail(f"the registry exited on its own with code {code}", server.log_tail())


# --- plugins --------------------------------------------------------------------------------


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        pairs = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + pairs + " }"
    raise TypeError(f"no TOML for {value!r}")


def dump_toml(data: Mapping[str, Any]) -> str:
    """Enough TOML for a manifest: top-level keys, then one table per top-level mapping."""
    lines = [
        f"{_toml_key(k)} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)
    ]
    for table, body in data.items():
        if isinstance(body, dict):
            lines += ["", f"[{_toml_key(table)}]"]
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in body.items()]
    return "\n".join(lines) + "\n"


def _merge(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        old = merged.get(key)
        merged[key] = (
            _merge(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
        )
    return merged


def manifest_for(sample: Sample, template_manifest: dict[str, Any], version: str) -> dict[str, Any]:
    """The template's manifest with the sample's identity, then its per-version changes."""
    if not set(sample.categories) <= set(CATEGORIES):
        fail(f"{sample.name}: categories {sample.categories} are not all in {CATEGORIES}")
    identity: dict[str, Any] = {
        "version": version,
        "display_name": sample.display_name,
        "description": sample.description,
        "authors": [f"{sample.namespace.capitalize()} <{OWNERS[sample.namespace]}>"],
        "categories": list(sample.categories),
        "tags": list(sample.tags),
    }
    if sample.host_range:
        identity["engines"] = {HOST_APP: sample.host_range}
    permissions: dict[str, Any] = {}
    if sample.network:
        permissions["network"] = list(sample.network)
    if sample.storage:
        permissions["storage"] = sample.storage
    if permissions:
        identity["permissions"] = permissions
    if sample.dependencies:
        identity["dependencies"] = dict(sample.dependencies)
    manifest = _merge(template_manifest, identity)
    for earlier in sample.versions[: sample.versions.index(version) + 1]:
        manifest = _merge(manifest, sample.changes.get(earlier, {}))
    return manifest


def generate(sample: Sample, root: Path) -> dict[str, Any]:
    """Scaffold ``sample`` under ``root``; returns the template's manifest, with its example
    webhook host replaced by the plugin's real one in code and settings."""
    dest = root / sample.short
    if not dest.exists():
        create_plugin(sample.name, sample.template, dest, author=OWNERS[sample.namespace])
    if sample.template == "integration" and sample.network:
        code = dest / sample.short.replace("-", "_") / "plugin.py"
        code.write_text(code.read_text().replace("hooks.example.com", sample.network[0]))
        text = (dest / "plugport.toml").read_text()
        (dest / "plugport.toml").write_text(text.replace("hooks.example.com", sample.network[0]))
    return tomllib.loads((dest / "plugport.toml").read_text())


def pack_and_sign(
    sample: Sample,
    version: str,
    *,
    template_manifest: dict[str, Any],
    root: Path,
    dist: Path,
    key: Path,
) -> Path:
    manifest = manifest_for(sample, template_manifest, version)
    (root / sample.short / "plugport.toml").write_text(dump_toml(manifest))
    archive = pack_plugin(root / sample.short, dist).result.path
    sign_archive(archive, key)
    return archive


# --- the registry's users -------------------------------------------------------------------


@dataclass(frozen=True)
class Publisher:
    """A namespace owner: the token that may publish there and the key that signs for it."""

    namespace: str
    identity: str
    token: str
    key: Path
    public_key: Path


@dataclass(frozen=True)
class DemoRegistry:
    """What the steps after :func:`populate` need to use the running registry."""

    url: str
    admin_token: str
    reviewer_token: str
    publisher: Publisher
    """acme's owner: a trusted namespace whose key signed the author half's archive."""
    publishers: dict[str, Publisher]
    pid: int
    data_dir: Path


class Api:
    """The registry's HTTP API as its users call it; any error status stops the demo."""

    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=30)

    def call(self, method: str, path: str, token: str | None = None, **options: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = self.client.request(method, path, headers=headers, **options)
        if not response.is_success:
            fail(f"{method} {path}: HTTP {response.status_code}", response.text[:2000])
        return response.json() if "json" in response.headers.get("content-type", "") else None

    def close(self) -> None:
        self.client.close()


def _publish(api: Api, archive: Path, token: str) -> dict[str, Any]:
    name = archive.name.rsplit("-", 1)[0]
    files = {
        "archive": (archive.name, archive.read_bytes(), "application/zip"),
        "signature": (f"{archive.name}.sig", Path(f"{archive}.sig").read_bytes()),
    }
    done: dict[str, Any] = api.call("POST", f"/api/v1/plugins/{name}/versions", token, files=files)
    return done


def _bootstrap(
    server: Server, api: Api, work: Path, cli: Cli, admin: str
) -> tuple[dict[str, Publisher], str]:
    """Namespaces with owners and keys, and the reviewer; the CLI for acme and northwind."""
    url = {"PLUGPORT_REGISTRY": server.url}
    print(
        f"{DIM}From here on PLUGPORT_REGISTRY={server.url}; $ADMIN is the token above, and "
        f"$ACME, $NORTHWIND and $REVIEWER are tokens the admin creates below.{RESET}"
    )
    cli(
        "create a trusted namespace",
        "Only admins create namespaces; uploads to a trusted one skip review unless the scan "
        "finds something serious.",
        "namespace", "create", TRUSTED, "--owner", OWNERS[TRUSTED], "--trusted",
        cwd=work, env={**url, "PLUGPORT_TOKEN": admin}, shown_env="PLUGPORT_TOKEN=$ADMIN",
    )  # fmt: skip
    tokens: dict[str, str] = {}
    for namespace, owner in OWNERS.items():
        if namespace != TRUSTED:
            created = {"name": namespace, "owner": owner}
            api.call("POST", "/api/v1/namespaces", admin, json=created)
        scoped = {"identity": owner, "scopes": [f"publish:{namespace}"], "description": "demo"}
        tokens[namespace] = api.call("POST", "/api/v1/tokens", admin, json=scoped)["token"]
    moderator = {"identity": REVIEWER, "scopes": ["review"], "description": "demo moderator"}
    reviewer: str = api.call("POST", "/api/v1/tokens", admin, json=moderator)["token"]
    others = ", ".join(n for n in OWNERS if n != TRUSTED)
    print(
        f"  + namespaces {others} and a publish:<namespace> token for each owner, and a "
        f"review token for {REVIEWER}, over HTTP"
    )

    keys = work / "keys"
    cli(
        "register the publisher key",
        "The key that signed acme.word-count above; the registry refuses archives signed by "
        "any key its namespace has not registered.",
        "namespace", "add-key", TRUSTED, f"keys/{TRUSTED}.key.pub",
        cwd=work, env={**url, "PLUGPORT_TOKEN": tokens[TRUSTED]}, shown_env="PLUGPORT_TOKEN=$ACME",
    )  # fmt: skip
    cli(
        "keygen for another publisher",
        "northwind signs with its own key.",
        "keygen", "-o", "keys/northwind.key",
        cwd=work,
    )  # fmt: skip
    for namespace in OWNERS:
        if namespace in (TRUSTED, "northwind"):
            continue
        signing.write_keypair(keys / f"{namespace}.key", signing.generate_private_key())
    for namespace in OWNERS:
        if namespace == TRUSTED:
            continue
        pem = (keys / f"{namespace}.key.pub").read_text()
        api.call(
            "POST", f"/api/v1/namespaces/{namespace}/keys", tokens[namespace],
            json={"public_key_pem": pem},
        )  # fmt: skip
    print(f"  + keys for {others} registered by their owners, over HTTP")
    publishers = {
        ns: Publisher(ns, OWNERS[ns], tokens[ns], keys / f"{ns}.key", keys / f"{ns}.key.pub")
        for ns in OWNERS
    }
    return publishers, reviewer


def create_admin(data_dir: Path, work: Path, cli: Cli) -> str:
    """The first token comes from the registry's machine, not over HTTP."""
    text = cli(
        "create an admin token",
        "On the registry's machine: the database is migrated and the token printed once.",
        "registry", "create-admin", "--data-dir", str(data_dir),
        cwd=work,
    )  # fmt: skip
    match = re.search(r"^ppt_\S+$", text, re.MULTILINE)
    if match is None:
        fail("registry create-admin printed no token", text)
    return match.group(0)


def enable_tuf(data_dir: Path, work: Path, cli: Cli) -> None:
    """TUF metadata beside the v1 index: root keys offline, online keys for the node."""
    cli(
        "publish TUF metadata",
        "On the registry's machine: root keys (a threshold of 2 of 3, to be kept offline), the "
        "online keys every node shares, and root version 1 for hosts to pin (docs/trust.md).",
        "registry", "tuf", "init", "--root-key-dir", str(work / "root-keys"),
        "--root-keys", "3", "--threshold", "2", "--data-dir", str(data_dir),
        cwd=work,
    )  # fmt: skip


def _published_versions(sample: Sample) -> list[str]:
    """What users may download: not rejected, not pending, not yanked."""
    gone = {PENDING[:2], REJECTED[:2], YANKED[:2]}
    return [v for v in sample.versions if (sample.name, v) not in gone]


def _show_one(
    server: Server, work: Path, cli: Cli, publishers: dict[str, Publisher], reviewer: str
) -> dict[str, Any]:
    """The author's path end to end with the CLI, for the word counter and one new plugin."""
    url = {"PLUGPORT_REGISTRY": server.url}
    acme = {**url, "PLUGPORT_TOKEN": publishers[TRUSTED].token}
    cli(
        "publish",
        "The archive signed above. acme is trusted and the scan found nothing serious, so it "
        "is published at once.",
        "publish", "dist/acme.word-count-0.1.0.plugport",
        cwd=work, env=acme, shown_env="PLUGPORT_TOKEN=$ACME",
    )  # fmt: skip
    sample = next(s for s in SAMPLES if s.name == SHOWN)
    version = sample.versions[0]
    (work / "plugins").mkdir()
    cli(
        "init another plugin",
        "The integration template, for northwind's Slack notifier.",
        "init", SHOWN, "--template", sample.template, "--path", f"plugins/{sample.short}",
        cwd=work,
    )  # fmt: skip
    template = generate(sample, work / "plugins")
    manifest = manifest_for(sample, template, version)
    (work / "plugins" / sample.short / "plugport.toml").write_text(dump_toml(manifest))
    print(
        f"  (edited plugins/{sample.short}/plugport.toml: display_name, description, "
        f"categories, tags, permissions.network = {list(sample.network)}, "
        f"engines.{HOST_APP} = {sample.host_range!r})"
    )
    archive = f"dist/{SHOWN}-{version}.plugport"
    cli("pack it", "", "pack", f"plugins/{sample.short}", "-o", "dist", cwd=work)
    cli(
        "sign it with northwind's key", "", "sign", archive, "--key", "keys/northwind.key", cwd=work
    )
    cli(
        "publish to an untrusted namespace",
        "Scanned and queued: nobody sees it until a reviewer approves it.",
        "publish", archive,
        cwd=work, env={**url, "PLUGPORT_TOKEN": publishers["northwind"].token},
        shown_env="PLUGPORT_TOKEN=$NORTHWIND",
    )  # fmt: skip
    cli(
        "approve it",
        "A token with the review scope publishes it; the reason goes to the audit log.",
        "review", "approve", SHOWN, version, "--reason", "scan clean; only hooks.slack.com",
        cwd=work, env={**url, "PLUGPORT_TOKEN": reviewer}, shown_env="PLUGPORT_TOKEN=$REVIEWER",
    )  # fmt: skip
    return template


def _publish_catalogue(
    api: Api, work: Path, publishers: dict[str, Publisher], shown_template: dict[str, Any]
) -> int:
    """Every other sample version: scaffolded, packed and signed in-process, then uploaded."""
    started = time.monotonic()
    plugins, dist = work / "plugins", work / "dist"
    uploaded: dict[str, list[str]] = {}
    for sample in SAMPLES:
        if sample.name == WORD_COUNT:
            continue
        publisher = publishers[sample.namespace]
        template = shown_template if sample.name == SHOWN else generate(sample, plugins)
        for version in sample.versions:
            if (sample.name, version) == (SHOWN, sample.versions[0]):
                continue
            archive = pack_and_sign(
                sample,
                version,
                template_manifest=template,
                root=plugins,
                dist=dist,
                key=publisher.key,
            )
            done = _publish(api, archive, publisher.token)
            uploaded.setdefault(sample.namespace, []).append(
                f"{sample.short} {version}" + ("" if done["status"] == "published" else "*")
            )
    count = sum(map(len, uploaded.values()))
    print(
        f"\n{BOLD}== the rest of the catalogue: {count} uploads{RESET}\n{DIM}Generated from the "
        "four templates, each given its own name, description, categories, tags, permissions "
        "and host range, packed and signed in-process, and uploaded to the endpoint `plugport "
        f"publish` uses (* waits for review).{RESET}"
    )
    for namespace, versions in uploaded.items():
        print(f"  {namespace:<10} {', '.join(versions)}")
    print(f"  ({time.monotonic() - started:.1f} s)")
    return count


def _review(server: Server, api: Api, work: Path, cli: Cli, registry: DemoRegistry) -> None:
    reviewer = registry.reviewer_token
    queue = api.call("GET", "/api/v1/review/queue", reviewer)
    held = {PENDING[:2], REJECTED[:2]}
    approved = 0
    for item in queue:
        key = (item["version"]["name"], item["version"]["version"])
        if key not in held:
            api.call("POST", "/api/v1/review/{}/{}/approve".format(*key), reviewer,
                     json={"reason": "scan clean; permissions match the description"})  # fmt: skip
            approved += 1
    print(f"\n  + {approved} versions approved by {REVIEWER} over HTTP")
    url = {"PLUGPORT_REGISTRY": server.url}
    as_reviewer = {**url, "PLUGPORT_TOKEN": reviewer}
    name, version, reason = REJECTED
    diff = api.call("GET", f"/api/v1/review/{name}/{version}", reviewer)["permission_diff"]
    cli(
        "reject a version",
        f"Its permission diff against the published version: {json.dumps(diff)}",
        "review", "reject", name, version, "--reason", reason,
        cwd=work, env=as_reviewer, shown_env="PLUGPORT_TOKEN=$REVIEWER",
    )  # fmt: skip
    name, version, reason = YANKED
    cli(
        "yank a version",
        "Resolution skips it from now on; an install pinned to it still works.",
        "yank", name, version, "--reason", reason,
        cwd=work, env={**url, "PLUGPORT_TOKEN": registry.publisher.token},
        shown_env="PLUGPORT_TOKEN=$ACME",
    )  # fmt: skip
    name, reason, replacement = DEPRECATED
    body = {"reason": reason, "replaced_by": replacement}
    print(
        f"\n{BOLD}== deprecate a plugin{RESET}\n"
        f"{DIM}Users are pointed to its replacement; no CLI command for it yet.{RESET}"
    )
    print(
        f"$ curl -X POST -H 'Authorization: Bearer $NORTHWIND' -H 'Content-Type: application/json' "
        f"-d '{json.dumps(body)}' {server.url}/api/v1/plugins/{name}/deprecate"
    )
    done = api.call(
        "POST",
        f"/api/v1/plugins/{name}/deprecate",
        registry.publishers["northwind"].token,
        json=body,
    )
    print(f"  {name}: deprecated ({done['deprecated']}), replaced by {done['replaced_by']}")
    cli(
        "the review queue",
        "One upload was left for a human to look at.",
        "review", "list",
        cwd=work, env=as_reviewer, shown_env="PLUGPORT_TOKEN=$REVIEWER",
    )  # fmt: skip


def _rate_and_download(api: Api, registry: DemoRegistry) -> None:
    """Reviews from the other namespaces' owners and the moderator; downloads and host
    installs in proportion to each plugin's popularity."""
    print(f"\n{BOLD}== ratings and downloads{RESET}")
    print(f"{DIM}So that sorting by rating, downloads and trending has something to sort.{RESET}")
    tokens = {p.identity: p.token for p in registry.publishers.values()}
    tokens[REVIEWER] = registry.reviewer_token
    calls: list[tuple[str, str, str | None, dict[str, Any]]] = []
    reviews = downloads = installs = 0
    for sample in SAMPLES:
        raters = [r for r in RATERS if r != OWNERS[sample.namespace]]
        for index, (rater, digit) in enumerate(zip(raters, sample.stars, strict=False)):
            texts = REVIEW_TEXTS[int(digit)]
            body = {"stars": int(digit), "text": texts[index % len(texts)]}
            path = f"/api/v1/plugins/{sample.name}/reviews"
            calls.append(("PUT", path, tokens[rater], {"json": body}))
            reviews += 1
        versions = _published_versions(sample)
        for index in range(sample.downloads if versions else 0):
            version = versions[0] if index % 3 == 2 else versions[-1]
            path = f"/api/v1/plugins/{sample.name}/versions/{version}/download"
            calls.append(("GET", path, None, {}))
            downloads += 1
        for index in range(sample.downloads // 3):
            event = "uninstall" if index == 4 else "install"
            path = f"/api/v1/plugins/{sample.name}/versions/{versions[-1]}/usage"
            calls.append(("POST", path, None, {"json": {"event": event}}))
            installs += 1
    # Independent requests, as many visitors would send them: a few at a time.
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in pool.map(lambda c: api.call(c[0], c[1], c[2], **c[3]), calls):
            pass
    print(
        f"  + {len(RATERS)} people left {reviews} reviews (1 to 5 stars); {downloads} downloads "
        f"and {installs} host install/uninstall reports recorded"
    )


def _facts(api: Api, registry: DemoRegistry) -> None:
    """What the registry now says about itself, read back through the public API."""
    admin = registry.admin_token
    total = api.call("GET", "/api/v1/plugins", params={"per_page": 1})["total"]
    rejected = api.call("GET", "/api/v1/review/{}/{}".format(*REJECTED[:2]), admin)["version"]
    pending = api.call("GET", "/api/v1/review/{}/{}".format(*PENDING), admin)["version"]
    yanked = api.call("GET", "/api/v1/plugins/{}/versions/{}".format(*YANKED[:2]))
    deprecated = api.call("GET", f"/api/v1/plugins/{DEPRECATED[0]}")
    print(f"\n{BOLD}== the registry now{RESET}")
    print(f"  published   {total} plugins from {len(OWNERS)} namespaces, visible to search")
    print(f"  rejected    {REJECTED[0]} {REJECTED[1]} ({rejected['status']})")
    print(f"  pending     {PENDING[0]} {PENDING[1]} ({pending['status']}, not in search yet)")
    print(f"  yanked      {YANKED[0]} {YANKED[1]}: {yanked['yanked_reason']}")
    print(
        f"  deprecated  {DEPRECATED[0]}: {deprecated['deprecated']}; "
        f"use {deprecated['replaced_by']}"
    )


def populate(server: Server, admin: str, work: Path, cli: Cli) -> DemoRegistry:
    """Namespaces, keys, two dozen plugins, decisions, reviews and downloads."""
    api = Api(server.url)
    try:
        publishers, reviewer = _bootstrap(server, api, work, cli, admin)
        registry = DemoRegistry(
            url=server.url,
            admin_token=admin,
            reviewer_token=reviewer,
            publisher=publishers[TRUSTED],
            publishers=publishers,
            pid=server.pid,
            data_dir=server.data_dir,
        )
        shown_template = _show_one(server, work, cli, publishers, reviewer)
        _publish_catalogue(api, work, publishers, shown_template)
        _review(server, api, work, cli, registry)
        _rate_and_download(api, registry)
        _facts(api, registry)
    finally:
        api.close()
    return registry


# --- queries --------------------------------------------------------------------------------


def _row(item: dict[str, Any]) -> str:
    rating = item["rating"]
    stars = f"{rating['average']:.1f} ({rating['count']})" if rating["count"] else "-"
    note = f"  deprecated: use {item['replaced_by']}" if item["deprecated"] else ""
    return (
        f"    {item['name']:<28} {item['latest_version']:<7} rating {stars:<8} "
        f"{item['downloads']:>3} downloads{note}"
    )


def _curl(url: str, path: str) -> str:
    return f"curl -s '{url}{path}'"


def show_queries(registry: DemoRegistry) -> None:
    """A few searches run for real, then the commands to try while the registry runs."""
    url = registry.url
    print(f"\n{BOLD}== Query the registry{RESET}")
    print(f"{DIM}Search, filters, sorts and resolution are the server's; anyone may ask.{RESET}")
    api = Api(url)
    try:
        for path, why in (
            ("/api/v1/plugins?q=notifier", "words match names, descriptions and tags"),
            ("/api/v1/plugins?category=ui&sort=rating", "widgets, best rated first"),
            (
                f"/api/v1/plugins?host={HOST_APP}&host_version={HOST_VERSION}&per_page=5",
                f"what has a version for {HOST_APP} {HOST_VERSION}; most downloaded first",
            ),
        ):
            found = api.call("GET", path)
            print(f"  $ {_curl(url, path)}   # {why}")
            print(f"    {found['total']} found")
            for item in found["items"]:
                print(_row(item))
        path = f"/api/v1/plugins/{SHOWN}/resolve?host={HOST_APP}&host_version={OLD_HOST_VERSION}"
        chosen = api.call("GET", path)
        print(f"  $ {_curl(url, path)}   # the best version for an older host")
        print(f"    {chosen['version']} (skipped: {'; '.join(chosen['skipped']) or 'none'})")
        categories = api.call("GET", "/api/v1/categories")
        print(f"  $ {_curl(url, '/api/v1/categories')}")
        print("    " + ", ".join(f"{c['name']} {c['count']}" for c in categories))
        has_index = api.client.get("/api/v1/index").status_code == 200
        has_docs = api.client.get("/docs").status_code == 200
    finally:
        api.close()
    print(
        f"\n{BOLD}Try it yourself{RESET} while the registry runs ({DIM}sort= also takes "
        f"downloads, trending, recent and name{RESET}):"
    )
    host = f"host={HOST_APP}&host_version={HOST_VERSION}"
    for path in (
        "/api/v1/plugins?q=slack",
        "/api/v1/plugins?category=security",
        "/api/v1/plugins?tag=dashboard",
        "/api/v1/plugins?permission=network&sort=downloads",
        "/api/v1/plugins?sort=rating",
        f"/api/v1/plugins?{host}",
        f"/api/v1/plugins/{SHOWN}",
        f"/api/v1/plugins/{SHOWN}/resolve?{host}",
        f"/api/v1/plugins/{SHOWN}/reviews",
        f"/api/v1/plugins/{SHOWN}/stats",
        "/api/v1/categories",
        *(["/api/v1/index"] * has_index),
        "/openapi.json",
    ):
        print(f"  curl '{url}{path}'")
    if has_docs:
        print(f"  open {url}/docs    # the same API, interactive")
    print(f"  export PLUGPORT_REGISTRY={url} PLUGPORT_TOKEN={registry.admin_token}")
    print("  plugport review list    # the admin token covers the review scope")
