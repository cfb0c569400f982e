"""Plugins' pages, menu items and field types in the host service's pages, against real plugins
in real workers behind a real server: a page in the host's layout under its plugin's name, its
actions answered in place or with an overlay, menu items whose context the host builds from its
own objects, settings refused with a field type's error, and the abuse a browser or a plugin
could try: forged actions, missing CSRF, another workspace's task, withdrawn grants and
script-shaped text everywhere (each refusal also shows the plugin was never called)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from markupsafe import escape

from tests.host._service import Service
from tests.host._ui_plugins import (
    DORMANT,
    EVIL,
    LOCKED,
    PANELS,
    XSS,
    install_plugins,
    take_ui_grant,
)
from tests.host.service._tasks_service import FakeRunner, service_at, wait_until
from tests.host.test_service_pages import signed_in

PARTIAL = {"x-plugport-partial": "1"}
OVERVIEW = f"/workspaces/ui/plugins/{PANELS}/pages/overview"


@dataclass
class Form:
    action: str
    fields: dict[str, str]
    attributes: dict[str, str]


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._open: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._open = Form(found.get("action", ""), {}, found)
            self.forms.append(self._open)
        elif tag == "input" and self._open is not None and "name" in found:
            self._open.fields[found["name"]] = found.get("value", "")
        elif tag == "button" and self._open is not None:
            self._open.attributes.update({f"button:{k}": v for k, v in found.items()})

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = None


def forms(page: str) -> list[Form]:
    parser = _Forms()
    parser.feed(page)
    return parser.forms


def action_form(page: str, action: str) -> Form:
    found = [f for f in forms(page) if f.fields.get("action") == action]
    assert found, f"no form for action {action!r}"
    return found[0]


def menu_form(page: str, plugin: str, item: str, target: str) -> Form:
    found = [
        f
        for f in forms(page)
        if f.action.endswith(f"/plugins/{plugin}/menus/{item}") and f.fields.get("target") == target
    ]
    assert found, f"no menu item {plugin}/{item} for {target}"
    return found[0]


@dataclass
class World:
    service: Service
    token: str
    other_token: str
    root: Path

    def calls(self, plugin: str) -> int:
        """How often ``plugin`` was called (the runtime's own counter)."""
        with self.service.client(self.token) as api:
            rows = api.get("/api/v1/workspaces/ui/installations").json()["items"]
        return next(int(r["calls"]) for r in rows if r["name"] == plugin)

    def toggle(self, plugin: str, action: str) -> None:
        with self.service.client(self.token) as api:
            done = api.post(f"/api/v1/workspaces/ui/installations/{plugin}/{action}")
        assert done.status_code == 200, done.text


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("ui-pages")
    with service_at(root) as service:
        token = service.workspace("ui")
        install_plugins(service.home("ui"), root / "ui")
        other = service.workspace("other")
        install_plugins(service.home("other"), root / "other", [PANELS])
        yield World(service, token, other, root)


@pytest.fixture
def browser(world: World) -> Iterator[httpx.Client]:
    with signed_in(world.service, world.token) as client:
        yield client


def no_markup_from(text: str) -> None:
    """Nothing script-shaped a plugin sent survives as markup."""
    assert "<script>window.__pp_xss" not in text
    assert "<img src=x onerror" not in text
    assert 'href="javascript:' not in text
    assert "<iframe" not in text
    assert "<b>bad</b>" not in text


# --- pages ---------------------------------------------------------------------------------------


def test_the_navigation_links_the_enabled_plugins_pages_that_ask_for_it(
    world: World, browser: httpx.Client
) -> None:
    home = browser.get("/workspaces/ui")
    assert home.status_code == 200, home.text
    links = re.findall(
        r'data-testid="nav-plugin-page" data-plugin="([^"]+)" data-page="([^"]+)"', home.text
    )
    assert set(links) == {(PANELS, "overview"), (EVIL, "board"), (LOCKED, "secret")}
    assert (PANELS, "hidden") not in links  # nav = false: reachable, not linked
    hidden = browser.get(f"/workspaces/ui/plugins/{PANELS}/pages/hidden")
    assert hidden.status_code == 200
    assert "not in the navigation" in hidden.text
    # the navigation names the plugin beside the title it chose
    assert 'Panels overview <span class="nav-plugin-name">· acme.panels</span>' in home.text


def test_a_page_is_drawn_in_the_host_layout_under_its_plugins_name(
    world: World, browser: httpx.Client
) -> None:
    page = browser.get(OVERVIEW)
    assert page.status_code == 200, page.text
    assert '<h1 data-testid="plugin-page-title">Panels overview</h1>' in page.text
    assert "A page of plugin <strong>acme.panels</strong> · Counts, a table and tabs." in page.text
    assert "Not bumped yet" in page.text
    assert 'data-testid="nav-workspace"' in page.text  # the host's own layout around it
    assert "/host-ui/static/plugport-ui.js" in page.text
    assert "/host-ui/static/components.css" in page.text
    # every action the host rendered carries the CSRF token and its signature
    actions = [f for f in forms(page.text) if "action" in f.fields]
    assert len(actions) == 4
    assert all(f.fields["csrf"] and len(f.fields["sig"]) == 64 for f in actions)
    # the script and stylesheet are served
    assert browser.get("/host-ui/static/plugport-ui.js").status_code == 200
    assert browser.get("/host-ui/static/components.css").status_code == 200
    # with the partial header: only the surface's markup, for PlugportUI.mount
    partial = browser.get(OVERVIEW, headers=PARTIAL)
    assert partial.json()["ok"] is True
    assert partial.json()["html"].startswith('<div class="pp-stack">')


def test_a_button_is_answered_with_the_tree_again(world: World, browser: httpx.Client) -> None:
    page = browser.get(OVERVIEW)
    bump = action_form(page.text, "bump")
    assert bump.action == f"{OVERVIEW}/actions"
    full = browser.post(bump.action, data=bump.fields)
    assert full.status_code == 200, full.text
    assert "Bumped by 1" in full.text
    assert '<h1 data-testid="plugin-page-title">Panels overview</h1>' in full.text
    partial = browser.post(bump.action, data=bump.fields, headers=PARTIAL)
    assert partial.status_code == 200, partial.text
    answer = partial.json()
    assert answer["overlay"] is False
    assert "Bumped by 1" in answer["html"]
    assert "<h1" not in answer["html"]


def test_form_values_reach_the_handler(world: World, browser: httpx.Client) -> None:
    page = browser.get(OVERVIEW)
    greet = action_form(page.text, "greet")
    sent = greet.fields | {"who": "Ada <3", "note": "EU-1"}
    answer = browser.post(greet.action, data=sent, headers=PARTIAL).json()
    assert "Hello, Ada &lt;3 (EU-1)" in answer["html"]


def test_an_action_answered_with_an_overlay(world: World, browser: httpx.Client) -> None:
    page = browser.get(OVERVIEW)
    details = action_form(page.text, "details")
    answer = browser.post(details.action, data=details.fields, headers=PARTIAL).json()
    assert answer["overlay"] is True
    assert 'class="pp-overlay pp-overlay-modal" data-pp-overlay' in answer["html"]
    assert "Details of item-1" in answer["html"]
    assert "From plugin <strong>acme.panels</strong>" in answer["html"]
    # its own button posts back to the page, signed like the page's
    inner = action_form(answer["html"], "bump")
    again = browser.post(inner.action, data=inner.fields, headers=PARTIAL).json()
    assert "Bumped by 10" in again["html"]
    # without the script: the page drawn again beneath the overlay, closed by a link to it
    full = browser.post(details.action, data=details.fields)
    assert full.status_code == 200
    assert "Details of item-1" in full.text
    assert "Not bumped yet" in full.text
    assert f'href="{OVERVIEW}" data-pp-close' in full.text


def test_forged_or_unsigned_actions_are_refused_and_never_reach_the_plugin(
    world: World, browser: httpx.Client
) -> None:
    page = browser.get(OVERVIEW)
    bump = action_form(page.text, "bump")
    details = action_form(page.text, "details")
    with world.service.client(world.service.admin) as admin:
        second = admin.post("/api/v1/tokens", json={"workspace": "ui"}).json()["token"]
    with signed_in(world.service, second) as stranger:
        stranger_csrf = forms(stranger.get("/workspaces/ui").text)[0].fields["csrf"]
    before = world.calls(PANELS)
    attempts = {
        "no csrf": {k: v for k, v in bump.fields.items() if k != "csrf"},
        "no signature": {k: v for k, v in bump.fields.items() if k != "sig"},
        "another payload": bump.fields | {"payload": '{"by":1000}'},
        "another action": bump.fields | {"action": "details"},
        "another action's signature": bump.fields | {"sig": details.fields["sig"]},
    }
    for why, data in attempts.items():
        refused = browser.post(bump.action, data=data, headers=PARTIAL)
        assert refused.status_code == 403, (why, refused.text)
        assert refused.json()["ok"] is False, why
        assert "nothing" in refused.json()["message"], why
    # a signature is bound to its page: the overview's does not work on the hidden page
    elsewhere = browser.post(
        f"/workspaces/ui/plugins/{PANELS}/pages/hidden/actions", data=bump.fields
    )
    assert elsewhere.status_code == 403
    assert "not offered" in elsewhere.text
    # and to the session: another token's page cannot replay it (with its own CSRF token)
    with signed_in(world.service, second) as stranger:
        replay = stranger.post(bump.action, data=bump.fields | {"csrf": stranger_csrf})
    assert replay.status_code == 403
    assert "not offered" in replay.text
    bad_payload = browser.post(bump.action, data=bump.fields | {"payload": "[1]"})
    assert bad_payload.status_code == 400
    assert "payload: must be a JSON object" in bad_payload.text
    assert world.calls(PANELS) == before


def test_pages_that_are_not_offered_say_why_and_never_call_the_plugin(
    world: World, browser: httpx.Client
) -> None:
    missing = browser.get("/workspaces/ui/plugins/acme.nobody/pages/x")
    assert missing.status_code == 404
    assert "acme.nobody is not installed in this workspace" in missing.text
    unknown = browser.get(f"/workspaces/ui/plugins/{PANELS}/pages/nowhere")
    assert unknown.status_code == 404
    assert "contributes no page &#39;nowhere&#39; (it has: overview, hidden)" in unknown.text
    partial = browser.get(f"/workspaces/ui/plugins/{PANELS}/pages/nowhere", headers=PARTIAL)
    assert partial.status_code == 404
    assert partial.json()["ok"] is False
    # a field type is no page, although the plugin answers it
    not_a_page = browser.get(f"/workspaces/ui/plugins/{PANELS}/pages/region-code")
    assert not_a_page.status_code == 404

    before = world.calls(LOCKED)
    world.toggle(LOCKED, "disable")
    try:
        disabled = browser.get(f"/workspaces/ui/plugins/{LOCKED}/pages/secret")
        assert disabled.status_code == 404
        assert "acme.locked is installed but not enabled in this workspace" in disabled.text
        assert 'data-plugin="acme.locked" data-page="secret"' not in disabled.text
        take_ui_grant(world.service.home("ui"), LOCKED, "pages")
    finally:
        world.toggle(LOCKED, "enable")
    refused = browser.get(f"/workspaces/ui/plugins/{LOCKED}/pages/secret")
    assert refused.status_code == 404
    assert "acme.locked was not granted &#39;pages&#39; in permissions.ui" in refused.text
    assert 'data-plugin="acme.locked" data-page="secret"' not in refused.text  # not in the nav
    # its menu item (menus still granted) is offered; the page never was, nor called
    home = browser.get("/workspaces/ui")
    assert 'data-plugin="acme.locked" data-item="nudge"' in home.text
    assert world.calls(LOCKED) == before


# --- menus ---------------------------------------------------------------------------------------


def test_a_menu_item_on_an_installation_row_answers_with_its_overlay(
    world: World, browser: httpx.Client
) -> None:
    home = browser.get("/workspaces/ui")
    inspect = menu_form(home.text, PANELS, "inspect", DORMANT)
    assert inspect.fields["back"] == "/workspaces/ui"
    answer = browser.post(inspect.action, data=inspect.fields, headers=PARTIAL)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["overlay"] is True
    overlay = body["html"]
    assert 'class="pp-overlay pp-overlay-panel"' in overlay  # the manifest's overlay = "panel"
    assert ">Inspect</h2>" in overlay  # a plain tree gets the item's title
    assert "From plugin <strong>acme.panels</strong>" in overlay
    pairs = dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]+)</dd>", overlay))
    assert pairs == {
        "menu": "installation",
        "plugin": DORMANT,
        "workspace": "ui",
        "action": "—",
    }
    # the installation's own page offers it too, coming back there
    own = browser.get(f"/workspaces/ui/installations/{DORMANT}")
    assert menu_form(own.text, PANELS, "inspect", DORMANT).fields["back"] == (
        f"/workspaces/ui/installations/{DORMANT}"
    )

    # the overlay's own button posts to the item with the same target, signed for it
    again = action_form(overlay, "again")
    assert "target=acme.dormant" in again.action
    answered = browser.post(html.unescape(again.action), data=again.fields, headers=PARTIAL)
    assert (
        dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]+)</dd>", answered.json()["html"]))["action"]
        == "again"
    )
    # ... and cannot be pointed at another target
    before = world.calls(PANELS)
    moved = html.unescape(again.action).replace("target=acme.dormant", "target=acme.evil")
    assert browser.post(moved, data=again.fields, headers=PARTIAL).status_code == 403
    assert world.calls(PANELS) == before

    # without the script: a page with the overlay open, closed by a link back
    full = browser.post(inspect.action, data=inspect.fields)
    assert full.status_code == 200
    assert 'data-testid="menu-item-title">Inspect</h1>' in full.text
    assert 'href="/workspaces/ui" data-pp-close' in full.text


def test_a_menu_item_that_answers_nothing_says_done(world: World, browser: httpx.Client) -> None:
    home = browser.get("/workspaces/ui")
    ping = menu_form(home.text, PANELS, "ping", EVIL)
    answer = browser.post(ping.action, data=ping.fields, headers=PARTIAL).json()
    assert answer == {
        "ok": True,
        "kind": "success",
        "message": "Ping (acme.panels): done.",
        "close": True,
    }
    # a "back" that is not one of this menu's pages is not followed
    full = browser.post(ping.action, data=ping.fields | {"back": "https://evil.example/"})
    assert full.status_code == 303
    assert full.headers["location"] == f"/workspaces/ui/installations/{EVIL}"


def test_menu_targets_are_found_in_this_workspace_or_refused(
    world: World, browser: httpx.Client
) -> None:
    home = browser.get("/workspaces/ui")
    inspect = menu_form(home.text, PANELS, "inspect", DORMANT)
    with world.service.client(world.other_token) as api:
        foreign = api.post("/api/v1/workspaces/other/tasks", json={"type": "PANEL"}).json()
    task_item = f"/workspaces/ui/plugins/{PANELS}/menus/task-info"
    before = world.calls(PANELS)
    attempts = [
        (inspect.action, inspect.fields | {"target": "acme.nobody"}, 404, "no installed plugin"),
        (inspect.action, inspect.fields | {"target": ""}, 400, "target"),
        (task_item, inspect.fields | {"target": foreign["id"]}, 404, "no task"),
        (inspect.action, {k: v for k, v in inspect.fields.items() if k != "csrf"}, 403, "form"),
        (f"/workspaces/ui/plugins/{PANELS}/menus/nothing", inspect.fields, 404, "no menu item"),
    ]
    for url, data, status, said in attempts:
        refused = browser.post(url, data=data, headers=PARTIAL)
        assert refused.status_code == status, (url, data, refused.text)
        assert said in refused.json()["message"]
    # a context the client sends is ignored: only the target is read, and it was found
    sent = inspect.fields | {"menu": "task", "plugin": "acme.other", "context": '{"menu":"x"}'}
    answer = browser.post(inspect.action, data=sent, headers=PARTIAL).json()
    assert "<dt>plugin</dt><dd>acme.dormant</dd>" in answer["html"]
    assert "<dt>menu</dt><dd>installation</dd>" in answer["html"]
    assert world.calls(PANELS) == before + 1
    # the other workspace's token cannot use this workspace's pages at all
    with signed_in(world.service, world.other_token) as other:
        wrong = other.post(inspect.action, data=inspect.fields, headers=PARTIAL)
    assert wrong.status_code == 401


def test_task_and_workflow_run_menus_get_their_context_from_the_host(
    world: World, browser: httpx.Client
) -> None:
    with world.service.client(world.token) as api:
        task = api.post("/api/v1/workspaces/ui/tasks", json={"type": "PANEL"}).json()
        wait_until(
            api, f"/api/v1/workspaces/ui/tasks/{task['id']}", lambda b: b["state"] != "queued"
        )
    page = browser.get(f"/workspaces/ui/tasks/{task['id']}")
    assert page.status_code == 200, page.text
    info = menu_form(page.text, PANELS, "task-info", task["id"])
    answer = browser.post(info.action, data=info.fields, headers=PARTIAL).json()
    assert 'class="pp-overlay pp-overlay-modal"' in answer["html"]  # the manifest's, not the tree's
    assert ">Task facts</h2>" in answer["html"]
    pairs = dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]+)</dd>", answer["html"]))
    assert pairs == {"menu": "task", "task": task["id"], "type": "PANEL"}

    host = world.service.service.workspace("ui").host
    real, host.workflows = host.workflows, FakeRunner()  # type: ignore[assignment]
    try:
        with world.service.client(world.token) as api:
            run = api.post("/api/v1/workspaces/ui/workflows/runs", json={"workflow": "x"}).json()
        page = browser.get(f"/workspaces/ui/workflows/{run['id']}")
        assert page.status_code == 200, page.text
        run_info = menu_form(page.text, PANELS, "run-info", run["id"])
        answer = browser.post(run_info.action, data=run_info.fields, headers=PARTIAL).json()
        pairs = dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]+)</dd>", answer["html"]))
        assert pairs == {"menu": "workflow_run", "run": run["id"]}
        missing = browser.post(run_info.action, data=run_info.fields | {"target": "nope"})
        assert missing.status_code == 404
    finally:
        host.workflows = real


# --- form fields ---------------------------------------------------------------------------------


def _setting_input(page: str, key: str) -> str:
    found = re.search(rf'<input[^>]*name="setting\.{re.escape(key)}"[^>]*>', page)
    assert found, page
    return found.group(0)


def test_settings_use_a_plugins_field_type_and_its_check(
    world: World, browser: httpx.Client
) -> None:
    url = f"/workspaces/ui/installations/{PANELS}/settings"
    page = browser.get(url)
    assert page.status_code == 200, page.text
    region = _setting_input(page.text, "region")
    assert 'placeholder="EU-1"' in region
    assert 'pattern="[A-Z]{2}-[0-9]+"' in region
    assert 'data-pp-field-type="acme.panels:region-code"' in region
    assert "Two capital letters, a dash and a number." in page.text
    assert "Checked by plugin acme.panels when saved." in page.text
    assert 'placeholder="dormant-placeholder"' in _setting_input(page.text, "legacy")
    host = world.service.service.workspace("ui").host
    form = {"csrf": re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)}  # type: ignore[union-attr]

    refused = browser.post(url, data=form | {"setting.region": "XX-0", "setting.plain": "kept?"})
    assert refused.status_code == 400, refused.text
    assert (
        'data-testid="field-error" role="alert">XX-0 is reserved; pick another region<'
        in refused.text
    )
    assert 'value="XX-0"' in _setting_input(refused.text, "region")  # what was typed stays
    assert 'aria-invalid="true"' in _setting_input(refused.text, "region")
    assert host.stored_settings(PANELS) == {}  # nothing saved, not even the valid field

    saved = browser.post(url, data=form | {"setting.region": "EU-1"})
    assert saved.status_code == 303, saved.text
    assert host.stored_settings(PANELS) == {"region": "EU-1"}


def test_a_field_type_of_a_disabled_plugin_falls_back_to_plain_text(
    world: World, browser: httpx.Client
) -> None:
    world.toggle(DORMANT, "disable")
    try:
        page = browser.get(f"/workspaces/ui/installations/{PANELS}/settings")
        legacy = _setting_input(page.text, "legacy")
        assert "placeholder" not in legacy
        assert "data-pp-field-type" not in legacy
        assert "The field type acme.dormant:code is not available" in page.text
        host = world.service.service.workspace("ui").host
        before = host.stored_settings(PANELS)
        form = {"csrf": re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)}  # type: ignore[union-attr]
        url = f"/workspaces/ui/installations/{PANELS}/settings"
        assert browser.post(url, data=form | {"setting.legacy": "anything"}).status_code == 303
        assert host.stored_settings(PANELS) == before | {"legacy": "anything"}
        # a component-tree form that names it shows a plain input with a note
        tree = browser.get(OVERVIEW)
        assert "The field type acme.dormant:code is not available" in tree.text
        assert 'data-pp-field-type="acme.dormant:code"' not in tree.text
    finally:
        world.toggle(DORMANT, "enable")


# --- script-shaped text from a plugin ------------------------------------------------------------


def test_every_text_a_plugin_returns_is_shown_as_text(world: World, browser: httpx.Client) -> None:
    escaped = str(escape(XSS))
    board = f"/workspaces/ui/plugins/{EVIL}/pages/board"
    page = browser.get(board)
    assert page.status_code == 200, page.text
    no_markup_from(page.text)
    assert page.text.count(escaped) >= 10
    assert f"<title>{escaped} · acme.evil" in page.text

    boom = action_form(page.text, "boom")
    failed = browser.post(boom.action, data=boom.fields, headers=PARTIAL).json()
    no_markup_from(failed["html"])
    assert 'data-pp-failure data-kind="raised"' in failed["html"]
    assert "Traceback" not in failed["html"]

    home = browser.get("/workspaces/ui")
    no_markup_from(home.text)
    poke = menu_form(home.text, EVIL, "poke", PANELS)
    answer = browser.post(poke.action, data=poke.fields, headers=PARTIAL).json()
    no_markup_from(answer["html"])
    assert "window.__pp_xss" in html.unescape(answer["html"])  # shown, as text

    settings = f"/workspaces/ui/installations/{EVIL}/settings"
    form_page = browser.get(settings)
    no_markup_from(form_page.text)
    csrf = re.search(r'name="csrf" value="([^"]+)"', form_page.text).group(1)  # type: ignore[union-attr]
    refused = browser.post(settings, data={"csrf": csrf, "setting.motto": "hi"})
    assert refused.status_code == 400
    no_markup_from(refused.text)
    assert 'data-testid="field-error"' in refused.text
