"""Tokens, namespaces and keys over real HTTP: who may do what, and what a refusal looks like.
Every refused request is checked to have left no row behind."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from plugport.registry.migrate import head_revision
from plugport.signing import generate_private_key, key_id, public_key_pem
from tests.registry.conftest import Registry


def pem() -> tuple[str, str]:
    public = generate_private_key().public_key()
    return public_key_pem(public), key_id(public)


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return dict(body["error"])


def test_healthz_reports_the_database_and_schema(registry: Registry) -> None:
    with registry.client() as client:
        body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["database"] in ("sqlite", "postgresql")
    assert body["schema"] == head_revision()


def test_admin_creates_a_namespace_and_its_owner_registers_a_key(registry: Registry) -> None:
    with registry.client(registry.admin) as admin:
        created = admin.post("/api/v1/namespaces", json={"name": "acme", "owner": "ada"})
        assert created.status_code == 201, created.text
        assert created.json()["owners"] == ["ada"]
    ada = registry.token("ada", "publish:acme")
    text, keyid = pem()
    with registry.client(ada) as client:
        added = client.post("/api/v1/namespaces/acme/keys", json={"public_key_pem": text})
        assert added.status_code == 201, added.text
        assert added.json()["key_id"] == keyid
        again = client.post("/api/v1/namespaces/acme/keys", json={"public_key_pem": text})
        assert again.status_code == 409
        assert error_of(again)["code"] == "conflict"
        listed = client.get("/api/v1/namespaces/acme/keys").json()
        assert [k["key_id"] for k in listed] == [keyid]
        revoked = client.delete(f"/api/v1/namespaces/acme/keys/{keyid}")
        assert revoked.json()["revoked_at"] is not None
    assert registry.count("audit_records") == 3  # namespace.create, key.add, key.revoke


Who = Callable[[Registry], str | None]
WHO: dict[str, tuple[Who, int, str]] = {
    "no token": (lambda r: None, 401, "no token"),
    "garbage": (lambda r: "not-a-token", 401, "malformed token"),
    "unknown": (lambda r: "ppt_00000000_" + "A" * 43, 401, "unknown token"),
    "expired": (
        lambda r: r.token("ada", "admin", expires_in=timedelta(seconds=-1)),
        401,
        "expired",
    ),
    "wrong scope": (lambda r: r.token("eve", "publish:other"), 403, "lacks the scope"),
}


def _revoked(registry: Registry) -> str:
    token = registry.token("ada", "admin")
    with registry.client(registry.admin) as admin:
        admin.delete(f"/api/v1/tokens/{token.split('_')[1]}").raise_for_status()
    return token


WHO["revoked"] = (_revoked, 401, "was revoked")

MUTATIONS: dict[str, tuple[str, str, Callable[[], Any]]] = {
    "create namespace": ("POST", "/api/v1/namespaces", lambda: {"name": "beta", "owner": "x"}),
    "add key": ("POST", "/api/v1/namespaces/acme/keys", lambda: {"public_key_pem": pem()[0]}),
    "create token": ("POST", "/api/v1/tokens", lambda: {"identity": "x", "scopes": ["review"]}),
}


@pytest.mark.parametrize("who", sorted(WHO))
@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_authorisation_table(registry: Registry, who: str, mutation: str) -> None:
    with registry.client(registry.admin) as admin:
        admin.post("/api/v1/namespaces", json={"name": "acme", "owner": "ada"}).raise_for_status()
    method, path, body = MUTATIONS[mutation]
    make_token, status, message = WHO[who]
    token = make_token(registry)
    before = {t: registry.count(t) for t in ("namespaces", "publisher_keys", "audit_records")}
    tokens_before = registry.count("api_tokens")
    with registry.client(token) as client:
        response = client.request(method, path, json=body())
    assert response.status_code == status, response.text
    assert message in error_of(response)["message"]
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"
    assert {t: registry.count(t) for t in before} == before
    assert registry.count("api_tokens") == tokens_before


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_the_right_scope_is_allowed(registry: Registry, mutation: str) -> None:
    with registry.client(registry.admin) as admin:
        admin.post("/api/v1/namespaces", json={"name": "acme", "owner": "ada"}).raise_for_status()
    method, path, body = MUTATIONS[mutation]
    with registry.client(registry.admin) as client:
        response = client.request(method, path, json=body())
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("body", "status", "code", "message"),
    [
        ({"name": "Bad_Name", "owner": "x"}, 400, "invalid_input", "namespace 'Bad_Name'"),
        ({"name": "ok", "owner": "x", "extra": 1}, 422, "invalid_request", "body.extra"),
        ({"name": "ok"}, 422, "invalid_request", "body.owner: Field required"),
        ("not json", 422, "invalid_request", "body"),
    ],
)
def test_bad_input_is_a_precise_4xx_and_changes_nothing(
    registry: Registry, body: Any, status: int, code: str, message: str
) -> None:
    with registry.client(registry.admin) as admin:
        if isinstance(body, str):
            response = admin.post(
                "/api/v1/namespaces", content=body, headers={"content-type": "application/json"}
            )
        else:
            response = admin.post("/api/v1/namespaces", json=body)
    assert response.status_code == status
    error = error_of(response)
    assert error["code"] == code
    assert message in error["message"]
    assert registry.count("namespaces") == 0


def test_a_bad_key_and_unknown_things_are_refused(registry: Registry) -> None:
    with registry.client(registry.admin) as admin:
        admin.post("/api/v1/namespaces", json={"name": "acme", "owner": "ada"}).raise_for_status()
        bad = admin.post(
            "/api/v1/namespaces/acme/keys", json={"public_key_pem": "-----BEGIN" + "x" * 60}
        )
        assert bad.status_code in (400, 422)
        assert "uploaded key" in error_of(bad)["message"]
        missing = admin.get("/api/v1/namespaces/nope")
        assert (missing.status_code, error_of(missing)["code"]) == (404, "not_found")
        assert "no namespace 'nope'" in error_of(missing)["message"]
        route = admin.get("/api/v1/nothing-here")
        assert (route.status_code, error_of(route)["code"]) == (404, "not_found")
    assert registry.count("publisher_keys") == 0


def test_tokens_are_stored_hashed_and_listed_without_secrets(registry: Registry) -> None:
    with registry.client(registry.admin) as admin:
        created = admin.post(
            "/api/v1/tokens", json={"identity": "ada", "scopes": ["publish:acme", "review"]}
        )
        assert created.status_code == 201
        token = created.json()["token"]
        listed = admin.get("/api/v1/tokens").json()
    assert token not in str(listed)
    with registry.engine.connect() as connection:
        from sqlalchemy import text

        stored = connection.execute(text("SELECT token_hash FROM api_tokens")).scalars().all()
    assert all(token not in value for value in stored)
    with registry.client(token) as ada:
        mine = ada.get("/api/v1/tokens").json()
        assert [t["identity"] for t in mine] == ["ada"]
        assert mine[0]["last_used_at"] is not None
        bad_scope = ada.post("/api/v1/tokens", json={"identity": "x", "scopes": ["root"]})
        assert bad_scope.status_code == 403
    with registry.client(registry.admin) as admin:
        nonsense = admin.post("/api/v1/tokens", json={"identity": "x", "scopes": ["root"]})
        assert nonsense.status_code == 400
        assert "scopes: 'root'" in error_of(nonsense)["message"]
