"""validate_tree / pack_plugin / sign_archive / verify_archive on real files."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from plugport import authoring, signing
from plugport.errors import PluginValidationError, SignatureError
from tests.conftest import snapshot
from tests.test_content_rules import png


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def test_generated_plugin_is_valid(make_plugin: Callable[..., Path]) -> None:
    report = authoring.validate_tree(make_plugin())
    assert report.valid, report.errors
    assert report.manifest is not None
    assert report.manifest.name == "acme.hello"
    assert report.warnings == []


def test_missing_entry_module(make_plugin: Callable[..., Path]) -> None:
    root = make_plugin()
    _edit(root / "plugport.toml", 'entry = "hello.plugin:', 'entry = "hello.nothere:')
    report = authoring.validate_tree(root)
    assert [p.path for p in report.errors] == ["entry"]
    assert "hello/nothere.py or hello/nothere/__init__.py" in report.errors[0].message


def test_missing_entry_class(make_plugin: Callable[..., Path]) -> None:
    root = make_plugin()
    _edit(root / "plugport.toml", ":HelloPlugin", ":Nope")
    report = authoring.validate_tree(root)
    assert [(p.path, p.message) for p in report.errors] == [
        ("entry", "hello/plugin.py has no top-level class 'Nope'")
    ]


def test_contributed_hook_and_command_must_be_implemented(
    make_plugin: Callable[..., Path],
) -> None:
    root = make_plugin()
    _edit(
        root / "plugport.toml",
        "hooks = { greet = 0 }",
        'hooks = { greet = 0, shout = 5 }\ncommands = [{ id = "hello.wave", title = "Wave" }]',
    )
    report = authoring.validate_tree(root)
    assert {p.path: p.message for p in report.errors} == {
        "contributes.hooks.shout": "HelloPlugin has no method decorated with @hook('shout')",
        "contributes.commands[0]": (
            "HelloPlugin has no method decorated with @command('hello.wave')"
        ),
    }


@pytest.mark.parametrize(("coded", "errors"), [("0", 0), ("7", 1), ("PRIORITY", 0)])
def test_hook_priority_in_code_must_agree_with_the_manifest(
    make_plugin: Callable[..., Path], coded: str, errors: int
) -> None:
    root = make_plugin()
    code = root / "hello" / "plugin.py"
    _edit(code, '@hook("greet")', f'@hook("greet", priority={coded})')
    report = authoring.validate_tree(root)
    problems = [p for p in report.errors if p.path == "contributes.hooks.greet"]
    assert len(problems) == errors  # a name, not a literal, cannot be checked statically
    if errors:
        assert problems[0].message == (
            "priority 0 here, but @hook('greet', priority=7) in hello/plugin.py; "
            "the host orders by the manifest, so make them agree"
        )


def test_undeclared_hook_and_risky_code_are_warnings(make_plugin: Callable[..., Path]) -> None:
    root = make_plugin()
    code = root / "hello" / "plugin.py"
    code.write_text(
        code.read_text()
        + "\n    @hook('extra')\n    def extra(self) -> None:\n"
        + "        import subprocess\n        eval('1')\n"
    )
    report = authoring.validate_tree(root)
    assert report.valid
    rules = sorted((w.rule, w.severity) for w in report.warnings)
    assert rules == [("dynamic-code", "high"), ("subprocess", "high"), ("undeclared-hook", "low")]
    assert all(w.file == "hello/plugin.py" for w in report.warnings)


def test_syntax_error_is_an_error_with_file_and_line(make_plugin: Callable[..., Path]) -> None:
    root = make_plugin()
    (root / "hello" / "broken.py").write_text("x = 1\ndef (:\n")
    report = authoring.validate_tree(root)
    assert [p.path for p in report.errors] == ["hello/broken.py"]
    assert report.errors[0].message.startswith("line 2: syntax error")


def test_icon_must_exist(make_plugin: Callable[..., Path]) -> None:
    root = make_plugin()
    _edit(root / "plugport.toml", 'tags = ["example"]', 'tags = ["example"]\nicon = "icon.png"')
    assert [p.path for p in authoring.validate_tree(root).errors] == ["icon"]
    (root / "icon.png").write_bytes(b"\x89PNG")  # not a whole PNG: refused, naming the file
    assert [p.path for p in authoring.validate_tree(root).errors] == ["icon"]
    (root / "icon.png").write_bytes(png(64, 64))
    assert authoring.validate_tree(root).valid


def test_private_key_in_tree_blocks_packing(
    make_plugin: Callable[..., Path], tmp_path: Path
) -> None:
    root = make_plugin()
    signing.write_keypair(root / "publisher.key", signing.generate_private_key())
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(PluginValidationError) as caught:
        authoring.pack_plugin(root, out)
    assert [p.path for p in caught.value.problems] == ["publisher.key"]
    assert "private key" in caught.value.problems[0].message
    assert list(out.iterdir()) == []
    (root / ".plugportignore").write_text("*.key\n")
    assert authoring.pack_plugin(root, out).result.path.exists()


def test_symlink_is_reported_by_validate(make_plugin: Callable[..., Path]) -> None:
    root = make_plugin()
    (root / "link").symlink_to("/etc/passwd")
    report = authoring.validate_tree(root)
    assert [p.path for p in report.errors] == ["link"]
    assert "symbolic link" in report.errors[0].message


def test_pack_refuses_invalid_plugin_and_writes_nothing(
    make_plugin: Callable[..., Path], tmp_path: Path
) -> None:
    root = make_plugin()
    _edit(root / "plugport.toml", 'version = "0.1.0"', 'version = "zero"')
    before = snapshot(tmp_path)
    with pytest.raises(PluginValidationError) as caught:
        authoring.pack_plugin(root, tmp_path)
    assert [p.path for p in caught.value.problems] == ["version"]
    assert snapshot(tmp_path) == before


def test_pack_output_locations(
    make_plugin: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_plugin()
    monkeypatch.chdir(tmp_path)
    default = authoring.pack_plugin(root)
    assert default.result.path == tmp_path / "acme.hello-0.1.0.plugport"
    explicit = authoring.pack_plugin(root, tmp_path / "custom.plugport")
    assert explicit.result.path == tmp_path / "custom.plugport"
    assert explicit.result.sha256 == default.result.sha256
    with pytest.raises(Exception, match="does not exist"):
        authoring.pack_plugin(root, tmp_path / "missing" / "x.plugport")


def test_packed_archive_leaves_out_tests_and_validates(
    make_plugin: Callable[..., Path], tmp_path: Path
) -> None:
    packed = authoring.pack_plugin(make_plugin(), tmp_path)
    names = zipfile.ZipFile(packed.result.path).namelist()
    assert names == sorted(names)
    assert "plugport.toml" in names
    assert not any(n.startswith("tests/") or n == "conftest.py" for n in names)
    report = authoring.validate_path(packed.result.path)
    assert report.valid
    assert report.path == str(packed.result.path)
    assert authoring.read_archive_manifest(packed.result.path).name == "acme.hello"


def test_validate_path_on_a_damaged_archive(tmp_path: Path) -> None:
    bad = tmp_path / "bad.plugport"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    report = authoring.validate_path(bad)
    assert not report.valid
    assert "bad.plugport" in str(report.errors[0])


@pytest.fixture
def signed(make_plugin: Callable[..., Path], tmp_path: Path) -> tuple[Path, Path]:
    packed = authoring.pack_plugin(make_plugin(), tmp_path)
    signing.write_keypair(tmp_path / "k.key", signing.generate_private_key())
    authoring.sign_archive(packed.result.path, tmp_path / "k.key")
    return packed.result.path, tmp_path / "k.key.pub"


def test_sign_and_verify_round_trip(signed: tuple[Path, Path]) -> None:
    archive, public = signed
    verified = authoring.verify_archive(archive, public)
    assert verified.facts.name == "acme.hello"
    assert verified.facts.length == archive.stat().st_size


def test_one_changed_archive_byte_is_refused(signed: tuple[Path, Path]) -> None:
    archive, public = signed
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 1
    archive.write_bytes(bytes(data))
    with pytest.raises(SignatureError) as caught:
        authoring.verify_archive(archive, public)
    assert caught.value.part == "archive"
    assert "sha256 is" in str(caught.value)


def test_missing_signature_file(signed: tuple[Path, Path]) -> None:
    archive, public = signed
    archive.with_name(archive.name + ".sig").unlink()
    with pytest.raises(SignatureError, match="cannot read signature") as caught:
        authoring.verify_archive(archive, public)
    assert caught.value.part == "signature"


TASK_TABLE = '\n[tasks.RESIZE]\npayload = { type = "object" }\n'
TASK_HANDLER = "\n    @task('RESIZE')\n    async def resize(self, task):\n        return {}\n"


def test_a_task_table_needs_its_task_handler(make_plugin: Callable[..., Path]) -> None:
    root = make_plugin()
    manifest = root / "plugport.toml"
    manifest.write_text(manifest.read_text() + TASK_TABLE)
    before = manifest.read_text()
    report = authoring.validate_tree(root)
    assert [(p.path, p.message) for p in report.errors] == [
        (
            "tasks.RESIZE",
            "HelloPlugin has no method decorated with @task('RESIZE'), so every RESIZE task "
            "would fail; add the handler or remove [tasks.RESIZE]",
        )
    ]
    with pytest.raises(PluginValidationError):
        authoring.pack_plugin(root, root.parent / "dist")
    assert not (root.parent / "dist").exists()
    assert manifest.read_text() == before


def test_a_task_handler_needs_its_table(make_plugin: Callable[..., Path]) -> None:
    root = make_plugin()
    code = root / "hello" / "plugin.py"
    _edit(code, "import Plugin, hook", "import Plugin, hook, task")
    code.write_text(code.read_text() + TASK_HANDLER)
    line = code.read_text().splitlines().index("    @task('RESIZE')") + 2  # the def line
    report = authoring.validate_tree(root)
    assert [(p.path, p.message) for p in report.errors] == [
        (
            "tasks",
            f"@task('RESIZE') in hello/plugin.py line {line} has no [tasks.RESIZE] table "
            "(declared: none); declare the type there, with its payload and result schemas, "
            "or the host never queues it",
        )
    ]
    manifest = root / "plugport.toml"
    manifest.write_text(manifest.read_text() + TASK_TABLE)
    assert authoring.validate_tree(root).errors == []


# --- UI surfaces: a contribution and its handler, both ways ------------------------------------

UI_MANIFEST = """
[permissions]
ui = ["widgets", "pages", "menus", "forms", "custom_view"]

[contributes]
hooks = { greet = 0 }
widgets = [{ id = "hello.tile", title = "Tile" }]
pages = [{ id = "hello.board", title = "Board" }]
menus = [{ id = "hello.retry", title = "Retry", menu = "task" }]
fields = [{ id = "hello.cron", title = "Cron" }]
views = [{ id = "hello.map", title = "Map", file = "ui/map.html" }]
"""
UI_HANDLERS = """
    @widget(TILE)
    def tile(self, request):
        return {"type": "text", "text": "t"}

    @page("hello.board")
    def board(self, request):
        return {"type": "text", "text": "b"}

    @menu_item("hello.retry")
    def retry(self, request):
        return None

    @field("hello.cron")
    def cron(self, request):
        return None

    @view("hello.map")
    def map(self, request):
        return {}
"""


def ui_plugin(make_plugin: Callable[..., Path]) -> Path:
    """The basic template with one contribution of each UI kind and a handler for each (the
    widget's id from a module constant, as the widget template spells it)."""
    root = make_plugin()
    _edit(root / "plugport.toml", "\n[contributes]\nhooks = { greet = 0 }\n", UI_MANIFEST)
    (root / "ui").mkdir()
    (root / "ui" / "map.html").write_text("<!doctype html><p>map</p>\n")
    code = root / "hello" / "plugin.py"
    _edit(
        code,
        "from plugport.sdk import Plugin, hook\n",
        "from plugport.sdk import Plugin, field, hook, menu_item, page, view, widget\n\n"
        'TILE = "hello.tile"\n',
    )
    code.write_text(code.read_text() + UI_HANDLERS)
    return root


def test_every_ui_contribution_with_its_handler_is_valid(make_plugin: Callable[..., Path]) -> None:
    report = authoring.validate_tree(ui_plugin(make_plugin))
    assert report.errors == []


@pytest.mark.parametrize(
    ("decorator", "surface", "path", "noun"),
    [
        ("@widget(TILE)", "hello.tile", "contributes.widgets[0]", "widget"),
        ('@page("hello.board")', "hello.board", "contributes.pages[0]", "page"),
        ('@menu_item("hello.retry")', "hello.retry", "contributes.menus[0]", "menu item"),
        ('@field("hello.cron")', "hello.cron", "contributes.fields[0]", "field type"),
        ('@view("hello.map")', "hello.map", "contributes.views[0]", "custom view"),
    ],
)
def test_a_ui_contribution_needs_its_handler(
    make_plugin: Callable[..., Path], decorator: str, surface: str, path: str, noun: str
) -> None:
    root = ui_plugin(make_plugin)
    code = root / "hello" / "plugin.py"
    _edit(code, f"    {decorator}\n", "")
    before = snapshot(root)
    report = authoring.validate_tree(root)
    name = decorator.split("(", maxsplit=1)[0]
    assert [(p.path, p.message, p.value) for p in report.errors] == [
        (
            path,
            f"HelloPlugin has no method decorated with {name}({surface!r}), so the host has "
            f"nothing to show for the {noun} {surface!r}; add the handler, or remove the {noun}",
            surface,
        )
    ]
    with pytest.raises(PluginValidationError):
        authoring.pack_plugin(root, root.parent / "dist")
    assert not (root.parent / "dist").exists()
    assert snapshot(root) == before


def test_a_ui_handler_must_be_the_surfaces_own_decorator(
    make_plugin: Callable[..., Path],
) -> None:
    """The runtime would call a @page for a widget id (one namespace), but the code would say
    it answers a page: the check names the decorator it should be."""
    root = ui_plugin(make_plugin)
    code = root / "hello" / "plugin.py"
    _edit(code, "    @widget(TILE)\n", "    @page(TILE)\n")
    line = code.read_text().splitlines().index("    @page(TILE)") + 2
    report = authoring.validate_tree(root)
    assert [(p.path, p.message) for p in report.errors] == [
        (
            "contributes.widgets[0]",
            "HelloPlugin has no method decorated with @widget('hello.tile'), so the host has "
            "nothing to show for the widget 'hello.tile'; the method in hello/plugin.py line "
            f"{line} is decorated with @page('hello.tile'); a widget's handler is @widget",
        )
    ]


@pytest.mark.parametrize(
    ("contribution", "decorator", "noun"),
    [
        ('widgets = [{ id = "hello.tile", title = "Tile" }]\n', "@widget('hello.tile')", "widget"),
        ('pages = [{ id = "hello.board", title = "Board" }]\n', "@page('hello.board')", "page"),
        (
            'menus = [{ id = "hello.retry", title = "Retry", menu = "task" }]\n',
            "@menu_item('hello.retry')",
            "menu item",
        ),
        (
            'fields = [{ id = "hello.cron", title = "Cron" }]\n',
            "@field('hello.cron')",
            "field type",
        ),
        (
            'views = [{ id = "hello.map", title = "Map", file = "ui/map.html" }]\n',
            "@view('hello.map')",
            "custom view",
        ),
    ],
)
def test_a_ui_handler_needs_its_contribution(
    make_plugin: Callable[..., Path], contribution: str, decorator: str, noun: str
) -> None:
    root = ui_plugin(make_plugin)
    _edit(root / "plugport.toml", contribution, "")
    code = (root / "hello" / "plugin.py").read_text().splitlines()
    spelled = decorator.replace("'hello.tile'", "TILE").replace("'", '"')
    line = code.index(f"    {spelled}") + 2
    kind = {"widget": "widgets", "page": "pages", "menu item": "menus"}.get(noun)
    kind = kind or {"field type": "fields", "custom view": "views"}[noun]
    report = authoring.validate_tree(root)
    assert [(p.path, p.message) for p in report.errors] == [
        (
            f"contributes.{kind}",
            f"{decorator} in hello/plugin.py line {line} names no {noun} in "
            f"contributes.{kind} (declared: none); declare it there, or the host never calls it",
        )
    ]


def test_a_custom_views_file_must_be_in_the_plugin(make_plugin: Callable[..., Path]) -> None:
    root = ui_plugin(make_plugin)
    (root / "ui" / "map.html").unlink()
    report = authoring.validate_tree(root)
    assert [(p.path, p.message) for p in report.errors] == [
        ("contributes.views[0].file", "'ui/map.html' is not a file in the plugin")
    ]
    # there, but left out of the archive: the host would not have it either
    (root / "ui" / "map.html").write_text("<p>map</p>")
    (root / ".plugportignore").write_text("ui/\n")
    report = authoring.validate_tree(root)
    assert [(p.path, p.message) for p in report.errors] == [
        (
            "contributes.views[0].file",
            "'ui/map.html' is left out of the archive (.plugportignore or a hidden folder)",
        )
    ]


def test_a_custom_views_assets_folder_must_hold_files(make_plugin: Callable[..., Path]) -> None:
    root = ui_plugin(make_plugin)
    _edit(
        root / "plugport.toml",
        'file = "ui/map.html" }',
        'file = "ui/map.html", assets = "static" }',
    )
    report = authoring.validate_tree(root)
    assert [(p.path, p.message) for p in report.errors] == [
        ("contributes.views[0].assets", "'static' is not a folder of the plugin with files in it")
    ]
    (root / "static").mkdir()
    (root / "static" / "map.js").write_text("console.log(1)\n")
    assert authoring.validate_tree(root).errors == []


def test_a_packed_archive_keeps_the_view_and_validates(
    make_plugin: Callable[..., Path], tmp_path: Path
) -> None:
    root = ui_plugin(make_plugin)
    packed = authoring.pack_plugin(root, tmp_path / "dist")
    with zipfile.ZipFile(packed.result.path) as archive:
        assert "ui/map.html" in archive.namelist()
    assert authoring.validate_path(packed.result.path).errors == []
