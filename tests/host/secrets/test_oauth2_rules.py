"""The OAuth2 broker's pure decisions: stored tokens, refresh timing, state checks, accounts."""

from __future__ import annotations

import pytest

from plugport.errors import InvalidInputError
from plugport.host.secrets._oauth2_rules import (
    STATE_TTL_S,
    AccountIndex,
    Pending,
    TokenRecord,
    authorize_url_problem,
    check_account,
    check_state,
    code_challenge,
    needs_refresh,
    new_verifier,
    provider_policy,
    token_from_response,
    token_secret,
)

NOW = 1_000_000.0


def pending(**changes: object) -> Pending:
    base = {
        "state": "s",
        "workspace": "ws",
        "plugin": "acme.jira",
        "credential": "jira",
        "account": "alice",
        "actor": "op",
        "verifier": new_verifier(),
        "created_at": NOW,
    }
    return Pending(**{**base, **changes})  # type: ignore[arg-type]


def test_pkce_s256_matches_rfc_7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert code_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert 43 <= len(new_verifier()) <= 128


def test_a_token_answer_becomes_a_record_that_round_trips() -> None:
    record = token_from_response(
        {"access_token": "at", "refresh_token": "rt", "expires_in": 3600, "scope": "a b"}, NOW
    )
    assert record.expires_at == NOW + 3600
    assert record.scopes == ("a", "b")
    assert TokenRecord.from_bytes(record.to_bytes()) == record
    assert "at" not in str(record.public("alice", default=True).values())


def test_a_refresh_without_a_new_refresh_token_keeps_the_old_one() -> None:
    old = TokenRecord("at", refresh_token="rt", scopes=("read",))  # noqa: S106 - test data
    new = token_from_response({"access_token": "at2"}, NOW, previous=old)
    assert (new.refresh_token, new.scopes, new.expires_at) == ("rt", ("read",), None)
    rotated = token_from_response(
        {"access_token": "at3", "refresh_token": "rt2"}, NOW, previous=old
    )
    assert rotated.refresh_token == "rt2"  # noqa: S105 - test data


@pytest.mark.parametrize(
    "answer", [{}, {"access_token": ""}, {"access_token": "a", "expires_in": "x"}]
)
def test_a_broken_token_answer_is_refused(answer: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError):
        token_from_response(answer, NOW)


def test_refresh_when_less_than_a_minute_is_left() -> None:
    assert needs_refresh(TokenRecord("a", expires_at=NOW + 59), NOW)
    assert needs_refresh(TokenRecord("a", expires_at=NOW - 1), NOW)
    assert not needs_refresh(TokenRecord("a", expires_at=NOW + 61), NOW)
    assert not needs_refresh(TokenRecord("a", expires_at=None), NOW)


def test_a_state_is_good_once_for_ten_minutes() -> None:
    assert check_state(pending(), NOW + STATE_TTL_S - 1) is None
    assert check_state(None, NOW).reason == "unknown"  # type: ignore[union-attr]
    assert check_state(pending(), NOW + STATE_TTL_S + 1).reason == "expired"  # type: ignore[union-attr]
    used = check_state(pending().used(NOW + 1), NOW + 2)
    assert used is not None
    assert used.reason == "used"
    assert "already" in used.message
    assert "verifier" not in repr(pending())  # the PKCE secret stays out of logs


def test_accounts_default_to_the_first_and_move_on_when_it_goes() -> None:
    index = AccountIndex().with_account("bob").with_account("alice")
    assert (index.accounts, index.default) == (("alice", "bob"), "bob")
    assert index.with_account("alice", make_default=True).default == "alice"
    assert index.without("bob").default == "alice"
    assert index.without("bob").without("alice") == AccountIndex((), None)
    assert AccountIndex.from_bytes(index.to_bytes()) == index
    assert token_secret("jira", "bob") == "oauth2:jira:bob"


@pytest.mark.parametrize("bad", ["", "Alice", "a b", "../x", "a" * 65, ":x"])
def test_account_labels_are_checked(bad: str) -> None:
    with pytest.raises(InvalidInputError, match="is not a label"):
        check_account(bad)
    assert check_account("alice@example.com") == "alice@example.com"


# --- reaching the provider -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "listed", "allowed"),
    [
        ("https://login.example.com/authorize", (), True),
        ("http://127.0.0.1:8080/authorize", (), True),  # loopback: nothing crosses a network
        ("http://[::1]:8080/authorize", (), True),
        ("http://localhost:8080/authorize", (), True),
        ("http://login.example.com/authorize", (), False),
        ("http://10.0.0.5:8443/authorize", (), False),
        ("http://10.0.0.5:8443/authorize", ("10.0.0.5:8443",), True),  # the operator listed it
        ("http://10.0.0.5:8443/authorize", ("10.0.0.5:443",), False),  # another port
        ("http://login.example.com/authorize", ("login.example.com:80",), True),
        ("ftp://login.example.com/authorize", (), False),
    ],
)
def test_an_authorization_page_is_https_unless_loopback_or_listed(
    url: str, listed: tuple[str, ...], allowed: bool
) -> None:
    problem = authorize_url_problem(url, listed)
    assert (problem is None) is allowed
    if problem is not None and url.startswith("http:"):
        assert "[private-targets]" in problem
        assert url in problem


def test_a_provider_request_may_go_only_to_its_own_url_and_follows_no_redirect() -> None:
    policy = provider_policy(
        "https://auth.example.com/oauth/token",
        local_endpoints=("10.0.0.5:8443",),
        local_policy="[private-targets] in /h/policy.toml",
    )
    assert policy.allowed == ("auth.example.com:443",)
    assert policy.methods == frozenset({"POST"})
    assert policy.max_redirects == 0
    assert policy.local_endpoints == ("10.0.0.5:8443",)
    assert not policy.allow_custom_x_headers
    assert provider_policy("http://Auth.Example.com.:8080/t").allowed == ("auth.example.com:8080",)
    assert provider_policy("not a url").allowed == ()
