"""A custom view's files on a real file system: only files inside the view's folder, after
symlinks are followed; only allowed types; nothing too large; and the call budgets."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from plugport.errors import NotFoundError
from plugport.host.ui import views
from plugport.host.ui.views import (
    CallBudgets,
    InstalledView,
    read_asset,
    read_document,
    theme_variables,
)
from plugport.manifest import CustomView
from tests.host._views import BOARD, VIEWER, write_viewer


@pytest.fixture
def code(tmp_path: Path) -> Path:
    """An installed plugin's code: ``ui/`` holds the view; ``secret.js`` and ``main.py`` lie
    outside it, as does ``elsewhere/`` beside the code directory."""
    root = tmp_path / "code"
    (root / "ui" / "lib").mkdir(parents=True)
    (root / "ui" / "view.html").write_text("<p>view</p>")
    (root / "ui" / "app.js").write_text("app()")
    (root / "ui" / "lib" / "deep.js").write_text("deep()")
    (root / "ui" / "notes.txt").write_text("notes")
    (root / "secret.js").write_text("secret()")
    (root / "main.py").write_text("import os")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "stolen.js").write_text("stolen()")
    return root


def _view(code: Path, file: str = "ui/view.html", assets: str = "") -> InstalledView:
    view = CustomView(id="v.board", title="Board", file=file, assets=assets)
    return InstalledView("acme.viewer", "1.0.0", code, view)


def test_files_inside_the_folder_are_read_with_their_type(code: Path) -> None:
    view = _view(code)
    assert read_asset(view, "ui/app.js") == (b"app()", "text/javascript; charset=utf-8")
    assert read_asset(view, "ui/lib/deep.js")[0] == b"deep()"
    assert read_document(view) == b"<p>view</p>"


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("secret.js", "from 'ui' only"),
        ("main.py", "from 'ui' only"),
        ("ui/../secret.js", "'..'"),
        ("/etc/passwd", "absolute"),
        ("ui/notes.txt", "js, css, images"),
        ("ui/view.html", "js, css, images"),
        ("ui/missing.js", "no view file"),
        ("ui/lib", "js, css, images"),
        ("ui/.x.js", "hidden"),
    ],
)
def test_paths_outside_the_folder_or_of_other_types_are_refused(
    code: Path, path: str, reason: str
) -> None:
    with pytest.raises(NotFoundError, match=reason):
        read_asset(_view(code), path)


def test_a_symlink_out_of_the_folder_is_refused(code: Path) -> None:
    (code / "ui" / "link.js").symlink_to(code / "secret.js")
    (code / "ui" / "abs.js").symlink_to(code.parent / "elsewhere" / "stolen.js")
    (code / "ui" / "out").symlink_to(code.parent / "elsewhere")
    (code / "ui" / "etc.js").symlink_to("/etc/passwd")
    view = _view(code)
    for path in ("ui/link.js", "ui/abs.js", "ui/out/stolen.js", "ui/etc.js"):
        with pytest.raises(NotFoundError, match="leads outside the view's folder"):
            read_asset(view, path)


def test_a_symlink_within_the_folder_is_followed(code: Path) -> None:
    (code / "ui" / "alias.js").symlink_to("lib/deep.js")
    assert read_asset(_view(code), "ui/alias.js")[0] == b"deep()"


def test_a_folder_or_document_that_is_a_symlink_out_of_the_code_is_refused(code: Path) -> None:
    (code / "static").symlink_to(code.parent / "elsewhere")
    with pytest.raises(NotFoundError, match="leads outside"):
        read_asset(_view(code, assets="static"), "static/stolen.js")
    (code / "ui" / "leak.html").symlink_to(code.parent / "elsewhere" / "stolen.js")
    with pytest.raises(NotFoundError, match="leads outside"):
        read_document(_view(code, file="ui/leak.html"))


def test_a_code_directory_reached_through_a_symlink_still_works(code: Path) -> None:
    linked = code.parent / "linked"
    linked.symlink_to(code)  # as a plugport dev source may be
    assert read_asset(_view(linked), "ui/app.js")[0] == b"app()"
    with pytest.raises(NotFoundError):
        read_asset(_view(linked), "secret.js")


def test_a_file_too_large_is_refused(code: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(views, "MAX_ASSET_BYTES", 4)
    with pytest.raises(NotFoundError, match="larger than 4 bytes"):
        read_asset(_view(code), "ui/app.js")


def test_the_document_is_whatever_the_manifest_names_at_any_depth(code: Path) -> None:
    os.makedirs(code / "a" / "b")
    (code / "a" / "b" / "v.html").write_text("deep view")
    assert read_document(_view(code, file="a/b/v.html")) == b"deep view"
    assert _view(code, file="a/b/v.html").folder == "a/b"


def test_theme_variables_are_the_host_defaults() -> None:
    variables = theme_variables("any")
    assert variables["bg"] == "#f7f8fa"
    variables["bg"] = "changed"  # a copy: callers cannot change the defaults
    assert theme_variables("other")["bg"] == "#f7f8fa"


def test_call_budgets_are_per_key_and_bounded() -> None:
    now = [0.0]
    budgets = CallBudgets(max_keys=2, clock=lambda: now[0])
    spent = [budgets.spend(("a",)) for _ in range(31)]
    assert spent[:30] == [0.0] * 30
    assert spent[30] > 0
    assert budgets.spend(("b",)) == 0.0  # another user or view has its own
    budgets.spend(("c",))  # a third key forgets the least recently used ("a")
    assert budgets.spend(("a",)) == 0.0
    now[0] = 1.0
    assert budgets.spend(("b",)) == 0.0


def test_a_view_handler_is_tested_with_the_plugin_fixture(
    plugin_factory: Any, tmp_path: Path
) -> None:
    """As the how-to says: ``plugin.ui.render(view, action=..., payload=...)`` is the answer
    the bridge would carry, from the handler in the real sandbox."""
    plugin = plugin_factory(write_viewer(tmp_path / "src"))
    answer = plugin.ui.render(BOARD, action="items.load", payload={"page": 2})
    assert answer == {
        "plugin": VIEWER,
        "view": BOARD,
        "surface": "view",
        "action": "items.load",
        "payload": {"page": 2},
        "workspace": "test",
    }
