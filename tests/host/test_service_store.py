"""The host service's token checks: every page, tile and API request checks its token, so a
check is a read and ``last_used_at`` is written at most once a minute; revocation, expiry and a
wrong secret are still refused at once, and a refused check writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugport.errors import AuthenticationError
from plugport.host.service.store import TOUCH_INTERVAL_S, ServiceStore


@pytest.fixture
def clock() -> list[float]:
    return [1000.0]


@pytest.fixture
def store(tmp_path: Path, clock: list[float]) -> ServiceStore:
    made = ServiceStore(tmp_path / "service.sqlite", clock=lambda: clock[0])
    made.create_workspace("ws")
    return made


def _last_used(store: ServiceStore, prefix: str) -> float | None:
    [info] = [t for t in store.tokens() if t.prefix == prefix]
    return info.last_used_at


def test_a_token_check_writes_last_used_at_most_once_a_minute(
    store: ServiceStore, clock: list[float]
) -> None:
    token, info = store.create_token("workspace", "ws")
    assert _last_used(store, info.prefix) is None
    assert store.authenticate(token).workspace == "ws"
    assert _last_used(store, info.prefix) == 1000.0
    changes = store._db.total_changes
    clock[0] += TOUCH_INTERVAL_S - 1
    for _ in range(5):
        store.authenticate(token)
    assert _last_used(store, info.prefix) == 1000.0
    assert store._db.total_changes == changes  # no write at all
    clock[0] = 1000.0 + TOUCH_INTERVAL_S
    store.authenticate(token)
    assert _last_used(store, info.prefix) == clock[0]


def test_revoked_expired_and_wrong_tokens_are_refused_at_once(
    store: ServiceStore, clock: list[float]
) -> None:
    token, info = store.create_token("workspace", "ws")
    short, short_info = store.create_token("workspace", "ws", expires_days=1)
    store.authenticate(token)
    store.authenticate(short)
    store.revoke(info.prefix)  # right after a check: no minute of grace
    with pytest.raises(AuthenticationError, match="was revoked"):
        store.authenticate(token)
    clock[0] += 86400
    with pytest.raises(AuthenticationError, match="has expired"):
        store.authenticate(short)
    forged = short[: -len("x")] + ("x" if not short.endswith("x") else "y")
    clock[0] += TOUCH_INTERVAL_S
    changes = store._db.total_changes
    for bad in (forged, token, short):
        with pytest.raises(AuthenticationError):
            store.authenticate(bad)
    assert store._db.total_changes == changes  # a refused check writes nothing
    assert _last_used(store, short_info.prefix) == 1000.0
