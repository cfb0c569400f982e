"""The docs site builds with ``mkdocs build --strict`` (a warning or a broken link fails), and its
generated references cover what the code has: every manifest key, every CLI command, every
sandbox layer, the SDK's public names."""

from __future__ import annotations

import html
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import typer.main

from plugport import sdk, testing
from plugport.cli import app
from plugport.components import COMPONENT_SCHEMA, COMPONENT_TYPES
from plugport.manifest import manifest_json_schema
from plugport.runtime.capabilities import fakes
from plugport.runtime.sandbox import LAYERS
from plugport.sdk import __all__ as sdk_names
from plugport.testing import __all__ as testing_names

pytestmark = pytest.mark.slow  # long: runs first (tests/conftest.py)

ROOT = Path(__file__).parent.parent
CONFIG = ROOT / "mkdocs.yml"


def _mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config)]
    return subprocess.run(
        [*command, "-d", str(site)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real site, built once for this module exactly as ``make docs`` builds it."""
    out = tmp_path_factory.mktemp("site")
    result = _mkdocs_build(CONFIG, out)
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    return out


def _page(site: Path, name: str) -> str:
    return (site / name / "index.html").read_text(encoding="utf-8")


def test_manifest_reference_lists_every_key(site: Path) -> None:
    page = _page(site, "reference/manifest")
    schema = manifest_json_schema()
    tables = [schema, *schema["$defs"].values()]
    keys = {key for table in tables for key in table.get("properties", {})}
    assert len(keys) > 30
    missing = [key for key in sorted(keys) if f"<code>{key}</code>" not in page]
    assert missing == []
    assert "≤ 4096" in page  # limits.memory_mb's bound, from the schema


def test_cli_reference_lists_every_command_and_option(site: Path) -> None:
    page = _page(site, "reference/cli")
    root = typer.main.get_command(app)
    paths: list[str] = []

    def walk(group: object, prefix: str) -> None:
        for name, command in getattr(group, "commands", {}).items():
            paths.append(f"{prefix} {name}")
            for param in command.params:
                for opt in param.opts:
                    if opt.startswith("-"):
                        assert f"<code>{opt}</code>" in page, (prefix, name, opt)
            walk(command, f"{prefix} {name}")

    walk(root, "plugport")
    assert "plugport host workspace create" in paths
    missing = [path for path in paths if f'id="{path.replace(" ", "-")}"' not in page]
    assert missing == []


def test_sandbox_page_has_every_layer_and_http_page_the_routes(site: Path) -> None:
    sandbox = _page(site, "sandbox")
    assert all(f"<code>{layer.name}</code>" in sandbox for layer in LAYERS)
    http = _page(site, "reference/http-api")
    assert "/api/v1/plugins/{name}/resolve" in http
    assert "/api/v1/workspaces/{ws}/installations/{name}/execute" in http


def test_sdk_reference_documents_the_public_names(site: Path) -> None:
    page = _page(site, "reference/sdk")
    missing = [name for name in sdk_names if f'id="plugport.sdk.{name}"' not in page]
    assert missing == []
    proxies = [getattr(sdk, name) for name in sdk_names if name.endswith("Proxy")]
    assert len(proxies) > 5
    methods = [
        f"{proxy.__name__}.{method}"
        for proxy in proxies
        for method, value in vars(proxy).items()
        if callable(value) and not method.startswith("_")
    ]
    assert "StorageProxy.get" in methods
    assert [m for m in methods if f'id="plugport.sdk.{m}"' not in page] == []
    assert 'id="plugport.host.PluginHost.install"' in _page(site, "reference/host")


def test_testing_reference_documents_the_fixtures_handle_and_fakes(site: Path) -> None:
    page = _page(site, "reference/testing")
    ids = [f"plugport.testing.{name}" for name in testing_names]
    ids += ["plugport.testing.plugin.plugin", "plugport.testing.plugin.plugin_factory"]
    handle = testing.PluginHandle
    ids += [
        f"plugport.testing.PluginHandle.{name}"
        for name in vars(handle)
        if not name.startswith("_") and name not in handle.__annotations__
    ]
    where = "plugport.runtime.capabilities.fakes"
    ids += [f"{where}.{name}" for name in fakes.__all__ if name != "FAKES"]
    assert "plugport.testing.PluginHandle.assert_only_declared" in ids
    assert [name for name in ids if f'id="{name}"' not in page] == []


def test_components_reference_documents_every_component_and_publishes_the_schema(
    site: Path,
) -> None:
    page = _page(site, "reference/components")
    assert len(COMPONENT_TYPES) > 15
    missing = [name for name in COMPONENT_TYPES if f'id="component-{name}"' not in page]
    assert missing == []
    for name in COMPONENT_TYPES:
        section = page.split(f'id="component-{name}"', 1)[1].split('id="component-', 1)[0]
        fields = [k for k in COMPONENT_SCHEMA["$defs"][name]["properties"] if k != "type"]
        assert [f for f in fields if f"<code>{f}</code>" not in section] == [], name
        assert "&quot;type&quot;" in section or '"type"' in section, name  # its example
    assert 'When <code>kind</code> is <code>"gauge"</code>' in page
    assert "Give exactly one of <code>href</code>, <code>page</code>." in page
    published = json.loads((site / "reference" / "components.json").read_text(encoding="utf-8"))
    assert published == COMPONENT_SCHEMA
    assert 'href="../components.json"' in page or 'href="components.json"' in page


def test_the_widget_guide_shows_the_template_as_generated(site: Path) -> None:
    text = html.unescape(re.sub(r"<[^>]+>", "", _page(site, "how-to/widget")))
    hooks = _hooks()
    for part in ("widget-template-manifest", "widget-template-code", "widget-template-tests"):
        block = hooks.GENERATORS[part]().splitlines()
        assert block[0].startswith("```")
        assert len(block) > 10
        missing = [line for line in block[1:-1] if line.strip() and line not in text]
        assert missing == [], part
    assert "update_widget" not in text.split("Before 0.4")[0]  # only in the note about it


def test_strict_build_fails_on_a_broken_link(tmp_path: Path) -> None:
    """The same settings (validation, hooks) on a one-page site with a dead link: exit 1."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\nSee [the guide](missing.md).\n", encoding="utf-8")
    config_text = CONFIG.read_text(encoding="utf-8")
    config_text = config_text.split("\nnav:\n")[0]  # this site has one page
    config_text = config_text.replace("docs_dir: docs", f"docs_dir: {docs}")
    config_text = config_text.replace("  - docs/_hooks.py", f"  - {ROOT / 'docs' / '_hooks.py'}")
    config_text = config_text.replace("paths: [src]", f"paths: [{ROOT / 'src'}]")
    config = tmp_path / "mkdocs.yml"
    config.write_text(config_text, encoding="utf-8")
    result = _mkdocs_build(config, tmp_path / "site")
    assert result.returncode != 0
    assert "'missing.md'" in result.stderr
    assert "but the target is not found among documentation files" in result.stderr


def _hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("plugport_docs_hooks", ROOT / "docs/_hooks.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_an_unknown_generated_marker_fails_the_build() -> None:
    from mkdocs.exceptions import PluginError

    hooks = _hooks()
    hooks.on_pre_build(None)

    class Page:
        class file:  # the shape of mkdocs' Page.file
            src_uri = "guide.md"

    markdown = "# Guide\n\n<!-- generated: no-such-part -->\n"
    with pytest.raises(PluginError, match=r"guide\.md: unknown generated part 'no-such-part'"):
        hooks.on_page_markdown(markdown, Page(), None, None)
    text = "# Guide\n\n<!-- generated: permission-words -->\n"
    assert "Read its own settings" in hooks.on_page_markdown(text, Page(), None, None)
