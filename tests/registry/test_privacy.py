"""Privacy and wording in the marketplace, over real HTTP: a rating's author is shown by a
display name or a pseudonym, never by the identity (an e-mail address here), on every public
page and API answer; display names are checked (a refused one is a 4xx naming the field, and
nothing is stored); the review queue names the exact grants an update adds and removes in
the consent's words; the marketplace and the host service share one sign-in form."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from plugport.registry._display_names import pseudonym
from tests.registry.conftest import Registry
from tests.registry.test_access import error_of
from tests.registry.test_publish import Publisher
from tests.registry.test_review import bump
from tests.registry.test_web import csrf_of

RATERS = ("ada@example.com", "grace.hopper@example.org")
HIDDEN = (*RATERS, "ada%40example.com", "grace.hopper", "example.org")
"""What no public answer may contain: the raters' identities, encoded or in part."""


@pytest.fixture
def published(registry: Registry, tmp_path: Path) -> Publisher:
    """acme.hello 0.1.0 (1 MiB of storage) published, rated by two e-mail identities; 0.2.0
    (network, no storage) waiting for review."""
    publisher = Publisher(registry, tmp_path)
    first = bump("0.1.0", '[permissions]\nstorage = "1 MiB"\nconfig = true')
    publisher.upload(publisher.build(edit=first)).raise_for_status()
    reviewer = registry.token("rex", "review")
    with registry.client(reviewer) as client:
        client.post(
            "/api/v1/review/acme.hello/0.1.0/approve", json={"reason": "ok"}
        ).raise_for_status()
    second = bump("0.2.0", '[permissions]\nnetwork = ["api.example.com"]\nconfig = true')
    publisher.upload(publisher.build(edit=second)).raise_for_status()
    for n, rater in enumerate(RATERS):
        with registry.client(registry.token(rater, "publish:nothing")) as client:
            review = {"stars": 4 + n, "text": "useful"}
            client.put("/api/v1/plugins/acme.hello/reviews", json=review).raise_for_status()
    return publisher


def _browser(registry: Registry, token: str | None = None) -> httpx.Client:
    client = httpx.Client(base_url=registry.url, timeout=10, headers={"Accept": "text/html"})
    if token is not None:
        client.cookies.set("plugport_registry_token", token)
    return client


def _crawl_pages(registry: Registry) -> Iterator[tuple[str, str]]:
    """Every page a signed-out browser reaches from the home page by following links."""
    seen: set[str] = set()
    queue = ["/", "/search", "/search?q=hello", "/plugins/acme.hello", "/namespaces/acme"]
    with _browser(registry) as client:
        while queue and len(seen) < 200:
            path = queue.pop()
            if path in seen:
                continue
            seen.add(path)
            response = client.get(path)
            yield path, response.text
            if "text/html" not in response.headers.get("content-type", ""):
                continue
            for href in re.findall(r'href="([^"#]+)', response.text):
                url = urlsplit(urljoin(registry.url + path, href.replace("&amp;", "&")))
                local = url.path + (f"?{url.query}" if url.query else "")
                if url.netloc == urlsplit(registry.url).netloc and not local.startswith(
                    ("/static/", "/signout")
                ):
                    queue.append(local)


def _api_answers(registry: Registry) -> Iterator[tuple[str, str]]:
    """Every GET route of the API, signed out, with the plugin's names filled in."""
    with registry.client() as client:
        paths = client.get("/openapi.json").json()["paths"]
        for path, operations in sorted(paths.items()):
            if "get" not in operations:
                continue
            filled = (
                path.replace("/namespaces/{name}", "/namespaces/acme")
                .replace("{name}", "acme.hello")
                .replace("{version}", "0.1.0")
                .replace("{filename}", "timestamp.json")
            )
            filled = re.sub(r"\{[^}]+\}", "x", filled)
            yield filled, client.get(filled).text
        for extra in ("/api/v1/plugins?q=hello", "/api/v1/plugins/acme.hello/reviews?per_page=100"):
            yield extra, client.get(extra).text


def test_no_public_page_or_api_answer_names_a_rating_author(
    registry: Registry, published: Publisher
) -> None:
    answers = [*_crawl_pages(registry), *_api_answers(registry)]
    reached = {path for path, _ in answers}
    assert {"/", "/plugins/acme.hello", "/api/v1/plugins/acme.hello/reviews"} <= reached
    assert len(reached) > 15
    for path, body in answers:
        for hidden in HIDDEN:
            assert hidden not in body, f"{path} shows {hidden!r}"
    secret = registry.app.state.pseudonym_secret
    with registry.client() as client:
        items = client.get("/api/v1/plugins/acme.hello/reviews").json()["items"]
    assert sorted(i["author"] for i in items) == sorted(pseudonym(r, secret) for r in RATERS)
    assert all(re.fullmatch(r"user-[0-9a-f]{8}", i["author"]) for i in items)
    assert all(set(i) == {"author", "stars", "text", "updated_at"} for i in items)


def test_a_display_name_set_at_sign_in_is_what_the_public_sees(
    registry: Registry, published: Publisher
) -> None:
    token = registry.token("grace.hopper@example.org", "publish:nothing")
    with _browser(registry) as client:
        form = client.get("/signin")
        assert 'id="display-name-input"' in form.text
        signed = client.post(
            "/signin",
            data={"token": token, "csrf": csrf_of(form.text), "display_name": "  Grace  H. "},
        )
        assert signed.status_code == 303, signed.text
        assert "plugport_registry_token=" in signed.headers["set-cookie"]
    with _browser(registry) as anonymous:
        page = anonymous.get("/plugins/acme.hello").text
    assert 'data-author="Grace H."' in page
    assert 'data-testid="review-author">Grace H.<' in page
    assert "grace.hopper" not in page
    with registry.client(token) as client:
        mine = client.get("/api/v1/profile").json()
        assert mine == {
            "identity": "grace.hopper@example.org",
            "display_name": "Grace H.",
            "shown_as": "Grace H.",
        }
        client.delete("/api/v1/profile").raise_for_status()
        secret = registry.app.state.pseudonym_secret
        assert client.get("/api/v1/profile").json()["shown_as"] == pseudonym(
            "grace.hopper@example.org", secret
        )


BAD_NAMES = [
    ("", "2 to 40 characters"),
    ("x", "2 to 40 characters"),
    ("x" * 41, "2 to 40 characters"),
    ("ada@example.com", "e-mail address"),
    ("ada\uff20example.com", "e-mail address"),  # a full-width at sign
    ("Admin", "registry's own staff"),
    ("Site-Admin", "registry's own staff"),
    ("root", "registry's own staff"),
    ("Nice\u0000Name", "U+0000"),
    ("evil\u202egnp.exe", "U+202E"),
    ("line\nbreak", "U+000A"),
    ("ACME", "namespace or its owner"),
    ("Nora", "namespace or its owner"),
    ("user-3f9a0c12", "pseudonym"),
    ("Taken Name", "someone else's display name"),
    ("...", "at least one letter"),
]


def _profiles(registry: Registry) -> int:
    return registry.count("profiles")


@pytest.fixture
def named(registry: Registry) -> Registry:
    """A namespace ``acme`` owned by ``nora@example.net`` and a taken name."""
    with registry.client(registry.admin) as admin:
        admin.post(
            "/api/v1/namespaces", json={"name": "acme", "owner": "nora@example.net"}
        ).raise_for_status()
        admin.put(
            "/api/v1/profile", params={"identity": "taken@example.com"},
            json={"display_name": "taken-name"},
        ).raise_for_status()  # fmt: skip
    return registry


@pytest.mark.parametrize(("value", "why"), BAD_NAMES)
def test_a_bad_display_name_is_a_4xx_naming_the_field_and_nothing_is_stored(
    named: Registry, value: str, why: str
) -> None:
    registry = named
    token = registry.token("ada@example.com", "publish:nothing")
    profiles, tokens_before = _profiles(registry), registry.count("api_tokens")
    audits = registry.count("audit_records")
    with registry.client(token) as client:
        refused = client.put("/api/v1/profile", json={"display_name": value})
        assert refused.status_code == 400, refused.text
        error = error_of(refused)
        assert error["message"].startswith("display_name: "), error
        assert why in error["message"]
        assert error["details"]["field"] == "display_name"
        assert client.get("/api/v1/profile").json()["display_name"] is None
    with registry.client(registry.admin) as admin:
        created = admin.post(
            "/api/v1/tokens",
            json={"identity": "new@example.com", "scopes": ["review"], "display_name": value},
        )
        assert created.status_code == 400
        assert error_of(created)["message"].startswith("display_name: ")
    with _browser(registry) as client:
        form = client.get("/signin")
        signed = client.post(
            "/signin", data={"token": token, "csrf": csrf_of(form.text), "display_name": value}
        )
        if value.strip():  # an empty field keeps the current name: signing in is fine
            assert signed.status_code == 400
            assert 'data-testid="display-name-error"' in signed.text
            assert "display_name: " in signed.text
            assert "plugport_registry_token" not in signed.headers.get("set-cookie", "")
    assert _profiles(registry) == profiles
    assert registry.count("api_tokens") == tokens_before
    assert registry.count("audit_records") == audits


def test_a_display_name_that_is_not_a_string_is_refused_naming_the_field(
    named: Registry,
) -> None:
    with named.client(named.token("ada@example.com", "publish:nothing")) as client:
        refused = client.put("/api/v1/profile", json={"display_name": 42})
    assert refused.status_code == 422
    assert "display_name" in error_of(refused)["message"]
    assert _profiles(named) == 1


def test_only_an_admin_names_another_identity(named: Registry) -> None:
    with named.client(named.token("ada@example.com", "review")) as client:
        refused = client.put(
            "/api/v1/profile", params={"identity": "bob@example.com"},
            json={"display_name": "Bobby"},
        )  # fmt: skip
    assert refused.status_code == 403
    with named.client(named.admin) as admin:
        created = admin.post(
            "/api/v1/tokens",
            json={"identity": "bob@example.com", "scopes": ["review"], "display_name": "Bobby"},
        )
        assert created.status_code == 201
        shown = admin.get("/api/v1/profile", params={"identity": "bob@example.com"}).json()
    assert shown["display_name"] == "Bobby"


def _queue_cell(html: str) -> str:
    match = re.search(r'<td data-testid="queue-permissions">(.*?)</td>', html, re.S)
    assert match, "no permission changes in the queue"
    return match.group(1)


def test_the_review_queue_names_the_exact_grants_added_and_removed(
    registry: Registry, published: Publisher
) -> None:
    reviewer = registry.token("rita", "review")
    with _browser(registry, reviewer) as client:
        queue = client.get("/review").text
        item = client.get("/review/acme.hello/0.2.0").text
    cell = _queue_cell(queue)
    added = re.findall(r'data-testid="permission-added"[^>]*>([^<]*)<', cell)
    removed = re.findall(r'data-testid="permission-removed"[^>]*>([^<]*)<', cell)
    assert added == ["+ Connect to: api.example.com"]
    assert removed == ["\u2212 Store up to 1 MiB of its own data"]
    assert "yes" not in cell
    section = item.split('id="diff-title"', 1)[1].split("</section>", 1)[0]
    assert "since 0.1.0" in section
    assert re.findall(r'data-testid="permission-added"[^>]*>([^<]*)<', section) == added
    assert re.findall(r'data-testid="permission-removed"[^>]*>([^<]*)<', section) == removed
    for text in (cell, section):
        assert not re.search(r"\b(True|False|None)\b", text)
    with registry.client(reviewer) as client:
        shown = client.get("/api/v1/review/acme.hello/0.2.0").json()
    assert shown["permission_changes"] == {
        "added": ["Connect to: api.example.com"],
        "removed": ["Store up to 1 MiB of its own data"],
    }
    # the plugin page says the published version's permissions in the same words
    with _browser(registry) as anonymous:
        page = anonymous.get("/plugins/acme.hello").text
    assert '<li data-testid="permission">Store up to 1 MiB of its own data</li>' in page
    assert '<li data-testid="permission">Read its own settings</li>' in page


def test_the_marketplace_and_the_host_service_share_one_sign_in_form(
    registry: Registry,
) -> None:
    from plugport.host.service.pages import templates as host_templates

    with _browser(registry) as client:
        market = client.get("/signin").text
    host = host_templates.env.get_template("signin.html").render(
        csrf="0" * 64, install=None, error=None, static="/static/host",
        ui_static="/static/ui", principal=None, flashes=[], plugin_pages=[],
    )  # fmt: skip
    for page in (market, host):
        assert "/static/plugport.css?v=" in page
        assert '<form method="post" action="' in page
        assert 'class="panel signin-panel" id="signin-form" data-testid="signin-panel"' in page
    sources = [
        Path(t.filename or "")
        for t in (
            host_templates.env.get_template("signin.html"),
            client_env_template("signin.html"),
        )
    ]
    for source in sources:
        assert '{% from "_signin.html" import signin_form with context %}' in source.read_text()
    assert ".signin-panel" in (_web_static() / "plugport.css").read_text()


def client_env_template(name: str) -> Any:
    from plugport.registry.web._common import templates

    return templates.env.get_template(name)


def _web_static() -> Path:
    from plugport import _web

    return _web.STATIC_DIR
