"""The fake identity provider answers as RFC 6749, 7636 and 7009 say a provider does."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from plugport.host.secrets._oauth2_rules import code_challenge, new_verifier
from plugport.testing.fake_idp import FakeIdP

REDIRECT = "http://127.0.0.1:9/cb"


@pytest.fixture
def idp() -> Iterator[FakeIdP]:
    with FakeIdP(token_lifetime_s=3600) as idp:
        yield idp


def authorize(idp: FakeIdP, verifier: str, **extra: str) -> dict[str, list[str]]:
    params = {
        "response_type": "code",
        "client_id": idp.client_id,
        "redirect_uri": REDIRECT,
        "state": "xyz",
        "scope": "read write",
        "code_challenge": code_challenge(verifier),
        "code_challenge_method": "S256",
        **extra,
    }
    answer = httpx.get(idp.authorize_url, params=params)
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.startswith(REDIRECT)
    return parse_qs(urlsplit(location).query)


def token(idp: FakeIdP, **form: str) -> httpx.Response:
    return httpx.post(idp.token_url, data=form, auth=(idp.client_id, idp.client_secret))


def test_code_flow_with_pkce_refresh_rotation_and_revocation(idp: FakeIdP) -> None:
    verifier = new_verifier()
    query = authorize(idp, verifier)
    assert query["state"] == ["xyz"]
    code = query["code"][0]
    wrong = token(
        idp,
        grant_type="authorization_code",
        code=code,
        redirect_uri=REDIRECT,
        code_verifier=new_verifier(),
    )
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")
    # The code was spent by the failed attempt, as a careful provider does.
    code = authorize(idp, verifier)["code"][0]
    issued = token(
        idp,
        grant_type="authorization_code",
        code=code,
        redirect_uri=REDIRECT,
        code_verifier=verifier,
    ).json()
    assert issued["scope"] == "read write"
    assert issued["expires_in"] == 3600
    me = httpx.get(idp.api_url, headers={"Authorization": f"Bearer {issued['access_token']}"})
    assert me.json() == {"user": "alice", "scopes": ["read", "write"]}

    again = token(
        idp,
        grant_type="authorization_code",
        code=code,
        redirect_uri=REDIRECT,
        code_verifier=verifier,
    )
    assert again.json()["error"] == "invalid_grant"  # a code is good once

    refreshed = token(idp, grant_type="refresh_token", refresh_token=issued["refresh_token"])
    assert refreshed.status_code == 200
    assert refreshed.json()["refresh_token"] != issued["refresh_token"]
    old = token(idp, grant_type="refresh_token", refresh_token=issued["refresh_token"])
    assert old.json()["error"] == "invalid_grant"  # rotated away

    revoked = httpx.post(
        idp.revoke_url,
        data={"token": refreshed.json()["refresh_token"]},
        auth=(idp.client_id, idp.client_secret),
    )
    assert revoked.status_code == 200
    me = httpx.get(
        idp.api_url, headers={"Authorization": f"Bearer {refreshed.json()['access_token']}"}
    )
    assert me.status_code == 401
    assert me.headers["www-authenticate"] == 'Bearer error="invalid_token"'


def test_denial_bad_clients_unknown_grants_throttling_and_expiry(idp: FakeIdP) -> None:
    idp.deny = True
    assert authorize(idp, new_verifier())["error"] == ["access_denied"]
    bad = httpx.post(idp.token_url, data={"grant_type": "client_credentials"}, auth=("x", "y"))
    assert (bad.status_code, bad.json()["error"]) == (401, "invalid_client")
    assert token(idp, grant_type="password").json()["error"] == "unsupported_grant_type"
    idp.throttle(1, retry_after_s=2)
    throttled = token(idp, grant_type="client_credentials")
    assert (throttled.status_code, throttled.headers["retry-after"]) == (429, "2")
    issued = token(idp, grant_type="client_credentials", scope="admin").json()
    assert "refresh_token" not in issued
    idp.expire_access_tokens()
    me = httpx.get(idp.api_url, headers={"Authorization": f"Bearer {issued['access_token']}"})
    assert me.status_code == 401
    assert idp.grants == [
        "client_credentials",
        "password",
        "client_credentials",
        "client_credentials",
    ]
