"""``run`` with ``--arg-str`` and ``-v``, and ``logs``, on a plugin installed from a directory
into a real host home (real sandboxed workers, no registry needed)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from plugport.errors import PluginCallError
from tests.conftest import RunCli, snapshot

ECHO = """\
from plugport.errors import PermissionDeniedError
from plugport.sdk import Plugin, hook


class Main(Plugin):
    @hook("echo")
    async def echo(self, body):
        self.log.info("echo called", extra={"size": len(str(body))})
        await self.api.storage.set("last", body)
        return {"type": type(body).__name__, "body": body}

    @hook("sneak")
    async def sneak(self):
        try:
            await self.api.net.fetch("https://not-granted.example/")
        except PermissionDeniedError as exc:
            return "refused: " + str(exc)
        return "fetched"

    @hook("boom")
    def boom(self):
        self.log.warning("about to fail")
        return self.explode()

    @hook("die")
    def die(self):
        import os

        os._exit(3)

    def explode(self):
        raise ValueError("boom went the plugin")
"""

MANIFEST = """\
name = "acme.echo"
version = "1.0.0"
entry = "main:Main"
display_name = "Echo"
description = "Echoes what it is given."

[permissions]
storage = "64 KiB"
network = ["api.example.com"]

[contributes]
hooks = { echo = 0, sneak = 0, boom = 0, die = 0 }
"""


def echo_plugin(root: Path) -> Path:
    source = root / "echo"
    source.mkdir()
    (source / "main.py").write_text(ECHO)
    (source / "plugport.toml").write_text(MANIFEST)
    return source


@pytest.fixture
def home(run_cli: RunCli, tmp_path: Path) -> list[str]:
    where = ["--home", str(tmp_path / "home")]
    installed = run_cli("install", str(echo_plugin(tmp_path)), "--yes", *where)
    assert installed.exit_code == 0, installed.output
    return where


@pytest.mark.slow
def test_arg_str_is_never_json_decoded(run_cli: RunCli, home: list[str], tmp_path: Path) -> None:
    body = '{"action": "opened", "n": 1}'
    raw = run_cli("run", "acme.echo", "echo", "--arg-str", f"body={body}", *home)
    assert raw.exit_code == 0, raw.output
    assert json.loads(raw.stdout) == {"type": "str", "body": body}
    decoded = run_cli("run", "acme.echo", "echo", "--arg", f"body={body}", *home)
    assert json.loads(decoded.stdout) == {"type": "dict", "body": json.loads(body)}
    number = run_cli("run", "acme.echo", "echo", "--arg-str", "body=42", *home)
    assert json.loads(number.stdout) == {"type": "str", "body": "42"}

    before = snapshot(tmp_path / "home" / "plugins")
    for args, message in (
        (["--arg-str", "novalue"], "--arg-str 'novalue': write key=value"),
        (["--arg", "body=1", "--arg-str", "body=2"], "--arg-str 'body=2': 'body' is given twice"),
    ):
        result = run_cli("run", "acme.echo", "echo", *args, *home)
        assert result.exit_code == 1, result.output
        assert message in result.output
        assert result.stdout == ""
    assert snapshot(tmp_path / "home" / "plugins") == before


@pytest.mark.slow
def test_verbose_streams_logs_and_capability_calls_to_stderr(
    run_cli: RunCli, home: list[str]
) -> None:
    ran = run_cli("run", "acme.echo", "echo", "--arg-str", "body=hi", "-v", *home)
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.stdout) == {"type": "str", "body": "hi"}  # stdout: the result only
    lines = ran.stderr.splitlines()
    assert any("acme.echo INFO" in line and "echo called size=2" in line for line in lines)
    [storage] = [line for line in lines if "call storage.set" in line]
    assert "granted" in storage
    assert storage.endswith(" ms")
    assert any("ran hook echo ok" in line for line in lines), lines
    assert any(" activate pid " in line for line in lines), lines

    denied = run_cli("run", "acme.echo", "sneak", "--verbose", *home)
    assert denied.exit_code == 0, denied.output
    assert json.loads(denied.stdout).startswith("refused: ")
    [fetch] = [line for line in denied.stderr.splitlines() if "call net.fetch" in line]
    assert "denied: " in fetch
    assert "not-granted.example" in fetch

    quiet = run_cli("run", "acme.echo", "echo", "--arg-str", "body=hi", *home)
    assert quiet.stderr == ""


@pytest.mark.slow
def test_a_plugin_error_shows_its_traceback(run_cli: RunCli, home: list[str]) -> None:
    failed = run_cli("run", "acme.echo", "boom", "-v", *home)
    assert failed.exit_code == 1
    assert failed.stdout == ""
    assert "about to fail" in failed.stderr
    assert "raised ValueError: boom went the plugin" in failed.stderr
    assert 'File "main.py", line' in failed.stderr  # the plugin's frames, relative to it
    assert "in explode" in failed.stderr
    assert "site-packages" not in failed.stderr
    assert "plugport/runtime" not in failed.stderr


@pytest.mark.slow
def test_logs_keeps_what_the_plugin_said(run_cli: RunCli, home: list[str], tmp_path: Path) -> None:
    for body in ("one", "two", "three"):
        assert (
            run_cli("run", "acme.echo", "echo", "--arg-str", f"body={body}", *home).exit_code == 0
        )
    assert run_cli("run", "acme.echo", "boom", *home).exit_code == 1

    shown = run_cli("logs", "acme.echo", *home)
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [
        "acme.echo INFO     echo called size=3",
        "acme.echo INFO     echo called size=3",
        "acme.echo INFO     echo called size=5",
        "acme.echo WARNING  about to fail",
    ]

    last = run_cli("logs", "acme.echo", "-n", "2", "--json", *home)
    records = [json.loads(line) for line in last.stdout.splitlines()]
    assert [(r["level"], r["message"], r["fields"]) for r in records] == [
        ("info", "echo called", {"size": 5}),
        ("warning", "about to fail", {}),
    ]
    assert records[0]["at"] <= records[1]["at"] <= time.time()

    logs_dir = tmp_path / "home" / "logs"
    before = snapshot(logs_dir)
    unknown = run_cli("logs", "acme.nobody", *home)
    assert unknown.exit_code == 1
    assert "no installed plugin 'acme.nobody'" in unknown.output
    assert snapshot(logs_dir) == before


@pytest.mark.slow
def test_logs_follow_prints_new_lines_until_ctrl_c(
    run_cli: RunCli, home: list[str], tmp_path: Path
) -> None:
    env = os.environ | {"PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    follower = subprocess.Popen(
        [sys.executable, "-m", "plugport", "logs", "acme.echo", "--follow", "--json", *home],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert follower.stdout is not None
    reader = threading.Thread(target=lambda: [lines.put(x) for x in follower.stdout], daemon=True)
    reader.start()
    try:
        # The follower starts at the end of the log once it is up, which a loaded machine may
        # take seconds to reach: write until it shows a line, rather than guess when it is.
        line = ""
        deadline = time.monotonic() + 60
        while not line and time.monotonic() < deadline:
            ran = run_cli("run", "acme.echo", "echo", "--arg-str", "body=followed", *home)
            assert ran.exit_code == 0, ran.output
            with contextlib.suppress(queue.Empty):
                line = lines.get(timeout=1.0)
        assert json.loads(line)["fields"] == {"size": 8}
    finally:
        follower.send_signal(signal.SIGINT)
        _, stderr = follower.communicate(timeout=30)
    assert follower.returncode == 0, stderr
    assert "Traceback" not in stderr


def plugport(*args: str) -> subprocess.CompletedProcess[str]:
    """``plugport ARGS`` in a process of its own."""
    env = os.environ | {"PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    return subprocess.run(
        [sys.executable, "-m", "plugport", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )


@pytest.mark.slow
def test_runtime_decisions_appear_in_audit_with_the_hosts(run_cli: RunCli, home: list[str]) -> None:
    assert run_cli("run", "acme.echo", "sneak", *home).exit_code == 0
    rows = json.loads(run_cli("audit", "--plugin", "acme.echo", "--json", *home).stdout)
    assert [row["at"] for row in rows] == sorted((row["at"] for row in rows), reverse=True)
    actions = [(row["actor"], row["action"]) for row in rows]
    assert ("runtime", "activate") in actions
    assert ("runtime", "deactivate") in actions
    assert any(actor != "runtime" and action == "install" for actor, action in actions)
    [deny] = [row for row in rows if row["action"] == "deny"]
    assert deny["outcome"] == "refused"
    assert deny["detail"]["capability"] == "net.fetch"
    assert "not-granted.example" in deny["detail"]["reason"]
    # the install's activation came before this run's denial
    install = next(row for row in rows if row["action"] == "install")
    assert install["at"] < deny["at"]

    table = run_cli("audit", *home, "--limit", "100")
    assert "deny" in table.stdout
    assert "runtime" in table.stdout
    assert json.loads(run_cli("audit", "--plugin", "acme.other", "--json", *home).stdout) == []
    refused = run_cli("audit", "--limit", "0", *home)
    assert refused.exit_code == 1
    assert "limit must be an integer from 1 to 10000" in refused.output


@pytest.mark.slow
def test_the_last_error_survives_the_process_that_saw_it(run_cli: RunCli, home: list[str]) -> None:
    before = json.loads(plugport("status", "--json", *home).stdout)
    assert before[0]["last_error"] is None
    died = plugport("run", "acme.echo", "die", *home)
    assert died.returncode == 1, died.stderr
    [row] = json.loads(plugport("status", "--json", *home).stdout)
    assert row["last_error_kind"] == "crash"
    assert "exit" in row["last_error"]
    assert time.time() - 60 < row["last_error_at"] <= time.time()
    table = plugport("status", *home).stdout
    assert "crash:" in table

    # a new start (disable, enable) begins with a clean slate
    assert run_cli("disable", "acme.echo", *home).exit_code == 0
    assert run_cli("enable", "acme.echo", *home).exit_code == 0
    [row] = json.loads(plugport("status", "--json", *home).stdout)
    assert row["last_error"] is None


SETTINGS_CODE = """\
from plugport.sdk import Plugin, hook


class Main(Plugin):
    @hook("show")
    async def show(self):
        return await self.api.config.get()
"""

SETTINGS_MANIFEST = """\
name = "acme.configured"
version = "1.0.0"
entry = "main:Main"
display_name = "Configured"
description = "Needs a token and a port."

[permissions]
config = true

[contributes]
hooks = { show = 0 }

[config]
type = "object"
required = ["token", "port"]
properties.token = { type = "string", minLength = 4 }
properties.port = { type = "integer", minimum = 1, maximum = 65535 }
properties.label = { type = "string", default = "hi" }
"""


def test_required_settings_install_disabled_then_config_set_and_enable(
    run_cli: RunCli, tmp_path: Path
) -> None:
    source = tmp_path / "configured"
    source.mkdir()
    (source / "main.py").write_text(SETTINGS_CODE)
    (source / "plugport.toml").write_text(SETTINGS_MANIFEST)
    home = ["--home", str(tmp_path / "home")]

    installed = run_cli("install", str(source), "--yes", *home)
    assert installed.exit_code == 0, installed.output
    assert "installed acme.configured 1.0.0" in installed.stdout
    assert "acme.configured is disabled: it needs settings: token, port" in installed.stderr
    assert "plugport config set acme.configured token VALUE" in installed.stderr
    [row] = json.loads(run_cli("status", "--json", *home).stdout)
    assert (row["enabled"], row["needs_settings"]) == (False, ["token", "port"])

    def refused(*args: str, message: str) -> None:
        before = run_cli("config", "get", "acme.configured", *home).stdout
        result = run_cli(*args, *home)
        assert result.exit_code == 1, result.output
        assert message in result.output, result.output
        assert run_cli("config", "get", "acme.configured", *home).stdout == before

    refused(
        "enable",
        "acme.configured",
        message="acme.configured needs settings: token, port; set them with plugport config "
        "set acme.configured token VALUE; plugport config set acme.configured port VALUE",
    )
    refused("config", "set", "acme.configured", "port", "99999", message="config.port: 99999 is")
    refused("config", "set", "acme.configured", "port", "80", "--str", message="'80' is not of")
    refused("config", "set", "acme.configured", "token", "abc", message="config.token: 'abc' is")
    refused("config", "set", "acme.nobody", "port", "80", message="acme.nobody")
    refused("config", "unset", "acme.configured", "label", message="'label' is not set")

    assert run_cli("config", "set", "acme.configured", "port", "8080", *home).exit_code == 0
    token = run_cli("config", "set", "acme.configured", "token", "1234", "--str", *home)
    assert token.exit_code == 0, token.output
    assert json.loads(run_cli("config", "get", "acme.configured", *home).stdout) == {
        "port": 8080,
        "token": "1234",
        "label": "hi",
    }
    assert json.loads(run_cli("config", "get", "acme.configured", "token", *home).stdout) == "1234"
    assert run_cli("enable", "acme.configured", *home).exit_code == 0
    shown = run_cli("run", "acme.configured", "show", *home)
    assert json.loads(shown.stdout) == {"port": 8080, "token": "1234", "label": "hi"}

    # enabled: a required key cannot be removed, an optional one can
    refused("config", "unset", "acme.configured", "port", message="is enabled and needs settings")
    assert run_cli("config", "set", "acme.configured", "label", "yo", *home).exit_code == 0
    assert run_cli("config", "unset", "acme.configured", "label", *home).exit_code == 0
    audit = json.loads(run_cli("audit", "--plugin", "acme.configured", "--json", *home).stdout)
    configured = [row for row in audit if row["action"] == "configure"]
    assert configured[0]["detail"] == {"keys": ["label"]}
    assert "1234" not in json.dumps(audit)  # keys, never values


@pytest.mark.parametrize(
    "command",
    [
        ("config", "set", "acme.none", "k", "v"),
        ("config", "unset", "acme.none", "k"),
        ("enable", "acme.none"),
        ("disable", "acme.none"),
        ("uninstall", "acme.none"),
    ],
)
def test_changing_a_plugin_of_a_home_that_does_not_exist_creates_nothing(
    run_cli: RunCli, tmp_path: Path, command: tuple[str, ...]
) -> None:
    before = snapshot(tmp_path)
    result = run_cli(*command, "--home", str(tmp_path / "home"))
    assert result.exit_code == 1
    assert "no installed plugin 'acme.none': there is no host home at" in result.output
    assert snapshot(tmp_path) == before


@pytest.mark.slow
def test_status_shows_the_problems_a_running_host_reported(
    run_cli: RunCli, home: list[str], tmp_path: Path
) -> None:
    """A host that runs the plugins (the host service, an application) finds a problem and
    reports it in the home's audit log; ``plugport status``, another process, shows it."""
    from plugport.host import PluginHost

    async def a_host_that_sees_every_call_fail() -> None:
        async with PluginHost(app="myapp", app_version="1", home=tmp_path / "home") as host:
            for _ in range(25):
                with contextlib.suppress(PluginCallError):
                    await host.supervisor.call_hook_on("acme.echo", "boom", {})
            assert [f.kind for f in host.supervisor.problems("acme.echo")] == ["error-rate"]

    asyncio.run(a_host_that_sees_every_call_fail())
    [row] = json.loads(plugport("status", "--json", *home).stdout)
    [problem] = row["problems"]
    assert problem["kind"] == "error-rate"
    assert problem["severity"] == "critical"
    assert problem["summary"] == "100.0% of calls failed in the last 5 min (25 of 25)"
    assert "Calls fail far more often than usual" in problem["explanation"]
    assert time.time() - 60 < problem["since"] <= time.time()
    table = plugport("status", *home).stdout
    assert "error-rate" in table
    assert "acme.echo: critical error-rate since" in table
    assert "Calls fail far more often than usual" in table

    # disabling it takes it out of the runtime: nothing is watched, nothing stays open
    assert run_cli("disable", "acme.echo", *home).exit_code == 0
    assert run_cli("enable", "acme.echo", *home).exit_code == 0
    [row] = json.loads(plugport("status", "--json", *home).stdout)
    assert row["problems"] == []
    cleared = json.loads(run_cli("audit", "--plugin", "acme.echo", "--json", *home).stdout)
    assert any(r["action"] == "problem-cleared" for r in cleared)
