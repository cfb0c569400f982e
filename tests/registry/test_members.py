"""Namespace members over real HTTP and from the CLI: owners add and remove them, the last
owner stays, a member publishes but cannot manage; identities have one spelling (NFC) and
control, NUL and bidi characters are refused wherever an identity enters, naming the field,
with nothing changed."""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

import pytest

from plugport._identity import check_identity
from plugport.errors import InvalidInputError
from tests.conftest import RunCli
from tests.registry.conftest import Registry
from tests.registry.test_access import error_of
from tests.registry.test_publish import Publisher

BAD_IDENTITIES = {
    "NUL": "ada\x00",
    "newline": "ada\nroot",
    "escape": "ada\x1b[2J",
    "right-to-left override": "ada\u202egnp.exe",
    "left-to-right isolate": "\u2066ada",
    "pop directional isolate": "ada\u2069",
    "right-to-left mark": "ada\u200f",
    "zero width space": "a\u200bda",
    "line separator": "ada\u2028",
    "leading space": " ada",
    "empty": "",
}
TABLES = ("namespaces", "namespace_members", "api_tokens", "audit_records")


def counts(registry: Registry) -> dict[str, int]:
    return {table: registry.count(table) for table in TABLES}


def acme(registry: Registry) -> None:
    with registry.client(registry.admin) as admin:
        admin.post("/api/v1/namespaces", json={"name": "acme", "owner": "ada"}).raise_for_status()


def members(registry: Registry) -> dict[str, str]:
    with registry.client() as anyone:
        listed = anyone.get("/api/v1/namespaces/acme/members")
    listed.raise_for_status()
    return {m["identity"]: m["role"] for m in listed.json()}


@pytest.mark.parametrize(
    "value", [BAD_IDENTITIES[k] for k in sorted(BAD_IDENTITIES)], ids=sorted(BAD_IDENTITIES)
)
def test_check_identity_refuses_invisible_and_control_characters(value: str) -> None:
    with pytest.raises(InvalidInputError, match=r"^owner: "):
        check_identity(value, field="owner")


def test_check_identity_gives_one_spelling() -> None:
    decomposed = unicodedata.normalize("NFD", "josé")
    assert decomposed != "josé"
    assert check_identity(decomposed) == "josé"
    assert check_identity("ada@acme.example") == "ada@acme.example"
    with pytest.raises(InvalidInputError, match="1 to 200"):
        check_identity("x" * 201)


def test_owners_manage_members_and_the_last_owner_stays(registry: Registry) -> None:
    acme(registry)
    ada = registry.token("ada", "publish:acme")
    with registry.client(ada) as client:
        added = client.post("/api/v1/namespaces/acme/members", json={"identity": "mel"})
        assert added.status_code == 201, added.text
        assert added.json()["role"] == "member"
        assert added.json()["added_by"] == "ada"
        assert added.json()["added_at"] is not None
        owner = client.post(
            "/api/v1/namespaces/acme/members", json={"identity": "bea", "role": "owner"}
        )
        assert owner.status_code == 201, owner.text
        again = client.post("/api/v1/namespaces/acme/members", json={"identity": "mel"})
        assert again.status_code == 409
        assert "is already member of namespace 'acme'" in error_of(again)["message"]
    assert members(registry) == {"ada": "owner", "bea": "owner", "mel": "member"}
    with registry.client() as anyone:
        shown = anyone.get("/api/v1/namespaces/acme").json()
    assert shown["owners"] == ["ada", "bea"]
    assert shown["members"] == ["ada", "bea", "mel"]
    assert shown["roles"] == {"ada": "owner", "bea": "owner", "mel": "member"}

    with registry.client(ada) as client:
        assert (
            client.delete("/api/v1/namespaces/acme/members", params={"identity": "bea"}).status_code
            == 200
        )
        before = counts(registry)
        last = client.delete("/api/v1/namespaces/acme/members", params={"identity": "ada"})
        assert last.status_code == 409
        assert "is the last owner of namespace 'acme'" in error_of(last)["message"]
        assert counts(registry) == before
        missing = client.delete("/api/v1/namespaces/acme/members", params={"identity": "nobody"})
        assert missing.status_code == 404
    assert members(registry) == {"ada": "owner", "mel": "member"}
    with registry.client(registry.token("mel", "publish:acme")) as mel:  # members cannot manage
        refused = mel.post("/api/v1/namespaces/acme/members", json={"identity": "eve"})
        assert refused.status_code == 403
        assert (
            "'mel' is not an owner of namespace 'acme' (is member)"
            in (error_of(refused)["message"])
        )
    assert members(registry) == {"ada": "owner", "mel": "member"}


def test_a_member_publishes_and_loses_that_when_removed(registry: Registry, tmp_path: Path) -> None:
    publisher = Publisher(registry, tmp_path)  # acme, owned by ada, with a key
    with registry.client(publisher.token) as ada:
        ada.post("/api/v1/namespaces/acme/members", json={"identity": "mel"}).raise_for_status()
    mel = registry.token("mel", "publish:acme")
    assert publisher.upload(publisher.build(), token=mel).status_code == 201
    with registry.client(publisher.token) as ada:
        ada.delete("/api/v1/namespaces/acme/members", params={"identity": "mel"}).raise_for_status()
    archive = publisher.build(edit=lambda p: _bump(p / "plugport.toml"))
    refused = publisher.upload(archive, token=mel)
    assert refused.status_code == 403
    assert "'mel' is not an owner or a member of namespace 'acme'" in error_of(refused)["message"]
    assert registry.count("plugin_versions") == 1


def _bump(manifest: Path) -> None:
    manifest.write_text(manifest.read_text().replace('version = "0.1.0"', 'version = "0.2.0"'))


@pytest.mark.parametrize(
    "value", [BAD_IDENTITIES[k] for k in sorted(BAD_IDENTITIES)], ids=sorted(BAD_IDENTITIES)
)
def test_bad_identities_are_refused_everywhere_naming_the_field(
    registry: Registry, value: str
) -> None:
    acme(registry)
    before = counts(registry)
    ada = registry.token("ada", "publish:acme")
    attempts: list[tuple[str, str, str, dict[str, Any]]] = [
        ("identity", "POST", "/api/v1/tokens", {"json": {"identity": value, "scopes": ["review"]}}),
        ("owner", "POST", "/api/v1/namespaces", {"json": {"name": "beta", "owner": value}}),
        ("identity", "POST", "/api/v1/namespaces/acme/members", {"json": {"identity": value}}),
    ]
    members = "/api/v1/namespaces/acme/members"
    attempts.append(("identity", "DELETE", members, {"params": {"identity": value}}))
    after_token = counts(registry)
    for field, method, path, options in attempts:
        with registry.client(registry.admin if field == "owner" or "tokens" in path else ada) as c:
            response = c.request(method, path, **options)
        assert response.status_code in (400, 422), (path, response.text)
        message = error_of(response)["message"]
        assert message.startswith(f"{field}:") or f".{field}:" in message, message
        assert value.strip() == "" or value not in message  # never echoed back
    assert counts(registry) == after_token
    assert after_token["api_tokens"] == before["api_tokens"] + 1  # ada's, made above


def test_identities_are_compared_in_one_spelling(registry: Registry) -> None:
    """An owner added as NFD and a token issued as NFC are the same person."""
    with registry.client(registry.admin) as admin:
        owner = unicodedata.normalize("NFD", "josé")
        created = admin.post("/api/v1/namespaces", json={"name": "acme", "owner": owner})
        assert created.json()["owners"] == ["josé"]
        token = admin.post(
            "/api/v1/tokens", json={"identity": "josé", "scopes": ["publish:acme"]}
        ).json()
    assert token["identity"] == "josé"
    with registry.client(token["token"]) as jose:
        added = jose.post("/api/v1/namespaces/acme/members", json={"identity": "mel"})
        assert added.status_code == 201, added.text


def test_members_from_the_cli(cli: RunCli, registry: Registry) -> None:
    assert cli("namespace", "create", "acme", "--owner", "ada").exit_code == 0
    added = cli("namespace", "add-member", "acme", "mel")
    assert added.exit_code == 0, added.output
    assert "mel is now a member of acme" in added.output
    owner = cli("namespace", "add-member", "acme", "bea", "--owner")
    assert "bea is now an owner of acme" in owner.output
    listed = cli("namespace", "members", "acme")
    assert listed.exit_code == 0, listed.output
    rows = [
        [cell for cell in line.split() if cell not in "│┃"]
        for line in listed.output.splitlines()
        if line.startswith("│")
    ]
    assert [row[:2] for row in rows] == [["ada", "owner"], ["bea", "owner"], ["mel", "member"]]
    assert cli("namespace", "remove-member", "acme", "bea").exit_code == 0
    before = counts(registry)
    last = cli("namespace", "remove-member", "acme", "ada")
    assert last.exit_code == 1
    assert "is the last owner of namespace 'acme'" in last.output
    assert "HTTP 409" in last.output
    bidi = cli("namespace", "add-member", "acme", "ada\u202egnp")
    assert bidi.exit_code == 1
    assert "IDENTITY: contains U+202E (RIGHT-TO-LEFT OVERRIDE)" in bidi.output
    owner_option = cli("namespace", "create", "beta", "--owner", "bob\x00")
    assert owner_option.exit_code == 1
    assert "--owner: contains U+0000" in owner_option.output
    token = cli("token", "create", "--identity", "rex\u2066", "--scope", "review")
    assert token.exit_code == 1
    assert "--identity: contains U+2066" in token.output
    assert counts(registry) == before
    assert members(registry) == {"ada": "owner", "mel": "member"}


def test_the_namespace_page_shows_owners_and_members(registry: Registry) -> None:
    acme(registry)
    with registry.client(registry.token("ada", "publish:acme")) as ada:
        ada.post("/api/v1/namespaces/acme/members", json={"identity": "mel"}).raise_for_status()
    with registry.client() as browser:
        page = browser.get("/namespaces/acme", headers={"accept": "text/html"}).text
    assert '<li class="email" data-testid="owner">ada</li>' in page
    assert 'data-role="member">mel' in page
