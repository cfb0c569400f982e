"""Which UI extensions a workspace's pages offer, and what the host accepts back from a browser
for them. Pure: contributions and form data in, answers or errors out.

The rules it protects: a plugin's page, menu item or field type is offered only while the plugin
is enabled and its consented ``permissions.ui`` holds the surface's permission (otherwise the
host says why and never calls it); an action posted back is one the host itself rendered for
this session, this plugin, this surface and this target (an HMAC over all of them), so a
browser cannot make up an action, a payload or the object a menu item acts on; and the context
a menu item's handler gets is built by the host from an object it found in the workspace, never
copied from the request."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from plugport.errors import InvalidInputError, NotFoundError
from plugport.host.ui.render import FieldTypeView
from plugport.manifest import MENUS, Manifest, MenuItem, Page

__all__ = [
    "MAX_NAV_PAGES",
    "MAX_VALUES",
    "ActionForm",
    "ActionFormError",
    "Contribution",
    "MenuEntry",
    "PageLink",
    "action_form",
    "action_signature",
    "back_url",
    "field_error",
    "field_types",
    "find_menu_item",
    "find_page",
    "menu_context",
    "menu_entries",
    "menu_url",
    "nav_pages",
    "page_url",
    "payload_text",
    "signature_valid",
    "widget_key",
]

MAX_NAV_PAGES = 20
"""Plugin pages the navigation links to at most (the rest are reachable by URL)."""
MAX_VALUES = 100
"""Form fields an action may carry besides the host's own."""
MAX_PAYLOAD_CHARS = 8192
HOST_FIELDS = frozenset({"csrf", "action", "payload", "sig", "target", "back"})
"""Form fields the host reads itself: never passed to a plugin as ``values``."""
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*(?:\.[a-z0-9][a-z0-9_-]*)*$")
_PLUGIN_RE = re.compile(
    r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])\.[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])$"
)
_PERMISSION = {"page": "pages", "menu": "menus", "field": "forms"}


class ActionFormError(InvalidInputError):
    """A posted surface form breaks a rule: ``field`` names the form field."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True)
class Contribution:
    """One enabled plugin's UI contributions and the ``permissions.ui`` it was granted."""

    plugin: str
    manifest: Manifest
    granted_ui: Collection[str]

    def allows(self, kind: str) -> bool:
        return _PERMISSION[kind] in self.granted_ui


@dataclass(frozen=True)
class PageLink:
    plugin: str
    id: str
    title: str
    description: str
    url: str


@dataclass(frozen=True)
class MenuEntry:
    plugin: str
    id: str
    title: str
    menu: str
    overlay: str
    url: str


@dataclass(frozen=True)
class ActionForm:
    """What a browser posted back: the action's name and payload (both rendered by the host),
    and the form's other fields as ``values`` (text; a repeated name gives a list)."""

    action: str | None
    payload: dict[str, Any]
    values: dict[str, Any]
    payload_text: str
    signature: str


def _plugin_url(ws: str, plugin: str, kind: str, item: str) -> str:
    parts = (quote(part, safe="") for part in (ws, plugin, kind, item))
    return "/workspaces/{}/plugins/{}/{}/{}".format(*parts)


def page_url(ws: str, plugin: str, page: str) -> str:
    return _plugin_url(ws, plugin, "pages", page)


def menu_url(ws: str, plugin: str, item: str) -> str:
    return _plugin_url(ws, plugin, "menus", item)


def nav_pages(ws: str, contributions: Iterable[Contribution]) -> list[PageLink]:
    """The pages the navigation links to: ``nav = true`` pages of plugins granted ``pages``,
    in plugin then manifest order, at most :data:`MAX_NAV_PAGES`."""
    links = [
        PageLink(c.plugin, p.id, p.title, p.description, page_url(ws, c.plugin, p.id))
        for c in sorted(contributions, key=lambda c: c.plugin)
        if c.allows("page")
        for p in c.manifest.contributes.pages
        if p.nav
    ]
    return links[:MAX_NAV_PAGES]


def menu_entries(ws: str, contributions: Iterable[Contribution]) -> dict[str, list[MenuEntry]]:
    """Menu name -> the items plugins granted ``menus`` add to it (every named menu present)."""
    found: dict[str, list[MenuEntry]] = {menu: [] for menu in MENUS}
    for c in sorted(contributions, key=lambda c: c.plugin):
        if not c.allows("menu"):
            continue
        for item in c.manifest.contributes.menus:
            found[item.menu].append(
                MenuEntry(
                    c.plugin, item.id, item.title, item.menu, item.overlay,
                    menu_url(ws, c.plugin, item.id),
                )
            )  # fmt: skip
    return found


def field_types(contributions: Iterable[Contribution]) -> dict[str, FieldTypeView]:
    """``plugin:field-id`` -> how host forms show that field type, for plugins granted
    ``forms``."""
    return {
        f"{c.plugin}:{f.id}": FieldTypeView(
            c.plugin, f.id, f.base, f.placeholder, f.pattern, f.help or f.title
        )
        for c in contributions
        if c.allows("field")
        for f in c.manifest.contributes.fields
    }


def widget_key(widget: str, owner: str) -> str | None:
    """``plugin:field-id`` for a ``ui:widget``/``widget`` value (a bare id is ``owner``'s own
    field type); ``None`` when it names no field type at all."""
    plugin, sep, field_id = widget.rpartition(":")
    if not sep:
        plugin = owner
    if not _PLUGIN_RE.match(plugin) or not _ID_RE.match(field_id):
        return None
    return f"{plugin}:{field_id}"


def _find(
    contributions: Iterable[Contribution],
    plugin: str,
    item_id: str,
    *,
    kind: str,
    what: str,
    items: str,
    installed: bool | None,
) -> Any:
    name = f"{plugin}/{item_id}"
    found = next((c for c in contributions if c.plugin == plugin), None)
    if found is None:
        hint = (
            f"plugin {plugin} is installed but not enabled in this workspace"
            if installed
            else f"plugin {plugin} is not installed in this workspace"
        )
        raise NotFoundError(what, name, hint)
    offered = getattr(found.manifest.contributes, items)
    item = next((i for i in offered if i.id == item_id), None)
    if item is None:
        ids = ", ".join(i.id for i in offered) or "none"
        raise NotFoundError(
            what, name, f"{plugin} contributes no {what} {item_id!r} (it has: {ids})"
        )
    if not found.allows(kind):
        granted = ", ".join(sorted(found.granted_ui)) or "none"
        raise NotFoundError(
            what,
            name,
            f"{plugin} was not granted {_PERMISSION[kind]!r} in permissions.ui (granted: "
            f"{granted}), so the host does not show it",
        )
    return item


def find_page(
    contributions: Iterable[Contribution], plugin: str, page: str, *, installed: bool | None
) -> Page:
    """The page, or a :class:`NotFoundError` saying why it is not offered (``installed``:
    whether the plugin is installed at all, for the message)."""
    found: Page = _find(
        contributions, plugin, page, kind="page", what="page", items="pages", installed=installed
    )
    return found


def find_menu_item(
    contributions: Iterable[Contribution], plugin: str, item: str, *, installed: bool | None
) -> MenuItem:
    found: MenuItem = _find(
        contributions, plugin, item, kind="menu", what="menu item", items="menus",
        installed=installed,
    )  # fmt: skip
    return found


MAX_FIELD_ERROR_CHARS = 500


def field_error(plugin: str, answer: Any, failure: tuple[str, str] | None = None) -> str | None:
    """What a field type's ``@field`` handler said about a value: ``None`` (valid), its
    message (capped), or why it could not be checked (``failure``: kind and message), which
    refuses the value too; an answer that is not text is the plugin's mistake, said so."""
    if failure is not None:
        kind, message = failure
        return f"{plugin} could not check this value ({kind}): {message}"[:MAX_FIELD_ERROR_CHARS]
    if answer is None:
        return None
    if not isinstance(answer, str):
        return f"{plugin} answered with {type(answer).__name__}, not an error message or None"
    return (answer.strip() or "is not valid")[:MAX_FIELD_ERROR_CHARS]


def payload_text(payload: Mapping[str, Any]) -> str:
    """The one spelling of a payload that is signed and posted (what the template writes)."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True)


def action_signature(
    secret: bytes, binding: Sequence[str], action: str, payload: Mapping[str, Any]
) -> str:
    """An HMAC that the host rendered ``action`` with ``payload`` for ``binding``: the session,
    workspace, plugin, surface and (for a menu item) its target."""
    message = json.dumps(["ui-action", *binding, action, payload_text(payload)])
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()


def signature_valid(secret: bytes, binding: Sequence[str], form: ActionForm) -> bool:
    if form.action is None or not form.signature:
        return False
    expected = action_signature(secret, binding, form.action, form.payload)
    return hmac.compare_digest(expected, form.signature)


def action_form(items: Iterable[tuple[str, Any]]) -> ActionForm:
    """Read a posted surface form: ``action`` (an id, or absent for a plain render),
    ``payload`` (a JSON object, as the host wrote it), ``sig``, and the other fields as
    ``values``. An :class:`ActionFormError` names a field that breaks a rule."""
    action: str | None = None
    payload_raw = ""
    signature = ""
    values: dict[str, Any] = {}
    for key, value in items:
        if not isinstance(value, str):
            raise ActionFormError(key, "must be text (files are not accepted)")
        if key == "action":
            action = value
        elif key == "payload":
            payload_raw = value
        elif key == "sig":
            signature = value
        elif key in HOST_FIELDS:
            continue
        elif key in values:
            previous = values[key]
            values[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            if len(values) >= MAX_VALUES:
                raise ActionFormError("values", f"more than {MAX_VALUES} fields (max_values)")
            values[key] = value
    if action is not None and not _ID_RE.match(action):
        raise ActionFormError("action", f"{action[:100]!r} is not an action name")
    return ActionForm(action, _payload(payload_raw), values, payload_raw, signature)


def _payload(raw: str) -> dict[str, Any]:
    if not raw:
        return {}
    if len(raw) > MAX_PAYLOAD_CHARS:
        raise ActionFormError("payload", f"is over {MAX_PAYLOAD_CHARS} characters")
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise ActionFormError("payload", "is not JSON") from None
    if not isinstance(parsed, dict):
        raise ActionFormError("payload", "must be a JSON object")
    return parsed


def menu_context(menu: str, found: Mapping[str, Any]) -> dict[str, Any]:
    """The context a menu item's handler gets, from the object the host found in the
    workspace (an installation row, a task, a workflow run): never from the request."""
    if menu == "installation":
        return {"menu": menu, "plugin": str(found["name"])}
    if menu == "task":
        return {"menu": menu, "task": str(found["id"]), "type": str(found["type"])}
    if menu == "workflow_run":
        return {"menu": menu, "run": str(found["id"])}
    raise ValueError(f"no menu {menu!r}")


def target_url(ws: str, menu: str, target: str) -> str:
    """The page of a menu item's target: where the menu was opened."""
    w, t = quote(ws, safe=""), quote(target, safe="")
    return {
        "installation": f"/workspaces/{w}/installations/{t}",
        "task": f"/workspaces/{w}/tasks/{t}",
        "workflow_run": f"/workspaces/{w}/workflows/{t}",
    }[menu]


def back_url(ws: str, menu: str, target: str, given: str | None) -> str:
    """Where closing a menu item's overlay goes without the script: the page it was opened
    from when that is the workspace page or the target's own page, else the target's page
    (never a URL a request made up)."""
    own = target_url(ws, menu, target)
    return given if given in (own, f"/workspaces/{quote(ws, safe='')}") else own
