"""The README's promises: its first commands and its manifest example stay true."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from plugport.manifest import parse_manifest

README = Path(__file__).parent.parent / "README.md"


def test_readme_starts_with_demo_and_test_commands() -> None:
    first_block = re.search(r"```sh\n(.*?)```", README.read_text(), re.DOTALL)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["make demo", "make test"]


def test_readme_manifest_example_is_valid() -> None:
    example = re.search(r"```toml\n(.*?)```", README.read_text(), re.DOTALL)
    assert example is not None
    manifest = parse_manifest(example.group(1), source="README.md")
    assert manifest.name == "acme.word-count"
    assert manifest.permissions.storage == 1024 * 1024
    assert manifest.supports("myapp", "2.4.0")
    assert not manifest.supports("myapp", "3.0")


def test_readme_runtime_example_runs(make_plugin: Callable[..., Path], tmp_path: Path) -> None:
    example = re.search(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    assert example is not None
    plugin = make_plugin("acme.hello")
    code = example.group(1).replace('Path("hello")', repr(str(plugin)).join(("Path(", ")")))
    code = code.replace('Path("host-state")', f"Path({str(tmp_path / 'state')!r})")
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["acme.hello Hello, Ada!", "active"]
    assert "plugport_plugin_calls_total" in result.stdout
    assert "kind='activate'" in result.stdout
