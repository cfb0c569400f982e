"""Consent names a verified publisher: the host reads ``verified_domain`` from the plugin's
registry JSON and shows it before the permissions; without one (or when the registry cannot
say) nothing is shown and nothing else changes."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from plugport._permissions import describe_permissions
from plugport.errors import OfflineError
from plugport.host.consent import ConsentRequest, needs_consent
from plugport.host.host import PluginHost
from plugport.manifest import Permissions

ASKED = Permissions(network=["api.northwind.com"], storage=1024)
URL = "https://plugins.example.com"


def test_the_verified_publisher_comes_first_in_the_consent_lines() -> None:
    request = ConsentRequest("northwind.hello", "1.0.0", None, ASKED, None, "northwind.com")
    assert request.lines == ["verified publisher: northwind.com", *describe_permissions(ASKED)]
    assert request.added == ConsentRequest("northwind.hello", "1.0.0", None, ASKED, None).added
    assert needs_consent(request, None) is True  # a badge grants nothing


def test_without_a_verified_domain_the_lines_are_the_permissions() -> None:
    request = ConsentRequest("acme.hello", "1.0.0", None, ASKED, None)
    assert request.publisher is None
    assert request.lines == describe_permissions(ASKED)


class FakeClient:
    def __init__(self, url: str, answer: dict[str, Any] | Exception) -> None:
        self.url = url
        self.answer = answer
        self.asked: list[str] = []
        self.revalidated: list[bool] = []

    def plugin(self, name: str, *, revalidate: bool = False) -> dict[str, Any]:
        self.asked.append(name)
        self.revalidated.append(revalidate)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def verified_domain(clients: list[FakeClient], **item: str) -> str | None:
    staged = SimpleNamespace(
        **({"name": "northwind.hello", "source_kind": "registry", "source": URL} | item)
    )
    host = SimpleNamespace(clients=clients)
    return PluginHost._verified_domain(host, staged)  # type: ignore[arg-type]


def test_the_host_reads_it_from_the_registry_the_plugin_came_from() -> None:
    other = FakeClient("https://other.example", {"verified_domain": "evil.example"})
    mine = FakeClient(URL, {"name": "northwind.hello", "verified_domain": "northwind.com"})
    assert verified_domain([other, mine]) == "northwind.com"
    assert (other.asked, mine.asked) == ([], ["northwind.hello"])
    assert mine.revalidated == [False]  # a badge grants nothing: the cache within its TTL


def test_no_badge_when_the_registry_cannot_say_or_the_plugin_is_local() -> None:
    assert verified_domain([FakeClient(URL, OfflineError("plugin", URL))]) is None
    assert verified_domain([FakeClient(URL, {"verified_domain": None})]) is None
    assert verified_domain([FakeClient(URL, {"verified_domain": ["x"]})]) is None
    local = FakeClient(URL, {"verified_domain": "northwind.com"})
    assert verified_domain([local], source_kind="file", source="/tmp/x.plugport") is None
    assert local.asked == []
