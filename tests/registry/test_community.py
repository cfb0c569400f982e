"""Ratings, reviews and usage statistics over real HTTP."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from plugport.registry._display_names import pseudonym
from tests.registry.conftest import Registry
from tests.registry.test_access import error_of
from tests.registry.test_lifecycle import two_published


def test_one_review_per_identity_and_the_average(registry: Registry, tmp_path: Path) -> None:
    two_published(registry, tmp_path)
    ada, bob = registry.token("ada", "review"), registry.token("bob", "publish:x")
    with registry.client(ada) as client:
        client.put("/api/v1/plugins/acme.hello/reviews", json={"stars": 2, "text": "meh"})
        client.put("/api/v1/plugins/acme.hello/reviews", json={"stars": 4, "text": "better"})
    with registry.client(bob) as client:
        client.put("/api/v1/plugins/acme.hello/reviews", json={"stars": 5}).raise_for_status()
        refused = client.delete("/api/v1/plugins/acme.hello/reviews", params={"identity": "ada"})
        assert refused.status_code == 403
        bad = client.put("/api/v1/plugins/acme.hello/reviews", json={"stars": 6})
        assert bad.status_code == 422
    with registry.client() as anonymous:
        listed = anonymous.get("/api/v1/plugins/acme.hello/reviews").json()
        assert listed["rating"] == {"average": 4.5, "count": 2}
        secret = registry.app.state.pseudonym_secret
        assert sorted((r["author"], r["stars"]) for r in listed["items"]) == sorted(
            [(pseudonym("ada", secret), 4), (pseudonym("bob", secret), 5)]
        )
        assert all("identity" not in r for r in listed["items"])
        assert (
            anonymous.put("/api/v1/plugins/acme.hello/reviews", json={"stars": 1}).status_code
            == 401
        )
    with registry.client(ada) as client:
        client.delete("/api/v1/plugins/acme.hello/reviews").raise_for_status()
        missing = client.delete("/api/v1/plugins/acme.hello/reviews")
        assert missing.status_code == 404
    with registry.client() as anonymous:
        shown = anonymous.get("/api/v1/plugins/acme.hello").json()
        assert shown["rating"] == {"average": 5.0, "count": 1}


def test_hosts_report_usage_and_stats_add_it_up(registry: Registry, tmp_path: Path) -> None:
    two_published(registry, tmp_path)
    with registry.client() as host:
        host.get("/api/v1/plugins/acme.hello/versions/0.2.0/download").raise_for_status()
        for event in ("install", "install", "uninstall"):
            done = host.post(
                "/api/v1/plugins/acme.hello/versions/0.2.0/usage", json={"event": event}
            )
            assert done.status_code == 202
        wrong = host.post("/api/v1/plugins/acme.hello/versions/0.2.0/usage", json={"event": "x"})
        assert wrong.status_code == 422
        unknown = host.post(
            "/api/v1/plugins/acme.hello/versions/7.0.0/usage", json={"event": "install"}
        )
        assert unknown.status_code == 404
        stats = host.get("/api/v1/plugins/acme.hello/stats", params={"days": 7}).json()
        assert stats["totals"] == {"downloads": 1, "installs": 2, "uninstalls": 1}
        assert [d["version"] for d in stats["daily"]] == ["0.2.0"]
        too_long = host.get("/api/v1/plugins/acme.hello/stats", params={"days": 1000})
        assert too_long.status_code == 422
        assert "query.days" in error_of(too_long)["message"]


def test_concurrent_reports_and_downloads_all_count(registry: Registry, tmp_path: Path) -> None:
    """Hosts reporting the same plugin, version and day at once: every report counts and none
    is a 500 (they used to collide on the day's row: the demo's eight reporters found it)."""
    two_published(registry, tmp_path)
    base = "/api/v1/plugins/acme.hello/versions/0.2.0"

    def report(number: int) -> int:
        with registry.client() as host:
            if number % 2:
                return host.get(f"{base}/download").status_code
            return host.post(f"{base}/usage", json={"event": "install"}).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(report, range(48)))
    assert sorted(set(statuses)) == [200, 202]
    with registry.client() as anonymous:
        stats = anonymous.get("/api/v1/plugins/acme.hello/stats", params={"days": 7}).json()
    assert stats["totals"] == {"downloads": 24, "installs": 24, "uninstalls": 0}
