"""The dashboard over real HTTP against a real registry, real sandboxed workers and the host
service on uvicorn: adding widgets, tiles rendered one at a time (a hanging, raising or
schema-breaking widget gets its error tile while the others render), actions that round-trip
to the plugin, invalidation, arranging, settings from the widget's schema, per-token layouts,
and the refusals (no permission, bad input, no CSRF token) that change nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.host._service import Service, wait_for
from tests.host._widgets import widget_service
from tests.host.test_service_pages import PARTIAL, csrf_of, signed_in


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with widget_service(tmp_path_factory.mktemp("dashboard")) as service:
        yield service


def install(api: httpx.Client, ws: str, *plugins: str) -> None:
    """Install with consent to exactly what each plugin asks for."""
    for plugin in plugins:
        consent: list[str] = []
        for _ in range(2):
            body = {"plugin": plugin, "consent": consent}
            started = api.post(f"/api/v1/workspaces/{ws}/installations", json=body)
            assert started.status_code == 202, started.text
            done = wait_for(api, ws, started.json())
            if done["state"] == "succeeded":
                break
            assert done["error"]["code"] == "consent_required", str(done)
            consent = done["error"]["details"]["added"]
        assert done["state"] == "succeeded", str(done)


@pytest.fixture(scope="module")
def board(service: Service) -> tuple[str, str]:
    token = service.workspace("board")
    with service.client(token) as api:
        install(api, "board", "acme.counter", "acme.hostile", "acme.slow", "acme.quiet")
    return "board", token


def test_the_catalogue_offers_granted_widgets_only(
    service: Service, board: tuple[str, str]
) -> None:
    ws, token = board
    with service.client(token) as api:
        layout = api.get(f"/api/v1/workspaces/{ws}/dashboard").json()
    offered = {(w["plugin"], w["widget"]) for w in layout["catalogue"]}
    assert ("acme.counter", "counter.clicks") in offered
    assert ("acme.slow", "slow.wait") in offered
    assert not any(plugin == "acme.quiet" for plugin, _ in offered)  # no ui = ["widgets"]
    [clicks] = [w for w in layout["catalogue"] if w["widget"] == "counter.clicks"]
    assert clicks["refresh_s"] == 60
    assert clicks["config_schema"]["properties"]["label"]["default"] == "Clicks"
    with service.client(token) as api:
        refused = api.post(
            f"/api/v1/workspaces/{ws}/dashboard/tiles",
            json={"plugin": "acme.quiet", "widget": "quiet.w"},
        )
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["details"]["field"] == "widget"
        assert api.get(f"/api/v1/workspaces/{ws}/dashboard").json()["tiles"] == []


def test_tiles_render_alone_and_failures_stay_in_their_tile(
    service: Service, board: tuple[str, str]
) -> None:
    ws, token = board
    with service.client(token) as api:
        tiles = {}
        for plugin, widget in [
            ("acme.counter", "counter.clicks"),
            ("acme.slow", "slow.wait"),
            ("acme.slow", "slow.boom"),
            ("acme.slow", "slow.bad"),
        ]:
            added = api.post(
                f"/api/v1/workspaces/{ws}/dashboard/tiles",
                json={"plugin": plugin, "widget": widget},
            )
            assert added.status_code == 201, added.text
            tiles[widget] = added.json()["added"]

        ok = api.get(f"/api/v1/workspaces/{ws}/dashboard/tiles/{tiles['counter.clicks']}").json()
        assert ok["ok"]
        assert ok["error"] is None
        assert ok["tree"]["children"][0] == {"type": "stat", "label": "Clicks", "value": 0}
        assert (
            f'src="/workspaces/{ws}/plugins/acme.counter/images/assets/logo.png" alt="Counter logo"'
            in ok["html"]
        )
        assert 'class="pp-stat-value">0<' in ok["html"]

        hung = api.get(f"/api/v1/workspaces/{ws}/dashboard/tiles/{tiles['slow.wait']}").json()
        assert hung["error"]["kind"] == "timeout", hung
        assert "did not answer within 1.5 s" in hung["error"]["message"]
        assert 'data-testid="surface-error" data-kind="timeout"' in hung["html"]

        boom = api.get(f"/api/v1/workspaces/{ws}/dashboard/tiles/{tiles['slow.boom']}").json()
        assert boom["error"]["kind"] == "raised"
        assert "the widget broke" in boom["error"]["message"]
        assert "Traceback" not in boom["html"]

        bad = api.get(f"/api/v1/workspaces/{ws}/dashboard/tiles/{tiles['slow.bad']}").json()
        assert bad["error"]["kind"] == "invalid"
        assert "field '/children/0/type'" in bad["error"]["message"]

        # the others still answer after one tile hung and the plugin's worker was stopped
        again = api.get(f"/api/v1/workspaces/{ws}/dashboard/tiles/{tiles['counter.clicks']}")
        assert again.json()["ok"]


def test_actions_round_trip_and_invalidation_bumps_the_version(
    service: Service, board: tuple[str, str]
) -> None:
    ws, token = board
    with service.client(token) as api:
        tile = api.post(
            f"/api/v1/workspaces/{ws}/dashboard/tiles",
            json={
                "plugin": "acme.counter",
                "widget": "counter.clicks",
                "config": {"label": "Hits"},
            },
        ).json()["added"]
        url = f"/api/v1/workspaces/{ws}/dashboard/tiles/{tile}"
        before = api.get(url).json()
        added = api.post(f"{url}/actions", json={"action": "add", "payload": {"by": 2}}).json()
        assert added["tree"]["children"][0] == {"type": "stat", "label": "Hits", "value": 2}
        wrong = api.post(f"{url}/actions", json={"action": "set", "values": {"to": "x"}}).json()
        assert wrong["tree"]["children"][4]["error"] == "'to' must be a whole number"
        assert "must be a whole number" in wrong["html"]
        overlay = api.post(f"{url}/actions", json={"action": "details"}).json()
        assert overlay["tree"]["type"] == "overlay"
        assert 'data-pp-overlay data-pp-kind="panel" role="dialog"' in overlay["html"]

        bumped = api.post(
            f"/api/v1/workspaces/{ws}/installations/acme.counter/execute",
            json={"command": "counter.bump"},
        )
        assert bumped.status_code == 200, bumped.text
        after = api.get(url).json()
        assert after["version"] == before["version"] + 1
        assert after["tree"]["children"][0]["value"] == 12

        bad_config = api.patch(url, json={"config": {"label": 5}})
        assert bad_config.status_code == 400
        assert bad_config.json()["error"]["details"]["field"] == "config/label"
        assert api.get(url).json()["tile"]["config"] == {"label": "Hits"}  # unchanged


def test_hostile_text_is_escaped_everywhere(service: Service, board: tuple[str, str]) -> None:
    ws, token = board
    with service.client(token) as api:
        tile = api.post(
            f"/api/v1/workspaces/{ws}/dashboard/tiles",
            json={"plugin": "acme.hostile", "widget": "hostile.all"},
        ).json()["added"]
        html = api.get(f"/api/v1/workspaces/{ws}/dashboard/tiles/{tile}").json()["html"]
    assert "<script" not in html
    assert "<img" not in html
    assert "onerror=" not in html.replace("onerror=alert(2)&gt;", "")
    assert "javascript:" not in html.replace("javascript:alert(3)", "")
    assert 'href="javascript' not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 8


def test_arranging_settings_and_own_layouts_through_the_pages(
    service: Service, board: tuple[str, str]
) -> None:
    ws, token = board
    with signed_in(service, token) as browser:
        page = browser.get(f"/workspaces/{ws}/dashboard")
        assert page.status_code == 200, page.text
        order = re.findall(r'data-testid="tile" data-tile="(\w+)"', page.text)
        assert len(order) >= 4
        csrf = csrf_of(page)
        moved = browser.post(
            f"/workspaces/{ws}/dashboard/tiles/{order[1]}/arrange",
            data={"csrf": csrf, "op": "move", "direction": "earlier"},
        )
        assert moved.status_code == 303
        page = browser.get(f"/workspaces/{ws}/dashboard")
        assert re.findall(r'data-testid="tile" data-tile="(\w+)"', page.text)[:2] == [
            order[1],
            order[0],
        ]
        resized = browser.post(
            f"/workspaces/{ws}/dashboard/tiles/{order[1]}/arrange",
            data={"csrf": csrf, "op": "resize", "width": "4", "height": "2"},
        )
        assert resized.status_code == 303
        assert (
            f'class="pp-tile pp-w-4 pp-h-2" id="tile-{order[1]}"'
            in browser.get(f"/workspaces/{ws}/dashboard").text
        )
        no_csrf = browser.post(
            f"/workspaces/{ws}/dashboard/tiles/{order[1]}/arrange", data={"op": "remove"}
        )
        assert no_csrf.status_code == 403
        assert order[1] in browser.get(f"/workspaces/{ws}/dashboard").text

        # a tile of the counter: its settings form comes from the widget's schema
        counter = next(
            t
            for t in re.findall(
                r'data-tile="(\w+)" data-plugin="acme.counter"',
                browser.get(f"/workspaces/{ws}/dashboard").text,
            )
        )
        form = browser.get(f"/workspaces/{ws}/dashboard/tiles/{counter}/settings")
        assert 'name="setting.label"' in form.text
        too_long = browser.post(
            f"/workspaces/{ws}/dashboard/tiles/{counter}/settings",
            data={"csrf": csrf, "setting.label": "x" * 41},
        )
        assert too_long.status_code == 422
        assert 'data-testid="settings-error"' in too_long.text
        saved = browser.post(
            f"/workspaces/{ws}/dashboard/tiles/{counter}/settings",
            data={"csrf": csrf, "setting.label": "Visits"},
        )
        assert saved.status_code == 303
        fragment = browser.get(f"/workspaces/{ws}/dashboard/tiles/{counter}", headers=PARTIAL)
        assert fragment.json()["ok"]
        assert ">Visits<" in fragment.json()["html"]

        # an action through the page: the form as the host rendered it (CSRF token and the
        # action's signature), answered as JSON for the script
        html = fragment.json()["html"]
        add = re.search(
            r'name="action" value="add">\s*<input type="hidden" name="payload" value="([^"]*)">\s*'
            r'<input type="hidden" name="sig" value="(\w+)">',
            html,
        )
        assert add, html
        payload = add.group(1).replace("&#34;", '"')
        form = {"csrf": csrf, "action": "add", "payload": payload, "sig": add.group(2)}
        action = browser.post(
            f"/workspaces/{ws}/dashboard/tiles/{counter}/actions", data=form, headers=PARTIAL
        )
        assert action.status_code == 200, action.text
        assert "pp-stat-value" in action.json()["html"]
        value = int(re.search(r'pp-stat-value">(\d+)<', action.json()["html"]).group(1))
        for forged in (
            {**form, "payload": '{"by":1000}'},  # a payload the tile never offered
            {**form, "action": "set"},  # an action under another's signature
            {**form, "sig": "0" * 64},
            {k: v for k, v in form.items() if k != "sig"},
            {k: v for k, v in form.items() if k != "csrf"},
        ):
            refused = browser.post(
                f"/workspaces/{ws}/dashboard/tiles/{counter}/actions", data=forged, headers=PARTIAL
            )
            assert refused.status_code in (400, 403), (forged, refused.status_code)
        after = browser.get(f"/workspaces/{ws}/dashboard/tiles/{counter}", headers=PARTIAL)
        assert f'pp-stat-value">{value}<' in after.json()["html"]  # nothing reached the plugin

    # a second token arranges its own layout; the workspace's stays as it was
    with service.client(service.admin) as admin:
        second = admin.post("/api/v1/tokens", json={"workspace": ws, "description": "second"})
    assert second.status_code == 201, second.text
    other = second.json()["token"]
    with signed_in(service, other) as browser:
        page = browser.get(f"/workspaces/{ws}/dashboard")
        shared = re.findall(r'data-testid="tile" data-tile="(\w+)"', page.text)
        own = browser.post(
            f"/workspaces/{ws}/dashboard/layout", data={"csrf": csrf_of(page), "own": "yes"}
        )
        assert own.status_code == 303
        page = browser.get(f"/workspaces/{ws}/dashboard")
        assert "This token's own layout." in page.text
        browser.post(
            f"/workspaces/{ws}/dashboard/tiles/{shared[0]}/arrange",
            data={"csrf": csrf_of(page), "op": "remove"},
        )
        assert shared[0] not in browser.get(f"/workspaces/{ws}/dashboard").text
    with service.client(token) as api:
        assert shared[0] in [
            t["id"] for t in api.get(f"/api/v1/workspaces/{ws}/dashboard").json()["tiles"]
        ]


def test_images_come_from_the_plugins_own_archive_only(
    service: Service, board: tuple[str, str]
) -> None:
    ws, token = board
    base = f"/workspaces/{ws}/plugins/acme.counter/images"
    with signed_in(service, token) as browser:
        logo = browser.get(f"{base}/assets/logo.png")
        assert logo.status_code == 200
        assert logo.headers["content-type"] == "image/png"
        assert logo.headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in logo.headers["content-security-policy"]
        assert logo.content.startswith(b"\x89PNG")
        for path in ("assets/notes.txt", "assets/../main.py", "plugport.toml", "assets/none.png"):
            refused = browser.get(f"{base}/{path}")
            assert refused.status_code == 404, (path, refused.status_code)
        assert browser.get(f"/workspaces/{ws}/plugins/acme.quiet/images/x.png").status_code == 404
    other = service.workspace("elsewhere")
    with signed_in(service, other) as stranger:
        assert stranger.get(f"{base}/assets/logo.png").status_code != 200


def test_purge_removes_tiles_and_workspace_deletion_removes_layouts(
    service: Service, tmp_path: Path
) -> None:
    token = service.workspace("gone")
    with service.client(token) as api:
        install(api, "gone", "acme.counter")
        api.post(
            "/api/v1/workspaces/gone/dashboard/tiles",
            json={"plugin": "acme.counter", "widget": "counter.clicks"},
        ).raise_for_status()
        kept = api.post("/api/v1/workspaces/gone/installations/acme.counter/uninstall")
        assert kept.status_code in (200, 204), kept.text
        assert len(api.get("/api/v1/workspaces/gone/dashboard").json()["tiles"]) == 1
        assert api.get("/api/v1/workspaces/gone/dashboard").json()["tiles"][0]["available"] is False
        install(api, "gone", "acme.counter")
        purged = api.post(
            "/api/v1/workspaces/gone/installations/acme.counter/uninstall",
            params={"purge": "true"},
        )
        assert purged.status_code in (200, 204), purged.text
        assert api.get("/api/v1/workspaces/gone/dashboard").json()["tiles"] == []
    database = service.home("gone") / "ui" / "dashboards.sqlite"
    assert database.exists()
    with service.client(service.admin) as admin:
        assert admin.delete("/api/v1/workspaces/gone").status_code in (200, 204)
    assert not database.exists()
