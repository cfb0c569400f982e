"""Appearance in the host service, over real HTTP against a real registry and real workers: the
API (a token's own choice, the workspace's default, an admin's), the Appearance page and its
CSRF-checked form, the ``theme.css`` each signed-in token gets, and the refusals: an unknown
theme, a disabled or uninstalled plugin, and a theme made unreadable on disk (refused with its
contrast problems, never served). Purging the plugin and deleting the workspace forget the
choices."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from plugport.host.service.appearance import BASE_CSS
from tests.host._service import Market, Service
from tests.host._themes import (
    NORD,
    NORD_DARK_BG,
    NORD_KEY,
    NORD_LIGHT_BG,
    UNREADABLE_TEXT,
    install,
    installed_manifest,
    publish_nord,
    spoil_nord,
)
from tests.host.test_service_pages import csrf_of, signed_in

V1 = "/api/v1/workspaces"


@pytest.fixture(scope="module", autouse=True)
def themes(market: Market) -> None:
    publish_nord(market)


def appearance(client: httpx.Client, ws: str) -> dict[str, Any]:
    response = client.get(f"{V1}/{ws}/appearance")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def refused(response: httpx.Response, field: str) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["details"]["field"] == field
    return error


def stored(service: Service, ws: str) -> list[tuple[str, str, str]]:
    return [(c.token_prefix, c.theme, c.mode) for c in service.service.store.appearances(ws)]


@pytest.fixture
def browser(service: Service) -> Iterator[tuple[str, httpx.Client]]:
    """A workspace ``look-<n>`` with Nord installed, and a browser signed in to it."""
    ws = f"look-{len(service.service.store.workspaces())}"
    token = service.workspace(ws)
    install(service, token, ws)
    with signed_in(service, token) as client:
        client.headers["x-workspace"] = ws
        yield token, client


def test_the_api_chooses_per_token_and_per_workspace(service: Service) -> None:
    first = service.workspace("api-look")
    with service.client(first) as api, service.client(service.admin) as admin:
        made = admin.post("/api/v1/tokens", json={"workspace": "api-look"})
        second = made.json()["token"]
        shown = appearance(api, "api-look")
        assert (shown["theme"], shown["mode"], shown["source"]) == (
            "plugport:light",
            "auto",
            "default",
        )
        assert shown["stylesheet"] == "/workspaces/api-look/theme.css"
        assert [t["id"] for t in shown["themes"]] == ["plugport:light", "plugport:dark"]

        # refusals name the field and store nothing
        for body, field, words in [
            ({"theme": NORD_KEY}, "theme", "acme.nord is not installed in workspace 'api-look'"),
            ({"theme": "plugport:sepia"}, "theme", "there is no built-in theme 'plugport:sepia'"),
            ({"theme": "nord"}, "theme", "'nord' is not a theme; write 'plugin.name:theme-id'"),
            ({"theme": "x" * 301}, "theme", None),
            ({"theme": "plugport:dark", "mode": "sepia"}, "mode", None),
            ({"theme": "plugport:dark", "scope": "everyone"}, "scope", None),
            ({"theme": "plugport:dark", "css": "body{}"}, "css", None),
        ]:
            response = api.put(f"{V1}/api-look/appearance", json=body)
            assert response.status_code == 422, (body, response.text)
            error = response.json()["error"]
            if words is None:  # the body's own validation: the field in the problem's path
                assert any(field in p["path"] for p in error["details"]["problems"]), error
            else:
                assert refused(response, field)["message"].startswith(f"theme: {words}")
        assert stored(service, "api-look") == []

        install(service, first, "api-look")
        ids = [t["id"] for t in appearance(api, "api-look")["themes"]]
        assert ids == ["plugport:light", "plugport:dark", NORD_KEY, f"{NORD}:frost"]
        nord = appearance(api, "api-look")["themes"][2]
        assert nord["modes"] == ["light", "dark"]
        assert (nord["font"], nord["radius_px"], nord["density"]) == ("humanist", 4, "comfortable")
        assert nord["light"]["bg"] == NORD_LIGHT_BG
        assert nord["usable"] is True

        mine = api.put(f"{V1}/api-look/appearance", json={"theme": NORD_KEY, "mode": "dark"})
        assert mine.status_code == 200, mine.text
        assert (mine.json()["theme"], mine.json()["mode"], mine.json()["source"]) == (
            NORD_KEY,
            "dark",
            "token",
        )
        with service.client(second) as other:
            assert appearance(other, "api-look")["source"] == "default"  # not the first's choice
            everyone = {"theme": "plugport:dark", "mode": "dark", "scope": "workspace"}
            assert other.put(f"{V1}/api-look/appearance", json=everyone).status_code == 200
            assert appearance(other, "api-look")["source"] == "workspace"
            assert appearance(other, "api-look")["theme"] == "plugport:dark"
        assert appearance(api, "api-look")["theme"] == NORD_KEY  # its own choice wins
        assert appearance(api, "api-look")["workspace_default"]["theme"] == "plugport:dark"

        # an admin has no choice of its own, but may set the workspace's default
        error = refused(admin.put(f"{V1}/api-look/appearance", json={"theme": NORD_KEY}), "scope")
        assert "an admin token has no appearance of its own" in error["message"]
        byadmin = {"theme": NORD_KEY, "mode": "light", "scope": "workspace"}
        assert admin.put(f"{V1}/api-look/appearance", json=byadmin).status_code == 200
        assert appearance(admin, "api-look")["source"] == "workspace"

        # forgetting one's own choice falls back to the workspace's default
        reset = api.delete(f"{V1}/api-look/appearance")
        assert reset.status_code == 200
        assert (reset.json()["theme"], reset.json()["source"]) == (NORD_KEY, "workspace")
        assert reset.json()["mode"] == "light"
        audit = api.get(f"{V1}/api-look/audit", params={"subject": "workspace:api-look"}).json()
        outcomes = [(a["action"], a["outcome"]) for a in audit["items"]]
        assert outcomes.count(("appearance", "changed")) == 2

        # another workspace's token reaches nothing here
        outsider = service.workspace("api-elsewhere")
        with service.client(outsider) as stranger:
            assert stranger.get(f"{V1}/api-look/appearance").status_code == 403
            put = stranger.put(f"{V1}/api-look/appearance", json={"theme": "plugport:light"})
            assert put.status_code == 403
    assert len(stored(service, "api-look")) == 1


def test_theme_css_follows_the_signed_in_token(
    service: Service, browser: tuple[str, httpx.Client]
) -> None:
    token, client = browser
    ws = client.headers["x-workspace"]
    base = client.get(f"/workspaces/{ws}/theme.css")
    assert base.status_code == 200
    assert base.headers["content-type"] == "text/css; charset=utf-8"
    assert base.headers["cache-control"] == "private, no-cache"
    assert base.headers["vary"] == "Cookie"
    assert base.headers["x-content-type-options"] == "nosniff"
    assert base.text == BASE_CSS
    again = client.get(
        f"/workspaces/{ws}/theme.css", headers={"If-None-Match": base.headers["etag"]}
    )
    assert again.status_code == 304
    assert again.text == ""

    page = client.get(f"/workspaces/{ws}")
    links = re.findall(r'<link rel="stylesheet" href="([^"]+)"', page.text)
    assert [link.split("?")[0] for link in links] == [
        "/static/plugport.css",
        "/host-service/static/host-service.css",
        "/host-ui/static/components.css",
        "/host-ui/static/charts.css",
        f"/workspaces/{ws}/theme.css",  # last: the theme's values win
    ]

    with service.client(token) as api:
        chosen = api.put(f"{V1}/{ws}/appearance", json={"theme": NORD_KEY, "mode": "auto"})
        assert chosen.status_code == 200
    themed = client.get(
        f"/workspaces/{ws}/theme.css", headers={"If-None-Match": base.headers["etag"]}
    )
    assert themed.status_code == 200
    assert themed.headers["etag"] != base.headers["etag"]
    head, _, dark = themed.text.partition("@media (prefers-color-scheme: dark) {")
    assert f"--bg: {NORD_LIGHT_BG};" in head
    assert f"--bg: {NORD_DARK_BG};" in dark
    assert "--radius: 4px;" in head
    assert "--space: 1.25rem;" in head

    # not signed in, or signed in to another workspace: nothing to wear, and no page either
    with service.client() as anonymous:
        nobody = anonymous.get(f"/workspaces/{ws}/theme.css")
        assert nobody.status_code == 403
        assert nobody.headers["content-type"].startswith("text/css")
        assert nobody.headers["cache-control"] == "no-store"
        assert NORD_LIGHT_BG not in nobody.text
    other = service.workspace(f"{ws}-other")
    with signed_in(service, other) as elsewhere:
        assert elsewhere.get(f"/workspaces/{ws}/theme.css").status_code == 403
        assert elsewhere.get(f"/workspaces/{ws}-other/theme.css").text == BASE_CSS


def test_the_page_form_is_csrf_checked_and_applies_the_choice(
    service: Service, browser: tuple[str, httpx.Client]
) -> None:
    _, client = browser
    ws = client.headers["x-workspace"]
    page = client.get(f"/workspaces/{ws}/appearance")
    assert page.status_code == 200
    assert 'data-testid="nav-appearance"' in page.text
    assert f'data-theme="{NORD_KEY}"' in page.text
    assert 'data-source="default"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "style=" not in page.text  # the swatches are SVG attributes, allowed by the CSP
    csrf = csrf_of(page)
    form = {"theme": NORD_KEY, "mode": "dark", "scope": "token"}

    forged = client.post(f"/workspaces/{ws}/appearance", data=form)
    assert forged.status_code == 403
    assert (
        client.post(f"/workspaces/{ws}/appearance", data=form | {"csrf": "0" * 64}).status_code
        == 403
    )
    assert stored(service, ws) == []

    done = client.post(f"/workspaces/{ws}/appearance", data=form | {"csrf": csrf})
    assert done.status_code == 303, done.text
    shown = client.get(done.headers["location"])
    assert f"Applied {NORD_KEY} (dark) for you." in shown.text
    assert f'data-theme="{NORD_KEY}" data-mode="dark" data-source="token"' in shown.text
    assert f"--bg: {NORD_DARK_BG};" in client.get(f"/workspaces/{ws}/theme.css").text

    unknown = client.post(
        f"/workspaces/{ws}/appearance", data=form | {"csrf": csrf, "theme": "acme.gone:x"}
    )
    assert unknown.status_code == 422
    assert "acme.gone is not installed" in unknown.text
    nothing = client.post(f"/workspaces/{ws}/appearance", data={"csrf": csrf, "mode": "dark"})
    assert nothing.status_code == 422
    assert "theme: choose a theme" in nothing.text
    assert [(t, m) for _, t, m in stored(service, ws)] == [(NORD_KEY, "dark")]

    reset = client.post(f"/workspaces/{ws}/appearance/reset", data={"csrf": csrf, "scope": "token"})
    assert reset.status_code == 303
    assert stored(service, ws) == []
    assert client.get(f"/workspaces/{ws}/theme.css").text == BASE_CSS


def test_an_unreadable_theme_is_refused_and_never_served(
    service: Service, browser: tuple[str, httpx.Client]
) -> None:
    """The installed manifest is changed on disk after the install (as one checked by an older
    host would be): the stored choice is passed over, choosing it again is refused with each
    contrast problem at its manifest path, and its colours are never served."""
    token, client = browser
    ws = client.headers["x-workspace"]
    with service.client(token) as api:
        assert (
            api.put(f"{V1}/{ws}/appearance", json={"theme": NORD_KEY, "mode": "light"}).status_code
            == 200
        )
        before = spoil_nord(service, ws)
        try:
            css = client.get(f"/workspaces/{ws}/theme.css").text
            assert css == BASE_CSS
            assert UNREADABLE_TEXT not in css
            shown = appearance(api, ws)
            assert (shown["theme"], shown["source"]) == ("plugport:light", "default")
            [why] = shown["passed_over"]
            assert why.startswith(f"theme {NORD_KEY} fails the WCAG AA contrast check")
            nord = next(t for t in shown["themes"] if t["id"] == NORD_KEY)
            assert nord["usable"] is False
            assert {p["path"] for p in nord["problems"]} == {"contributes.themes[0].light.text"}

            response = api.put(f"{V1}/{ws}/appearance", json={"theme": NORD_KEY, "mode": "light"})
            error = refused(response, "theme")
            assert "fails the WCAG AA contrast check" in error["message"]
            problems = error["details"]["problems"]
            assert {p["path"] for p in problems} == {"contributes.themes[0].light.text"}
            assert any(
                p["message"].startswith(
                    f"text {UNREADABLE_TEXT} on bg {NORD_LIGHT_BG} has contrast"
                )
                for p in problems
            )
            page = client.get(f"/workspaces/{ws}/appearance")
            assert 'data-testid="theme-refused"' in page.text
            assert re.search(rf'value="{NORD_KEY}" disabled', page.text)
            posted = client.post(
                f"/workspaces/{ws}/appearance",
                data={"csrf": csrf_of(page), "theme": NORD_KEY, "mode": "light", "scope": "token"},
            )
            assert posted.status_code == 422
            assert 'data-testid="appearance-error"' in posted.text
            assert "contributes.themes[0].light.text: text #9aa3b5 on bg #eceff4" in posted.text
            # the earlier (readable) choice is still what is stored: a refusal changes nothing
            assert [(t, m) for _, t, m in stored(service, ws)] == [(NORD_KEY, "light")]
        finally:
            installed_manifest(service, ws).write_text(before)
        assert f"--bg: {NORD_LIGHT_BG};" in client.get(f"/workspaces/{ws}/theme.css").text


def test_disable_uninstall_and_purge(service: Service, browser: tuple[str, httpx.Client]) -> None:
    token, client = browser
    ws = client.headers["x-workspace"]
    with service.client(token) as api:
        for scope in ("token", "workspace"):
            body = {"theme": NORD_KEY, "mode": "dark", "scope": scope}
            assert api.put(f"{V1}/{ws}/appearance", json=body).status_code == 200
        assert f"--bg: {NORD_DARK_BG};" in client.get(f"/workspaces/{ws}/theme.css").text

        assert api.post(f"{V1}/{ws}/installations/{NORD}/disable").status_code == 200
        shown = appearance(api, ws)
        assert shown["theme"] == "plugport:light"
        assert shown["passed_over"] == [f"{NORD} is disabled; enable it to use its themes"] * 2
        assert client.get(f"/workspaces/{ws}/theme.css").text == BASE_CSS
        assert api.put(f"{V1}/{ws}/appearance", json={"theme": NORD_KEY}).status_code == 422
        assert api.post(f"{V1}/{ws}/installations/{NORD}/enable").status_code == 200
        assert appearance(api, ws)["theme"] == NORD_KEY

        # uninstalled without --purge: the choices stay, unused, until the plugin is back
        assert api.post(f"{V1}/{ws}/installations/{NORD}/uninstall").status_code == 204
        assert (
            appearance(api, ws)["passed_over"][0] == f"{NORD} is not installed in workspace {ws!r}"
        )
        assert len(stored(service, ws)) == 2
        install(service, token, ws)
        assert appearance(api, ws)["theme"] == NORD_KEY

        # --purge forgets them
        purge = api.post(f"{V1}/{ws}/installations/{NORD}/uninstall", params={"purge": "true"})
        assert purge.status_code == 204
        assert stored(service, ws) == []
        install(service, token, ws)
        assert appearance(api, ws)["source"] == "default"


def test_deleting_the_workspace_forgets_its_choices(service: Service) -> None:
    token = service.workspace("doomed")
    keeper = service.workspace("keeper")
    for ws, who in (("doomed", token), ("keeper", keeper)):
        with service.client(who) as api:
            for scope in ("token", "workspace"):
                body = {"theme": "plugport:dark", "mode": "dark", "scope": scope}
                assert api.put(f"{V1}/{ws}/appearance", json=body).status_code == 200
    assert len(stored(service, "doomed")) == 2
    with service.client(service.admin) as admin:
        assert admin.delete(f"{V1}/doomed").status_code == 200
    assert stored(service, "doomed") == []
    assert len(stored(service, "keeper")) == 2
    with service.client(service.admin) as admin:  # made again under the name: a clean slate
        assert admin.post(V1, json={"name": "doomed"}).status_code == 201
    assert stored(service, "doomed") == []
