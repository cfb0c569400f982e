"""Small real plugins for the host's end-to-end tests: written to disk, packed, signed by a
namespace's key and published to a real registry (approved by a reviewer)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from plugport.authoring import pack_plugin
from tests.registry.conftest import Registry
from tests.registry.test_publish import Publisher

GREETER = """\
from plugport.sdk import Plugin, hook


class Main(Plugin):
    @hook("greet")
    def greet(self, name):
        return "{label} says hello to " + name
"""

BROKEN = """\
from plugport.sdk import Plugin, hook


class Main(Plugin):
    def initialize(self):
        raise RuntimeError("this version cannot start")

    @hook("greet")
    def greet(self, name):
        return "never"
"""


def write(
    root: Path,
    name: str,
    version: str,
    *,
    code: str | None = None,
    dependencies: dict[str, str] | None = None,
    extra: str = "",
) -> Path:
    """A plugin directory: ``main.py`` (a greeter by default) and its manifest."""
    source = root / f"{name}-{version}"
    source.mkdir(parents=True)
    label = f"{name} {version}"
    (source / "main.py").write_text((code or GREETER).replace("{label}", label))
    deps = "".join(f'"{k}" = "{v}"\n' for k, v in (dependencies or {}).items())
    (source / "plugport.toml").write_text(
        f'name = "{name}"\nversion = "{version}"\nentry = "main:Main"\n'
        f'display_name = "{name}"\ndescription = "A test plugin."\n'
        + textwrap.dedent(extra)
        + "[contributes]\nhooks = { greet = 0 }\n"
        + (f"[dependencies]\n{deps}" if deps else "")
    )
    return source


def publish(registry: Registry, publisher: Publisher, source: Path, out: Path) -> Path:
    """Pack, sign, upload and approve; returns the archive."""
    out.mkdir(parents=True, exist_ok=True)
    archive = pack_plugin(source, out).result.path
    name, version = source.name.rsplit("-", 1)
    response = publisher.upload(archive, name=name)
    assert response.status_code == 201, response.text
    if response.json()["status"] != "published":
        with registry.client(registry.token("rex", "review")) as reviewer:
            reviewer.post(
                f"/api/v1/review/{name}/{version}/approve", json={"reason": "fine"}
            ).raise_for_status()
    return archive
