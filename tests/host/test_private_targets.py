"""Private targets on purpose: the operator, in ``HOME/policy.toml``, lets one plugin reach
exact private ``host:port`` endpoints (an on-premises Jira); every fetch that uses the
allowance is audited, a refusal quotes the policy line that would lift it, and nothing a
plugin's manifest says can grant one. Real listeners on 127.0.0.1 and [::1] only."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from plugport._fetch_rules import FetchPolicy, check_address, check_url
from plugport.errors import InvalidInputError, PermissionDeniedError
from plugport.host.policy import parse_private_targets, policy_location, private_targets
from plugport.manifest import Permissions, parse_manifest
from tests.conftest import RunCli, snapshot

# --- the policy, decided without I/O --------------------------------------------------------------


def test_the_policy_table_is_read_in_the_brokers_spelling() -> None:
    table = {
        "acme.jira": ["10.0.0.5:8443", "Jira.Internal.:443", "[0:0::1]:7000", "10.0.0.5:8443"],
        "acme.wiki": [],
    }
    assert parse_private_targets(table, where="policy.toml") == {
        "acme.jira": ("10.0.0.5:8443", "jira.internal:443", "[::1]:7000"),
        "acme.wiki": (),
    }


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (["acme.jira"], "policy.toml [private-targets]: must be a table of plugin names"),
        ({"Acme Jira": ["10.0.0.5:443"]}, "[private-targets] 'Acme Jira': not a plugin name"),
        ({"acme.jira": "10.0.0.5:443"}, "'acme.jira': must be a list of \"HOST:PORT\" strings"),
        ({"acme.jira": [443]}, "'acme.jira': must be a list of \"HOST:PORT\" strings"),
        ({"acme.jira": ["10.0.0.5"]}, "'10.0.0.5': write HOST:PORT"),
        ({"acme.jira": ["jira.internal"]}, "(the port is always written)"),
        ({"acme.jira": ["10.0.0.5:0"]}, "the port must be a number from 1 to 65535"),
        ({"acme.jira": ["::1:80"]}, "an IPv6 address goes in brackets"),
        ({"acme.jira": ["http://10.0.0.5:80"]}, "'acme.jira'"),
    ],
)
def test_a_bad_policy_names_the_file_and_the_key(table: object, message: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_private_targets(table, where="policy.toml")
    assert message in str(caught.value)
    assert str(caught.value).startswith("policy.toml [private-targets]")


def test_the_policy_file_is_read_from_the_home(tmp_path: Path) -> None:
    assert private_targets(tmp_path) == {}  # no file: nothing allowed
    (tmp_path / "policy.toml").write_text('[private-targets]\n"acme.jira" = ["10.0.0.5:8443"]\n')
    assert private_targets(tmp_path) == {"acme.jira": ("10.0.0.5:8443",)}
    (tmp_path / "policy.toml").write_text("[private-targets]\nacme.jira = ['10.0.0.5:8443']\n")
    with pytest.raises(InvalidInputError, match="not a plugin name"):
        private_targets(tmp_path)  # a bare dotted key is a nested table, not the name
    (tmp_path / "policy.toml").write_text("[private-targets\n")
    with pytest.raises(InvalidInputError, match=r"policy\.toml: not a valid policy"):
        private_targets(tmp_path)


def test_a_refusal_quotes_the_policy_line_that_would_lift_it() -> None:
    where = "[private-targets] in /srv/home/policy.toml"
    policy = FetchPolicy(allowed=(), local_endpoints=("127.0.0.1:8080",), local_policy=where)
    assert check_url("http://127.0.0.1:8080/", policy).local
    with pytest.raises(PermissionDeniedError) as caught:
        check_url("http://127.0.0.1:9090/x", policy, plugin="acme.jira")
    line = '`"acme.jira" = ["127.0.0.1:8080", "127.0.0.1:9090"]` under ' + where
    assert line in caught.value.reason
    with pytest.raises(PermissionDeniedError) as caught:
        check_url("https://[::1]/", policy, plugin="acme.jira")
    assert '"127.0.0.1:8080", "[::1]:443"]`' in caught.value.reason
    with pytest.raises(PermissionDeniedError) as caught:
        check_address("10.0.0.5", policy, plugin="acme.jira", host="jira.internal", port=443)
    assert "jira.internal resolves to 10.0.0.5, which is private" in caught.value.reason
    assert '"127.0.0.1:8080", "jira.internal:443"]`' in caught.value.reason
    # A spelling no policy may list gets no line to copy; without a policy, no hint at all.
    with pytest.raises(PermissionDeniedError) as caught:
        check_url("http://127.1:9090/", policy, plugin="acme.jira")
    assert "private-targets" not in caught.value.reason
    with pytest.raises(PermissionDeniedError) as caught:
        check_url("http://127.0.0.1:9090/", FetchPolicy(allowed=()), plugin="acme.jira")
    assert (
        caught.value.reason
        == "'127.0.0.1' is an IP address; only granted host names may be fetched"
    )


def test_the_manifest_can_never_grant_a_private_target() -> None:
    for address in ("127.0.0.1:8443", "10.0.0.5:8443", "[::1]:8443", "localhost:8443"):
        with pytest.raises(ValidationError):
            Permissions.model_validate({"network": [address]})
    with pytest.raises(ValidationError, match="private-targets"):
        Permissions.model_validate({"private-targets": ["10.0.0.5:8443"]})
    for extra in (
        '[private-targets]\n"acme.jira" = ["10.0.0.5:8443"]\n',
        'local_endpoints = ["10.0.0.5:8443"]\n',
    ):
        with pytest.raises((InvalidInputError, ValidationError, ValueError)):
            parse_manifest(_MANIFEST.replace("[permissions]", extra + "[permissions]"))


# --- end to end: the CLI, a real sandboxed plugin, real listeners ---------------------------------

FETCHER = """\
from plugport.errors import PermissionDeniedError
from plugport.sdk import Plugin, hook


class Main(Plugin):
    @hook("get")
    async def get(self, url):
        try:
            response = await self.api.net.fetch(url)
        except PermissionDeniedError as exc:
            return {"refused": str(exc)}
        return {"status": response.status, "body": response.text()}
"""

_MANIFEST = """\
name = "acme.jira"
version = "1.0.0"
entry = "main:Main"
display_name = "Jira"
description = "Talks to an on-premises Jira."

[permissions]
network = ["jira.example.com"]

[contributes]
hooks = { get = 0 }
"""


class _Answer(BaseHTTPRequestHandler):
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).seen.append(f"{self.server.server_address[1]}{self.path}")
        body = f"jira on port {self.server.server_address[1]}".encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class _V6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


@pytest.fixture
def listeners() -> Iterator[tuple[int, int, int]]:
    """Ports of two listeners on 127.0.0.1 (A allowed, B not) and one on [::1] (allowed)."""
    servers = [
        ThreadingHTTPServer(("127.0.0.1", 0), _Answer),
        ThreadingHTTPServer(("127.0.0.1", 0), _Answer),
        _V6Server(("::1", 0), _Answer),
    ]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    _Answer.seen.clear()
    yield servers[0].server_address[1], servers[1].server_address[1], servers[2].server_address[1]
    for server in servers:
        server.shutdown()
        server.server_close()


def _get(run_cli: RunCli, home: list[str], url: str) -> Any:
    ran = run_cli("run", "acme.jira", "get", "--arg-str", f"url={url}", *home)
    assert ran.exit_code == 0, ran.output
    return json.loads(ran.stdout)


@pytest.mark.slow
def test_the_operator_allows_exact_private_endpoints(
    run_cli: RunCli, tmp_path: Path, listeners: tuple[int, int, int]
) -> None:
    a, b, v6 = listeners
    source = tmp_path / "jira"
    source.mkdir()
    (source / "main.py").write_text(FETCHER)
    (source / "plugport.toml").write_text(_MANIFEST)
    root = tmp_path / "home"
    home = ["--home", str(root)]
    installed = run_cli("install", str(source), "--yes", *home)
    assert installed.exit_code == 0, installed.output

    # No policy yet: the broker refuses the address, and says the operator's line.
    assert "refused" in _get(run_cli, home, f"http://127.0.0.1:{a}/")
    assert _Answer.seen == []

    (root / "policy.toml").write_text(
        f'[private-targets]\n"acme.jira" = ["127.0.0.1:{a}", "[::1]:{v6}"]\n'
    )
    assert _get(run_cli, home, f"http://127.0.0.1:{a}/rest") == {
        "status": 200,
        "body": f"jira on port {a}",
    }
    assert _get(run_cli, home, f"http://[::1]:{v6}/rest") == {
        "status": 200,
        "body": f"jira on port {v6}",
    }
    refused = _get(run_cli, home, f"http://127.0.0.1:{b}/rest")["refused"]
    line = f'"acme.jira" = ["127.0.0.1:{a}", "[::1]:{v6}", "127.0.0.1:{b}"]'
    assert f"write `{line}` under [private-targets] in {root.absolute() / 'policy.toml'}" in refused
    assert _Answer.seen == [f"{a}/rest", f"{v6}/rest"]  # B was never sent anything

    audit = run_cli("audit", "--plugin", "acme.jira", "--json", *home)
    assert audit.exit_code == 0, audit.output
    reasons = [row["detail"].get("reason", "") for row in json.loads(audit.stdout)]
    location = policy_location(root.absolute())
    for port, host in ((a, "127.0.0.1"), (v6, "[::1]")):
        assert (
            f"reached private target {host}:{port} (fetched http://{host}:{port}/rest, HTTP 200), "
            f"allowed by the operator's policy ({location})"
        ) in reasons
    assert any(line in reason for reason in reasons)  # the refusal, for the operator to read


def test_a_bad_policy_stops_the_command_naming_file_and_key(
    run_cli: RunCli, tmp_path: Path
) -> None:
    root = tmp_path / "home"
    root.mkdir()
    (root / "policy.toml").write_text('[private-targets]\n"acme.jira" = ["10.0.0.5"]\n')
    before = snapshot(root)
    result = run_cli("list", "--home", str(root))
    assert result.exit_code == 1
    assert f"{root / 'policy.toml'} [private-targets] 'acme.jira': '10.0.0.5': write HOST:PORT" in (
        result.output
    )
    assert snapshot(root) == before
