"""The README's promises: its first commands and its manifest example stay true."""

from __future__ import annotations

import re
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
