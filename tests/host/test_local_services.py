"""Local services: the operator, in ``HOME/policy.toml``, has a local server answer one
plugin's requests to a host (a fake of Slack in a demo, a mock in staging, a machine with no way
out). The URL is checked as the plugin wrote it — its grants, its credential's targets — and
only then sent, over plain HTTP, to the loopback address; each such fetch is audited, nothing
else changes, and nothing a manifest says can set one. Real listeners on 127.0.0.1 only."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from plugport._fetch_rules import FetchPolicy, check_url
from plugport.errors import InvalidInputError, PermissionDeniedError
from plugport.host.policy import local_services, parse_local_services
from tests.conftest import RunCli, snapshot

# --- the policy, decided without I/O --------------------------------------------------------------


def test_the_table_is_read_in_the_brokers_spelling() -> None:
    table = {"acme.slack": {"Slack.com.": "127.0.0.1:8123", "hooks.slack.com": "[0::1]:8124"}}
    assert parse_local_services(table, where="policy.toml") == {
        "acme.slack": {"slack.com": "127.0.0.1:8123", "hooks.slack.com": "[::1]:8124"}
    }


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (["acme.slack"], "[local-services]: must be a table of plugin names"),
        ({"Acme Slack": {}}, "[local-services] 'Acme Slack': not a plugin name"),
        ({"acme.slack": ["127.0.0.1:1"]}, 'must be a table of host = "ADDRESS:PORT"'),
        ({"acme.slack": {"slack.com": 8123}}, 'must be a table of host = "ADDRESS:PORT"'),
        ({"acme.slack": {"*.slack.com": "127.0.0.1:1"}}, "'*.slack.com' is not a host name"),
        ({"acme.slack": {"slack.com:443": "127.0.0.1:1"}}, "is not a host name"),
        ({"acme.slack": {"slack.com": "10.0.0.5:80"}}, "a local service is a loopback address"),
        ({"acme.slack": {"slack.com": "localhost:80"}}, "a local service is a loopback address"),
        ({"acme.slack": {"slack.com": "127.0.0.1"}}, "write HOST:PORT"),
    ],
)
def test_a_bad_table_names_the_file_and_the_key(table: object, message: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_local_services(table, where="policy.toml")
    assert message in str(caught.value)
    assert str(caught.value).startswith("policy.toml [local-services]")


def test_the_url_is_checked_as_written_before_it_is_served() -> None:
    policy = FetchPolicy(allowed=("slack.com",), local_services={"slack.com": "127.0.0.1:8123"})
    target = check_url("https://slack.com/api/chat.postMessage", policy)
    assert (target.host, target.served_by) == ("slack.com", ("127.0.0.1", 8123))
    with pytest.raises(PermissionDeniedError, match="not in the plugin's network grants"):
        check_url("https://hooks.slack.com/x", policy)  # not granted: not served either
    ungranted = FetchPolicy(allowed=(), local_services={"slack.com": "127.0.0.1:8123"})
    with pytest.raises(PermissionDeniedError):
        check_url("https://slack.com/api", ungranted)  # a local service grants nothing


# --- the host, through the CLI --------------------------------------------------------------

POSTER = """\
from plugport.errors import PermissionDeniedError
from plugport.sdk import Plugin, hook


class Main(Plugin):
    @hook("post")
    async def post(self, url, credential=None):
        try:
            response = await self.api.net.fetch(url, method="POST", json={"text": "hi"},
                                                credential=credential)
        except PermissionDeniedError as exc:
            return {"refused": str(exc)}
        return {"status": response.status, "body": response.text(), "url": response.url}
"""

_MANIFEST = """\
name = "acme.slack"
version = "1.0.0"
entry = "main:Main"
display_name = "Slack"
description = "Posts to Slack."

[credentials.bot]
kind = "bearer"
hosts = ["slack.com/api/"]

[permissions]
network = ["slack.com", "hooks.slack.com"]

[contributes]
hooks = { post = 0 }
"""


class _Slack(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, str]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", 0))
        type(self).seen.append(
            {
                "path": self.path,
                "host": self.headers.get("host", ""),
                "authorization": self.headers.get("authorization", ""),
                "body": self.rfile.read(length).decode(),
            }
        )
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def slack() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Slack)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Slack.seen.clear()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _post(run_cli: RunCli, home: list[str], url: str, credential: str = "") -> Any:
    args = ["--arg-str", f"url={url}"] + (
        ["--arg-str", f"credential={credential}"] * bool(credential)
    )
    ran = run_cli("run", "acme.slack", "post", *args, *home)
    assert ran.exit_code == 0, ran.output
    return json.loads(ran.stdout)


@pytest.mark.slow
def test_the_operator_has_a_local_server_answer_for_a_service(
    run_cli: RunCli, tmp_path: Path, slack: int
) -> None:
    source = tmp_path / "slack"
    source.mkdir()
    (source / "main.py").write_text(POSTER)
    (source / "plugport.toml").write_text(_MANIFEST)
    root = tmp_path / "home"
    home = ["--home", str(root)]
    assert run_cli("install", str(source), "--yes", *home).exit_code == 0
    stored = run_cli("secret", "set", "acme.slack", "bot", *home, input="xoxb-local-test")
    assert stored.exit_code == 0, stored.output
    (root / "policy.toml").write_text(
        f'[local-services]\n"acme.slack" = {{ "slack.com" = "127.0.0.1:{slack}" }}\n'
    )
    got = _post(run_cli, home, "https://slack.com/api/chat.postMessage", "bot")
    assert got == {
        "status": 200,
        "body": '{"ok": true}',
        "url": "https://slack.com/api/chat.postMessage",  # the plugin sees the service's URL
    }
    [seen] = _Slack.seen
    assert (seen["path"], seen["host"]) == ("/api/chat.postMessage", "slack.com")
    assert seen["authorization"] == "Bearer xoxb-local-test"  # its credential's target admitted it
    assert json.loads(seen["body"]) == {"text": "hi"}

    # A granted host the operator did not list is not served by the local server (this
    # machine cannot reach the real one, so the fetch fails; nothing arrives locally).
    ran = run_cli("run", "acme.slack", "post", "--arg-str", "url=https://hooks.slack.com/x", *home)
    assert len(_Slack.seen) == 1, ran.output

    audit = run_cli("audit", "--plugin", "acme.slack", "--json", *home)
    reasons = [row["detail"].get("reason", "") for row in json.loads(audit.stdout)]
    assert (
        f"sent to slack.com at 127.0.0.1:{slack}, a local service (fetched "
        "https://slack.com/api/chat.postMessage, HTTP 200), by the operator's [local-services]"
    ) in reasons
    assert not any("xoxb-local-test" in r for r in reasons)


def test_a_bad_table_stops_the_command_naming_file_and_key(run_cli: RunCli, tmp_path: Path) -> None:
    root = tmp_path / "home"
    root.mkdir()
    (root / "policy.toml").write_text(
        '[local-services]\n"acme.slack" = { "slack.com" = "10.1.1.1:80" }\n'
    )
    before = snapshot(root)
    result = run_cli("list", "--home", str(root))
    assert result.exit_code == 1
    assert f"{root / 'policy.toml'} [local-services] 'acme.slack' 'slack.com'" in result.output
    assert snapshot(root) == before
    assert local_services(tmp_path) == {}
