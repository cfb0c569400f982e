"""Reading the catalogue over real HTTP: the end-to-end path publish -> review -> read ->
resolve -> download, and the server's choice of version."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from plugport.errors import InvalidInputError
from plugport.registry.services.catalog import Candidate, choose_version
from tests.registry.conftest import Registry
from tests.registry.test_access import error_of
from tests.registry.test_publish import Publisher
from tests.registry.test_review import bump


def test_choose_the_highest_compatible_unyanked_version() -> None:
    candidates = [
        Candidate("1.0.0", {"myapp": ">=1,<2"}, yanked=False),
        Candidate("1.1.0", {"myapp": ">=1,<2"}, yanked=True),
        Candidate("2.0.0", {"myapp": ">=2"}, yanked=False),
        Candidate("2.1.0rc1", {}, yanked=False),
    ]
    assert choose_version(candidates, {}) == ("2.0.0", ["2.1.0rc1: pre-release"])
    assert choose_version(candidates, {"myapp": "1.5"}) == (
        "1.0.0",
        ["2.1.0rc1: pre-release", "2.0.0: myapp 1.5 is not in >=2", "1.1.0: yanked"],
    )
    assert choose_version(candidates, {"myapp": "0.1"})[0] is None
    with pytest.raises(InvalidInputError, match="myapp: 'banana' is not a PEP 440 version"):
        choose_version(candidates, {"myapp": "banana"})


def test_publish_review_read_resolve_download(registry: Registry, tmp_path: Path) -> None:
    publisher = Publisher(registry, tmp_path)
    first = publisher.build()
    publisher.upload(first).raise_for_status()

    def needs_myapp_2(source: Path) -> None:
        bump("0.2.0")(source)
        manifest = source / "plugport.toml"
        manifest.write_text(
            manifest.read_text().replace("[engines]\n", '[engines]\nmyapp = ">=2"\n')
        )

    second = publisher.build(edit=needs_myapp_2)
    publisher.upload(second).raise_for_status()
    with registry.client() as anonymous:
        assert anonymous.get("/api/v1/plugins/acme.hello").status_code == 404  # nothing yet?
    with registry.client(registry.token("rex", "review")) as reviewer:
        for version in ("0.1.0", "0.2.0"):
            reviewer.post(
                f"/api/v1/review/acme.hello/{version}/approve", json={"reason": "ok"}
            ).raise_for_status()
    with registry.client() as anonymous:
        found = anonymous.get(
            "/api/v1/plugins", params={"q": "hel", "host": "myapp", "host_version": "1.4"}
        ).json()
        assert [(i["name"], i["latest_version"]) for i in found["items"]] == [
            ("acme.hello", "0.2.0")  # compatible through 0.1.0, which resolve picks below
        ]
        shown = anonymous.get("/api/v1/plugins/acme.hello").json()
        assert shown["latest_version"] == "0.2.0"
        assert [v["version"] for v in shown["versions"]] == ["0.2.0", "0.1.0"]
        listed = anonymous.get("/api/v1/plugins/acme.hello/versions").json()
        assert listed[0]["engines"]["myapp"] == ">=2"  # what a host's resolver needs
        assert "myapp" not in listed[1]["engines"]
        assert listed[0]["dependencies"] == {}
        resolved = anonymous.get(
            "/api/v1/plugins/acme.hello/resolve", params={"host": "myapp", "host_version": "1.4"}
        ).json()
        assert resolved["version"] == "0.1.0"
        assert resolved["skipped"] == ["0.2.0: myapp 1.4 is not in >=2"]
        download = anonymous.get("/api/v1/plugins/acme.hello/versions/0.1.0/download")
        assert download.status_code == 200
        signature = anonymous.get("/api/v1/plugins/acme.hello/versions/0.1.0/signature")
        assert signature.content == publisher.signature(first)  # as uploaded, byte for byte
        assert download.content == first.read_bytes()
        assert download.headers["x-plugport-sha256"] == hashlib.sha256(download.content).hexdigest()
        anonymous.get("/api/v1/plugins/acme.hello/versions/0.1.0/download").raise_for_status()
        assert anonymous.get("/api/v1/plugins/acme.hello").json()["downloads"] == 2
        missing = anonymous.get("/api/v1/plugins/acme.hello/versions/9.9.9")
        assert missing.status_code == 404
        nothing = anonymous.get(
            "/api/v1/plugins/acme.hello/resolve", params={"plugport_version": "0.0.1"}
        )
        assert nothing.status_code == 404
        assert (
            "no compatible version 'acme.hello'; 0.2.0: plugport 0.0.1 is not in >="
            in (error_of(nothing)["message"])
        )
        half = anonymous.get("/api/v1/plugins/acme.hello/resolve", params={"host": "myapp"})
        assert half.status_code == 400
        assert "give both or neither" in error_of(half)["message"]
    assert registry.count("daily_stats") == 1
