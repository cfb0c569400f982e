"""A plugin's life from the command line against a real registry: unyank, deprecate and back,
unlist and back, suspend and back, delete (only with --yes), and API tokens; a token without
the right scope is refused, naming it, and changes nothing."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import RunCli
from tests.host._plugins import publish, write
from tests.registry.conftest import Registry
from tests.registry.test_publish import Publisher

NAME = "acme.tool"


@pytest.fixture(autouse=True)
def published(registry: Registry, tmp_path: Path) -> None:
    (tmp_path / "scratch").mkdir()
    publish(
        registry,
        Publisher(registry, tmp_path / "scratch"),
        write(tmp_path, NAME, "1.0.0"),
        tmp_path / "dist",
    )


def plugin(registry: Registry) -> dict[str, object]:
    body: dict[str, object] = httpx.get(f"{registry.url}/api/v1/plugins/{NAME}").json()
    return body


def found(registry: Registry) -> list[str]:
    items = httpx.get(f"{registry.url}/api/v1/plugins", params={"q": "tool"}).json()["items"]
    return [item["name"] for item in items]


def test_the_lifecycle_commands(cli: RunCli, registry: Registry) -> None:
    assert cli("yank", NAME, "1.0.0", "--reason", "broken").exit_code == 0
    unyanked = cli("unyank", NAME, "1.0.0")
    assert unyanked.exit_code == 0, unyanked.output
    version = httpx.get(f"{registry.url}/api/v1/plugins/{NAME}/versions/1.0.0").json()
    assert version["yanked_reason"] is None

    done = cli("deprecate", NAME, "--reason", "unmaintained", "--replaced-by", "acme.other")
    assert done.exit_code == 0, done.output
    assert "use acme.other" in done.output
    assert (plugin(registry)["deprecated"], plugin(registry)["replaced_by"]) == (
        "unmaintained",
        "acme.other",
    )
    assert cli("undeprecate", NAME).exit_code == 0
    assert plugin(registry)["deprecated"] is None

    assert cli("unlist", NAME).exit_code == 0
    assert NAME not in found(registry)
    assert cli("relist", NAME).exit_code == 0
    assert NAME in found(registry)

    assert cli("suspend", NAME, "--reason", "malware report").exit_code == 0
    assert NAME not in found(registry)
    assert cli("unsuspend", NAME).exit_code == 0
    assert NAME in found(registry)

    refused = cli("delete", NAME)
    assert refused.exit_code == 1
    assert "--yes" in refused.output
    assert registry.count("plugins") == 1
    deleted = cli("delete", NAME, "--yes")
    assert deleted.exit_code == 0, deleted.output
    assert registry.count("plugins") == 0


def test_tokens_and_scopes(
    cli: RunCli, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = cli("token", "create", "--identity", "rex", "--scope", "review", "--expires-days", "7")
    assert made.exit_code == 0, made.output
    token = made.output.strip()
    assert token.startswith("ppt_")
    who = httpx.get(f"{registry.url}/api/v1/tokens", headers={"Authorization": f"Bearer {token}"})
    assert who.status_code == 200

    bad = cli("token", "create", "--identity", "x", "--scope", "root")
    assert bad.exit_code == 1
    assert "scopes" in bad.output

    monkeypatch.setenv("PLUGPORT_TOKEN", token)  # a reviewer may not suspend
    refused = cli("suspend", NAME, "--reason", "no")
    assert refused.exit_code == 1
    assert "admin" in refused.output
    assert NAME in found(registry)  # not suspended

    monkeypatch.setenv("PLUGPORT_TOKEN", registry.admin)
    prefix = token.split("_")[1]
    assert cli("token", "revoke", prefix).exit_code == 0
    after = httpx.get(f"{registry.url}/api/v1/tokens", headers={"Authorization": f"Bearer {token}"})
    assert after.status_code == 401
