"""The decisions of ``plugport check``: capabilities against the manifest (the broker's rule),
limits, README, icon, version, and the registry's scan on what the packer builds."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from plugport import archive, checks
from plugport._api_usage import ApiUse, EventHandler
from plugport.authoring import validate_tree
from plugport.errors import InvalidInputError
from plugport.manifest import Manifest, validate_manifest_data
from plugport.registry.scanner import scan_archive
from tests.conftest import RunCli, snapshot
from tests.test_content_rules import SVG, png

CODE = "hello/plugin.py"


def manifest(**fields: Any) -> Manifest:
    return validate_manifest_data(
        {"name": "acme.hello", "version": "1.0.0", "entry": "hello.plugin:Hello", **fields}
    )


def use(capability: str, method: str, argument: str | None = None, line: int = 3) -> ApiUse:
    return ApiUse(CODE, line, capability, method, argument)


def levels(items: list[checks.CheckItem]) -> list[tuple[str, str]]:
    return [(i.level, i.where) for i in items]


# --- capabilities ---------------------------------------------------------------------------------


def test_storage_used_without_permission_names_the_line_to_add() -> None:
    items = checks.capability_items(
        manifest(), [use("storage", "get"), use("storage", "set", line=9)]
    )
    assert levels(items) == [("error", f"{CODE}:3")]
    assert items[0].message == (
        "self.api.storage.get(...) is refused at run time: permissions.storage is 0 (no storage "
        'granted); add to plugport.toml: [permissions] storage = "64 KiB" '
        f"(also at {CODE}:9)"
    )


def test_a_literal_host_is_decided_by_the_fetch_rule_and_the_fix_keeps_the_grants() -> None:
    granted = manifest(permissions={"network": ["api.example.com"]})
    items = checks.capability_items(
        granted,
        [
            use("net", "fetch", "https://api.example.com/v1/"),
            use("net", "fetch", "https://hooks.other.test:8443/x", line=7),
        ],
    )
    assert levels(items) == [("error", f"{CODE}:7")]
    assert "hooks.other.test:8443 is not in the plugin's network grants" in items[0].message
    assert items[0].message.endswith(
        '[permissions] network = ["api.example.com", "hooks.other.test:8443"]'
    )


def test_an_unknown_argument_needs_the_permission_at_all() -> None:
    granted = manifest(permissions={"network": ["api.example.com"], "events": {"publish": ["a.b"]}})
    items = checks.capability_items(granted, [use("net", "fetch"), use("events", "publish")])
    assert items == []  # nothing refused, and no grant can be called unused
    items = checks.capability_items(manifest(), [use("net", "fetch"), use("events", "publish")])
    assert [i.message.rsplit("[permissions] ", 1)[1] for i in items] == [
        'network = ["HOST"]',
        'events.publish = ["TOPIC"]',
    ]


def test_topics_and_ui_surfaces_follow_the_broker() -> None:
    granted = manifest(permissions={"events": {"publish": ["tasks.*"]}, "ui": ["messages"]})
    items = checks.capability_items(
        granted,
        [
            use("events", "publish", "tasks.done"),
            use("events", "publish", "billing.paid", line=4),
            use("ui", "message", line=5),
            use("ui", "update_widget", line=6),
        ],
    )
    assert levels(items) == [("error", f"{CODE}:4"), ("error", f"{CODE}:6")]
    assert items[0].message.endswith('events.publish = ["tasks.*", "billing.paid"]')
    assert items[1].message.endswith('ui = ["messages", "widgets"]')


WIDGETS = {"widgets": [{"id": "hello.tile", "title": "Tile"}]}
PAGES = {"pages": [{"id": "hello.board", "title": "Board"}]}


def test_invalidating_a_surface_the_manifest_does_not_contribute_is_an_error() -> None:
    granted = manifest(permissions={"ui": ["widgets", "pages"]}, contributes=WIDGETS | PAGES)
    uses = [
        use("ui", "invalidate", "hello.tile", line=3),
        use("ui", "invalidate", "hello.board", line=4),
        use("ui", "invalidate", None, line=5),  # not spelled out: the runtime decides
        use("ui", "invalidate", "other.tile", line=6),
        use("ui", "message", "other.tile", line=7),  # not a surface call
    ]
    items = checks.surface_items(granted, uses)
    assert levels(items) == [("error", f"{CODE}:6")]
    assert items[0].check == "ui"
    assert items[0].message == (
        "self.api.ui.invalidate('other.tile') is refused at run time: 'other.tile' is not a "
        "widget, page, menu item, field type or view the manifest contributes (it contributes: "
        "hello.tile, hello.board); add it under [contributes] in plugport.toml with its "
        "handler, or name one of those"
    )
    assert checks.capability_items(granted, uses[:4]) == []  # the grant itself is fine
    nothing = checks.surface_items(manifest(permissions={"ui": ["widgets"]}), uses[:1])
    assert "(it contributes: none)" in nothing[0].message


def test_the_deprecated_widget_push_is_a_warning_naming_invalidate() -> None:
    granted = manifest(permissions={"ui": ["widgets"]}, contributes=WIDGETS)
    items = checks.surface_items(
        granted,
        [use("ui", "update_widget", "hello.tile", line=8), use("ui", "update_widget", line=9)],
    )
    assert levels(items) == [("warning", f"{CODE}:8"), ("warning", f"{CODE}:9")]
    assert items[0].message.endswith("call self.api.ui.invalidate('hello.tile') instead")
    assert "deprecated since 0.4" in items[0].message
    assert items[1].message.endswith("call self.api.ui.invalidate(WIDGET_ID) instead")
    pushed_elsewhere = checks.surface_items(granted, [use("ui", "update_widget", "x.y", line=2)])
    assert levels(pushed_elsewhere) == [("error", f"{CODE}:2"), ("warning", f"{CODE}:2")]


def test_a_ui_value_a_contribution_needs_is_used_by_the_host() -> None:
    """The host calls a @widget handler only while ``widgets`` is granted: a widget plugin
    that never calls self.api.ui still uses it; a value nothing needs is still unused."""
    granted = manifest(permissions={"ui": ["widgets", "pages", "menus"]}, contributes=WIDGETS)
    items = checks.capability_items(granted, [])
    assert [i.message.split(" is requested")[0] for i in items] == ["ui 'pages'", "ui 'menus'"]


def test_a_method_the_host_does_not_offer_is_an_error_without_a_fix() -> None:
    items = checks.capability_items(manifest(permissions={"storage": 10}), [use("storage", "put")])
    assert levels(items)[0] == ("error", f"{CODE}:3")
    assert "the host offers no storage.put (it offers config.get, events.publish" in (
        items[0].message
    )
    assert "[permissions]" not in items[0].message


def test_granted_but_unused_permissions_are_warnings() -> None:
    granted = manifest(
        permissions={
            "storage": "1 MiB",
            "config": True,
            "network": ["api.example.com", "*.slack.com"],
            "events": {"publish": ["a.b"], "subscribe": ["tasks.*", "billing.paid"]},
            "ui": ["messages", "widgets"],
        }
    )
    items = checks.capability_items(
        granted,
        [use("net", "fetch", "https://hooks.slack.com/x"), use("ui", "message")],
        [EventHandler(CODE, 20, "tasks.done")],
    )
    assert all(i.level == "warning" for i in items)
    assert [i.message.split(" is requested")[0] for i in items] == [
        "storage",
        "config",
        "network 'api.example.com'",
        "events.publish 'a.b'",
        "ui 'widgets'",
        "events.subscribe 'billing.paid'",
    ]
    assert items[0].where == "plugport.toml: permissions.storage"


def test_a_contributed_surface_uses_its_ui_permission_without_an_api_call() -> None:
    granted = manifest(
        permissions={"ui": ["pages", "menus", "forms", "widgets", "metrics"]},
        contributes={
            "pages": [{"id": "notes", "title": "Notes"}],
            "menus": [{"id": "inspect", "title": "Inspect", "menu": "task"}],
            "fields": [{"id": "cron", "title": "Cron"}],
        },
    )
    items = checks.capability_items(granted, [])
    # Contributed: pages, menus, forms. Neither contributed nor called: widgets, metrics.
    assert [i.message.split(" is requested")[0] for i in items] == ["ui 'widgets'", "ui 'metrics'"]
    assert checks.capability_items(granted, [use("ui", "metrics"), use("ui", "invalidate")]) == []


def test_a_handler_no_subscription_covers_is_an_error() -> None:
    granted = manifest(permissions={"events": {"subscribe": ["tasks.*"]}})
    items = checks.capability_items(granted, [], [EventHandler(CODE, 8, "billing.paid")])
    assert levels(items) == [
        ("error", f"{CODE}:8"),
        ("warning", "plugport.toml: permissions.events.subscribe"),
    ]
    assert items[0].message.endswith('events.subscribe = ["tasks.*", "billing.paid"]')


def test_what_a_test_run_recorded_counts_as_used_and_its_denials_are_reported() -> None:
    granted = manifest(permissions={"storage": 10, "ui": ["widgets"]})
    recorded = [
        checks.RecordedCall("storage", "get", "granted"),
        checks.RecordedCall("ui", "update_widget", "granted"),
        checks.RecordedCall("config", "get", "denied", "permissions.config is not granted"),
        checks.RecordedCall("ui", "update_widget", "denied", "widget 'x' is not contributed"),
    ]
    items = checks.capability_items(granted, [], [], recorded)
    assert levels(items) == [("error", "test run"), ("warning", "test run")]
    assert items[0].message == (
        "the test run was denied config.get: permissions.config is not granted; add to "
        "plugport.toml: [permissions] config = true"
    )
    assert "fine if the test meant it to be refused" in items[1].message
    assert levels(checks.capability_items(granted, [], [], recorded[:1])) == [
        ("warning", "plugport.toml: permissions.ui")
    ]


def test_validate_gets_the_same_decision_as_warnings(make_plugin: Callable[..., Path]) -> None:
    root = make_plugin()
    code = root / "hello" / "plugin.py"
    code.write_text(code.read_text() + "\n    async def count(self):\n        api = self.api\n"
                    "        return await api.sync.storage.get('n')\n")  # fmt: skip
    report = validate_tree(root)
    found = checks.undeclared_use_warnings(report)
    assert [(f.file, f.rule, f.severity) for f in found] == [
        ("hello/plugin.py", "undeclared-capability", "medium")
    ]
    assert found[0].line == len(code.read_text().splitlines())
    assert found[0].message.endswith('[permissions] storage = "64 KiB"')


def test_secrets_uses_are_decided_on_the_name(make_plugin: Callable[..., Path]) -> None:
    # secrets.sign/reveal used to reach the rule with no name and crash validate.
    signing = manifest(credentials={"app_key": {"kind": "private-key"}})
    assert checks.capability_items(signing, [use("secrets", "sign", "app_key")]) == []
    assert checks.capability_items(signing, [use("secrets", "sign")]) == []
    [wrong] = checks.capability_items(signing, [use("secrets", "sign", "other")])
    assert "no hmac or private-key credential 'other'" in wrong.message
    [reveal] = checks.capability_items(signing, [use("secrets", "reveal")])
    assert "secrets.reveal" in reveal.message
    root = make_plugin()
    code = root / "hello" / "plugin.py"
    code.write_text(code.read_text() + "\n    async def sign(self):\n"
                    "        return await self.api.secrets.sign('k', 'x')\n")  # fmt: skip
    found = checks.undeclared_use_warnings(validate_tree(root))
    assert [(f.rule, f.line) for f in found] == [
        ("undeclared-capability", len(code.read_text().splitlines()))
    ]


def test_a_call_whose_rule_needs_its_arguments_is_decided_by_the_grant() -> None:
    mail = manifest(permissions={"mail": {"to": ["*@example.com"]}})
    assert checks.capability_items(mail, [use("mail", "send")]) == []
    [refused] = checks.capability_items(manifest(), [use("mail", "send")])
    assert refused.level == "error"
    assert "permissions grant no mail" in refused.message


# --- the recorded file ----------------------------------------------------------------------------


def test_recorded_calls_are_parsed_and_bad_files_refused(tmp_path: Path) -> None:
    good = {"plugin": "acme.hello", "calls": [{"capability": "storage", "method": "get",
                                              "verdict": "granted", "reason": ""}]}  # fmt: skip
    recording = checks.parse_recorded(good, source="run.json")
    assert recording == checks.Recording(
        "acme.hello", (checks.RecordedCall("storage", "get", "granted"),)
    )
    for bad, said in [
        ([], 'expected {"plugin": NAME, "calls": [...]}'),
        ({"plugin": "a.b", "calls": [{"capability": "storage"}]}, "calls[0] needs string"),
        (
            {"plugin": "a.b", "calls": [{"capability": "x", "method": "y", "verdict": "ok"}]},
            "'verdict' 'granted' or 'denied'",
        ),
    ]:
        with pytest.raises(InvalidInputError, match=r"--recorded run\.json: ") as caught:
            checks.parse_recorded(bad, source="run.json")
        assert said in str(caught.value)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InvalidInputError, match="not JSON"):
        checks.load_recorded(tmp_path / "bad.json")
    with pytest.raises(InvalidInputError, match="cannot read it"):
        checks.load_recorded(tmp_path / "missing.json")


# --- version --------------------------------------------------------------------------------------


def test_a_version_the_registry_has_in_any_spelling_must_be_bumped() -> None:
    items = checks.version_items(manifest(version="1.0"), ["0.9", "1.0.0"], "http://r")
    assert [(i.level, i.where, i.message.split(":")[0]) for i in items] == [
        ("error", "plugport.toml: version", "bump `version` in plugport.toml (registry has 1.0.0)")
    ]
    assert checks.version_items(manifest(version="1.1"), ["0.9", "1.0.0"], "http://r") == []
    lower = checks.version_items(manifest(version="0.9.1"), ["0.9", "1.0.0"], "http://r")
    assert levels(lower) == [("warning", "plugport.toml: version")]
    assert "lower than 1.0.0 on http://r" in lower[0].message


# --- the whole check on real files ----------------------------------------------------------------


def test_a_generated_plugin_passes_with_the_reviewers_warnings(
    make_plugin: Callable[..., Path],
) -> None:
    root = make_plugin()
    before = snapshot(root)
    report = checks.check_path(root)
    assert report.passed
    assert [(i.check, i.where) for i in report.items] == [
        ("limits", "plugport.toml: limits"),
        ("changelog", "CHANGELOG.md"),
        ("icon", "plugport.toml: icon"),
    ]
    assert "memory_mb = 128, cpu_seconds = 30" in report.items[0].message
    assert snapshot(root) == before  # packed into a scratch file, never into the plugin


def test_readme_icon_and_limits_when_present_and_missing(make_plugin: Callable[..., Path]) -> None:
    root = make_plugin()
    (root / "README.md").unlink()
    manifest_file = root / "plugport.toml"
    manifest_file.write_text(
        manifest_file.read_text().replace(
            'tags = ["example"]', 'tags = ["example"]\nicon = "i.png"'
        )
        + "\n[limits]\nmemory_mb = 128\n"
    )
    (root / "i.png").write_bytes(png(32, 32))
    (root / "CHANGELOG.md").write_text("## 0.1.0\n\n- First.\n")
    assert [i.check for i in checks.check_path(root).items] == ["readme"]


def test_an_icon_the_registry_would_refuse_is_an_error_naming_it(
    make_plugin: Callable[..., Path],
) -> None:
    root = make_plugin()
    manifest_file = root / "plugport.toml"
    manifest_file.write_text(
        manifest_file.read_text().replace(
            'tags = ["example"]', 'tags = ["example"]\nicon = "i.svg"'
        )
    )
    (root / "i.svg").write_bytes(SVG.replace(b"<circle", b'<circle onload="alert(1)"'))
    before = snapshot(root)
    report = checks.check_path(root)
    assert not report.passed
    [error] = [i for i in report.items if i.level == "error"]
    assert error.where == "plugport.toml: icon"
    assert error.message == "i.svg has an event handler attribute onload= on <circle>"
    assert snapshot(root) == before


def test_validate_warns_without_failing_when_icon_readme_or_changelog_is_missing(
    make_plugin: Callable[..., Path], run_cli: RunCli
) -> None:
    root = make_plugin()
    (root / "README.md").unlink()
    result = run_cli("validate", str(root), "--json")
    assert result.exit_code == 0, result.output
    warned = {w["rule"]: w["file"] for w in json.loads(result.stdout)["warnings"]}
    assert warned == {
        "no-readme": "README.md",
        "no-changelog": "CHANGELOG.md",
        "no-icon": "plugport.toml",
    }


def test_a_widget_without_its_permission_is_a_warning(make_plugin: Callable[..., Path]) -> None:
    """Widgets validate without ``ui = ["widgets"]`` (they predate it), but the host then never
    calls their handlers: the check says so, and how to fix it."""
    root = make_plugin("acme.counter", "widget")
    assert [i for i in checks.check_path(root).items if i.check == "ui"] == []
    manifest_file = root / "plugport.toml"
    manifest_file.write_text(manifest_file.read_text().replace('ui = ["widgets"]\n', ""))
    code = root / "counter" / "plugin.py"
    code.write_text(code.read_text().replace("        await self.api.ui.invalidate(WIDGET_ID)", ""))
    report = checks.check_path(root)
    assert report.passed
    [item] = [i for i in report.items if i.check == "ui"]
    assert (item.level, item.where) == ("warning", "plugport.toml: contributes.widgets")
    assert item.message == (
        "the host shows no widget of a plugin without 'widgets' in permissions.ui; add to "
        'plugport.toml: [permissions] ui = ["widgets"]'
    )


def test_scan_findings_are_the_registrys_own_on_the_packed_archive(
    make_plugin: Callable[..., Path], tmp_path: Path
) -> None:
    root = make_plugin()
    code = root / "hello" / "plugin.py"
    code.write_text(code.read_text() + "\nimport pickle\nRUN = eval\n")
    (root / "native.so").write_bytes(b"\x7fELF" + b"\0" * 60)
    report = checks.check_path(root)
    packed = archive.pack_tree(root, tmp_path / "x.plugport")
    registry = scan_archive(packed.path)
    scanned = [i for i in report.items if i.check == "scan"]
    assert [(i.where, i.message.split(" (")[0]) for i in scanned] == [
        (f"{f.file}:{f.line}", f"[{f.rule}] {f.message}") for f in registry.findings
    ]
    assert [i.level for i in scanned] == ["error", "error", "warning"]  # high, high, medium
    assert not report.passed
    # validate's warnings for the same lines are not repeated
    assert [i.check for i in report.items].count("code") == 0


def test_an_archive_is_checked_like_its_directory(
    make_plugin: Callable[..., Path], tmp_path: Path
) -> None:
    root = make_plugin()
    code = root / "hello" / "plugin.py"
    uses_storage = "\n    async def n(self):\n        return await self.api.storage.get('n')\n"
    code.write_text(code.read_text() + uses_storage)
    packed = archive.pack_tree(root, tmp_path / "acme.hello-0.1.0.plugport")
    from_dir, from_archive = checks.check_path(root), checks.check_path(packed.path)
    assert [i.to_json() for i in from_archive.items] == [i.to_json() for i in from_dir.items]
    assert [i.check for i in from_dir.errors] == ["capabilities"]


def test_a_broken_archive_is_one_error_not_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "x.plugport"
    bad.write_bytes(b"not a zip")
    report = checks.check_path(bad)
    assert not report.passed
    assert report.manifest is None
    assert len(report.errors) == 1


def test_the_check_loads_no_server_only_dependency() -> None:
    probe = (
        "import sys, plugport.checks\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'fastapi', 'sqlalchemy', "
        "'starlette', 'uvicorn'})\n"
        "print(heavy)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_native_code_in_a_wheel_for_declared_platforms_is_a_warning(tmp_path: Path) -> None:
    from plugport.testing.pypi import build_wheel
    from tests.registry.test_publish_libraries import ELF, PLATFORM, handmade

    files = {"fast/__init__.py": "X = 1\n", "fast/_speed.so": ELF}
    tag = f"cp311-cp311-{PLATFORM}"
    wheel = build_wheel(tmp_path / "house", "fast", "2.0", files, tag=tag)
    declared = handmade(tmp_path / "declared", "1.0.0", [wheel], platforms=(PLATFORM,))
    undeclared = handmade(tmp_path / "undeclared", "1.0.0", [wheel])
    where = f"wheels/{wheel.name}!fast/_speed.so:1"
    for path, level in ((declared, "warning"), (undeclared, "error")):
        report = checks.check_path(path)
        assert [(i.level, i.where) for i in report.items if i.check == "scan"] == [(level, where)]


def test_a_high_finding_in_library_code_is_a_warning_the_author_cannot_fix(
    tmp_path: Path,
) -> None:
    """eval() in a locked library: the reviewer sees it (the registry holds the upload), but
    `plugport check` does not stop `plugport publish` over code the author did not write."""
    from plugport.testing.pypi import build_wheel
    from tests.registry.test_publish_libraries import handmade

    wheel = build_wheel(
        tmp_path / "house",
        "evaly",
        "1.0",
        {"evaly/__init__.py": "def run(x):\n    return eval(x)\n"},
    )
    archive = handmade(tmp_path / "plugin", "1.0.0", [wheel])
    report = checks.check_path(archive)
    [item] = [i for i in report.items if i.check == "scan" and "evaly" in i.where]
    assert item.level == "warning"
    assert "high, in a library: the registry holds the upload for review" in item.message
    assert item.where.startswith(f"wheels/{wheel.name}!evaly/__init__.py:")


# --- tasks ----------------------------------------------------------------------------------------


def test_a_submitted_task_type_is_decided_by_the_tasks_rule_and_the_fix_keeps_the_grants() -> None:
    granted = manifest(permissions={"tasks": {"submit": ["GITHUB_*", "RESIZE"]}})
    items = checks.capability_items(
        granted,
        [
            use("tasks", "submit", "GITHUB_PR_REVIEW"),
            use("tasks", "submit", "RESIZE", line=4),
            use("tasks", "submit", "THUMBNAIL", line=5),
            use("tasks", "submit", "THUMBNAIL", line=9),
        ],
    )
    assert levels(items) == [("error", f"{CODE}:5")]
    assert items[0].message == (
        "self.api.tasks.submit('THUMBNAIL') is refused at run time: task type 'THUMBNAIL' "
        "matches no tasks.submit pattern (GITHUB_*, RESIZE); add to plugport.toml: "
        f'[permissions] tasks.submit = ["GITHUB_*", "RESIZE", "THUMBNAIL"] (also at {CODE}:9)'
    )


def test_an_unspelled_task_type_needs_some_submit_grant_and_progress_needs_none() -> None:
    assert checks.capability_items(manifest(), [use("tasks", "progress")]) == []
    [refused] = checks.capability_items(manifest(), [use("tasks", "submit")])
    assert refused.message == (
        "self.api.tasks.submit(...) is refused at run time: permissions.tasks.submit grants no "
        'task types; add to plugport.toml: [permissions] tasks.submit = ["TASK_TYPE"]'
    )
    granted = manifest(permissions={"tasks": {"submit": ["RESIZE"]}})
    assert checks.capability_items(granted, [use("tasks", "submit")]) == []


def test_an_unused_submit_grant_is_a_warning_that_progress_does_not_silence() -> None:
    granted = manifest(permissions={"tasks": {"submit": ["GITHUB_*", "RESIZE"]}, "storage": 10})
    items = checks.capability_items(
        granted, [use("tasks", "submit", "GITHUB_PUSH"), use("tasks", "progress", line=8)]
    )
    assert [(i.level, i.where, i.message.split(" is requested")[0]) for i in items] == [
        ("warning", "plugport.toml: permissions.storage", "storage"),
        ("warning", "plugport.toml: permissions.tasks.submit", "tasks.submit 'RESIZE'"),
    ]
    assert "no self.api.tasks.submit of that type" in items[1].message


def test_validate_warns_about_an_undeclared_submit(make_plugin: Callable[..., Path]) -> None:
    root = make_plugin()
    code = root / "hello" / "plugin.py"
    code.write_text(code.read_text() + "\n    async def more(self):\n"
                    "        await self.api.tasks.submit('RESIZE', {})\n")  # fmt: skip
    [found] = checks.undeclared_use_warnings(validate_tree(root))
    assert (found.rule, found.line) == ("undeclared-capability", len(code.read_text().splitlines()))
    assert found.message.endswith('[permissions] tasks.submit = ["RESIZE"]')
