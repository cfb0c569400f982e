"""Publishing over real HTTP: a signed archive is verified, scanned, stored and queued; every
refusal is a precise 4xx that leaves no version row and no blob behind."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from plugport import scaffold
from plugport.authoring import archive_facts, pack_plugin
from plugport.signing import generate_private_key, public_key_pem, sign
from tests.registry.conftest import Registry
from tests.registry.test_access import error_of


class Publisher:
    """A namespace with a registered key and a token allowed to publish in it."""

    def __init__(self, registry: Registry, root: Path, namespace: str = "acme") -> None:
        self.registry = registry
        self.root = root
        self.key = generate_private_key()
        with registry.client(registry.admin) as admin:
            created = admin.post("/api/v1/namespaces", json={"name": namespace, "owner": "ada"})
            created.raise_for_status()
            pem = public_key_pem(self.key.public_key())
            admin.post(f"/api/v1/namespaces/{namespace}/keys", json={"public_key_pem": pem})
        self.token = registry.token("ada", f"publish:{namespace}")

    def build(self, name: str = "acme.hello", edit: Callable[[Path], None] | None = None) -> Path:
        source = self.root / f"src-{name}-{len(list(self.root.iterdir()))}"
        scaffold.create_plugin(name, "basic", source)
        if edit is not None:
            edit(source)
        return pack_plugin(source, self.root).result.path

    def signature(self, archive: Path, key: Ed25519PrivateKey | None = None) -> bytes:
        return sign(key or self.key, archive_facts(archive))

    def upload(
        self,
        archive: Path,
        signature: bytes | None = None,
        *,
        name: str | None = None,
        token: str | None = None,
    ) -> httpx.Response:
        files: dict[str, Any] = {"archive": ("a.plugport", archive.read_bytes())}
        files["signature"] = (
            "a.sig",
            signature if signature is not None else self.signature(archive),
        )
        target = name or archive.name.split("-")[0]
        with self.registry.client(token or self.token) as client:
            return client.post(f"/api/v1/plugins/{target}/versions", files=files)


def stored_blobs(root: Path) -> list[Path]:
    """The blobs under a local store's ``root``, not its ``tmp`` directory (its own parts only:
    ``root`` itself may well lie under a ``/tmp``)."""
    return [p for p in root.rglob("*") if p.is_file() and "tmp" not in p.relative_to(root).parts]


def nothing_stored(registry: Registry, tmp_path: Path) -> None:
    assert registry.count("plugin_versions") == 0
    assert stored_blobs(tmp_path / "data" / "blobs") == []


def test_a_signed_archive_is_scanned_stored_and_queued(registry: Registry, tmp_path: Path) -> None:
    publisher = Publisher(registry, tmp_path)
    archive = publisher.build()
    response = publisher.upload(archive)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["name"], body["version"], body["status"]) == (
        "acme.hello",
        "0.1.0",
        "pending_review",
    )
    assert body["scan"]["counts"] == {"high": 0, "medium": 0, "low": 0}
    assert len(body["key_id"]) == 64
    stored = tmp_path / "data" / "blobs" / body["sha256"][:2] / body["sha256"][2:4] / body["sha256"]
    assert stored.read_bytes() == archive.read_bytes()
    assert registry.count("audit_records") == 3  # namespace, key, upload


def test_a_trusted_namespace_publishes_unless_the_scan_finds_something_high(
    registry: Registry, tmp_path: Path
) -> None:
    with registry.client(registry.admin) as admin:
        admin.post("/api/v1/namespaces", json={"name": "trust", "owner": "ada", "trusted": True})
    publisher = Publisher(registry, tmp_path, "acme")
    with registry.engine.begin() as connection:
        from sqlalchemy import text

        connection.execute(text("UPDATE namespaces SET trusted = true WHERE name = 'acme'"))
    clean = publisher.upload(publisher.build())
    assert clean.json()["status"] == "published"

    def risky(source: Path) -> None:
        code = source / "hello" / "plugin.py"
        code.write_text(code.read_text() + "\nimport subprocess\n")
        manifest = source / "plugport.toml"
        manifest.write_text(manifest.read_text().replace('version = "0.1.0"', 'version = "0.2.0"'))

    flagged = publisher.upload(publisher.build(edit=risky))
    assert flagged.status_code == 201, flagged.text
    assert flagged.json()["status"] == "pending_review"
    assert flagged.json()["scan"]["highest"] == "high"


def test_a_version_is_never_reused(registry: Registry, tmp_path: Path) -> None:
    publisher = Publisher(registry, tmp_path)
    archive = publisher.build()
    assert publisher.upload(archive).status_code == 201
    again = publisher.upload(archive)
    assert again.status_code == 409
    assert "versions are immutable" in error_of(again)["message"]
    assert registry.count("plugin_versions") == 1


@pytest.mark.parametrize(
    ("case", "status", "code", "message"),
    [
        ("wrong key", 422, "bad_signature", "not a registered, unrevoked key"),
        ("tampered archive", 422, "bad_signature", "sha256"),
        ("garbage signature", 422, "bad_signature", "not JSON"),
        ("name mismatch", 400, "invalid_input", "uploaded to 'acme.other'"),
        ("other namespace token", 403, "forbidden", "publish:acme"),
        ("no such namespace", 404, "not_found", "no namespace 'zeta'"),
        ("not a zip", 400, "invalid_input", "not a plugin archive"),
    ],
)
def test_refusals_leave_nothing_behind(  # noqa: PLR0917 parametrised cases
    registry: Registry, tmp_path: Path, case: str, status: int, code: str, message: str
) -> None:
    publisher = Publisher(registry, tmp_path)
    archive = publisher.build()
    kwargs: dict[str, Any] = {}
    if case == "wrong key":
        kwargs["signature"] = publisher.signature(archive, generate_private_key())
    elif case == "tampered archive":  # same name and version, other code, the old signature
        kwargs["signature"] = publisher.signature(archive)

        def tamper(source: Path) -> None:
            (source / "hello" / "plugin.py").write_text(
                "from plugport.sdk import Plugin, hook\n\n\nclass HelloPlugin(Plugin):\n"
                "    @hook('greet')\n    def greet(self, name):\n        return 'pwned'\n"
            )

        archive = publisher.build(edit=tamper)
    elif case == "garbage signature":
        kwargs["signature"] = b"{nope"
    elif case == "name mismatch":
        kwargs["name"] = "acme.other"
    elif case == "other namespace token":
        kwargs["token"] = registry.token("eve", "publish:other")
    elif case == "no such namespace":
        archive = publisher.build("zeta.hello")
        kwargs["token"] = registry.token("ada", "publish:zeta")
    elif case == "not a zip":
        archive = tmp_path / "acme.hello-0.1.0.plugport"
        archive.write_bytes(b"not a zip at all")
        kwargs["signature"] = b"{}"
    response = publisher.upload(archive, **kwargs)
    assert response.status_code == status, response.text
    error = error_of(response)
    assert error["code"] == code
    assert message in error["message"]
    nothing_stored(registry, tmp_path)


def test_an_oversized_upload_is_413(registry: Registry, tmp_path: Path) -> None:
    publisher = Publisher(registry, tmp_path)
    archive = tmp_path / "acme.big-1.0.0.plugport"
    archive.write_bytes(b"x" * (registry_limit(registry) + 1))
    response = publisher.upload(archive, b"{}", name="acme.big")
    assert response.status_code == 413
    assert error_of(response)["code"] == "too_large"
    nothing_stored(registry, tmp_path)


def registry_limit(registry: Registry) -> int:
    return 20 * 1024 * 1024


def test_malformed_multipart_is_400(registry: Registry, tmp_path: Path) -> None:
    Publisher(registry, tmp_path)
    with registry.client(registry.token("ada", "publish:acme")) as client:
        response = client.post(
            "/api/v1/plugins/acme.hello/versions",
            content=b"garbage",
            headers={"content-type": "multipart/form-data; boundary=x"},
        )
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_request"
    assert error_of(response)["message"] == "Invalid multipart data."
    nothing_stored(registry, tmp_path)


def test_missing_parts_are_named(registry: Registry, tmp_path: Path) -> None:
    publisher = Publisher(registry, tmp_path)
    with registry.client(publisher.token) as client:
        response = client.post(
            "/api/v1/plugins/acme.hello/versions", files={"archive": ("a", b"x")}
        )
    assert response.status_code == 422
    assert "body.signature: Field required" in error_of(response)["message"]
    nothing_stored(registry, tmp_path)
