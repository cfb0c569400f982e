"""What the renderer adds for pages and menus: signed actions, overlays that name their plugin,
the failure box, and field types (a plugin's own by a bare id, another's by ``plugin:id``, a
missing one as a plain input with a note). Pure: trees in, markup out."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from plugport.components import check_tree
from plugport.host.ui.render import (
    FieldTypeView,
    RenderContext,
    render_failure,
    render_overlay,
    render_tree,
)

SCRIPT = "<script>alert(1)</script>"


def context(**options: Any) -> RenderContext:
    return RenderContext(id_prefix="t", action_url="/act", csrf="c", **options)


def test_actions_carry_the_signature_the_context_gives() -> None:
    tree = {"type": "button", "label": "Go", "action": {"name": "go", "payload": {"n": 1}}}
    signed = render_tree(tree, context(sign=lambda action, payload: f"{action}-{payload['n']}"))
    assert '<input type="hidden" name="sig" value="go-1">' in signed
    assert 'name="sig"' not in render_tree(tree, context())  # no signer: no field


def test_overlays_name_their_plugin_and_escape_everything() -> None:
    tree = check_tree(
        {
            "type": "overlay",
            "kind": "panel",
            "title": SCRIPT,
            "children": [{"type": "text", "text": "x"}],
        },
        overlay_allowed=True,
    )
    markup = render_tree(tree, context(plugin="acme.panels", close_url="/back"))
    assert 'class="pp-overlay pp-overlay-panel" data-pp-overlay data-pp-kind="panel"' in markup
    assert "From plugin <strong>acme.panels</strong>" in markup
    assert "&lt;script&gt;" in markup
    assert SCRIPT not in markup
    assert 'href="/back" data-pp-close' in markup
    around = render_overlay("modal", SCRIPT, Markup("<p>host</p>"), context(plugin="acme.p"))
    assert "<p>host</p>" in around
    assert SCRIPT not in around
    assert "pp-overlay-modal" in around
    assert "pp-overlay-modal" in render_overlay("sideways", "t", Markup(""), context())


def test_the_failure_box_shows_kind_and_message_as_text() -> None:
    box = render_failure("raised", SCRIPT, "acme.p")
    assert 'data-pp-failure data-kind="raised"' in box
    assert "acme.p could not show this" in box
    assert SCRIPT not in box
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in box


def test_field_types_by_bare_id_by_plugin_and_missing() -> None:
    tree = check_tree(
        {
            "type": "form",
            "fields": [
                {"name": "own", "label": "Own", "widget": "zip"},
                {"name": "theirs", "label": "Theirs", "widget": "acme.other:code"},
                {"name": "gone", "label": "Gone", "widget": "acme.gone:code"},
            ],
            "submit": {"label": "Go", "action": {"name": "go"}},
        }
    )
    types = {
        "acme.me:zip": FieldTypeView("acme.me", "zip", placeholder="12345", pattern="[0-9]{5}"),
        "acme.other:code": FieldTypeView("acme.other", "code", base="integer", help="A code"),
    }
    markup = render_tree(tree, context(plugin="acme.me", field_types=types))
    assert (
        'name="own" data-pp-field-type="acme.me:zip" placeholder="12345" pattern="[0-9]{5}"'
        in markup
    )
    assert (
        '<input type="number" id="t-n-f1" name="theirs" data-pp-field-type="acme.other:code"'
        in markup
    )
    assert '<input type="text" id="t-n-f2" name="gone">' in markup
    assert "The field type acme.gone:code is not available" in markup
    # without knowing the plugin, a bare id matches nothing and says so
    alone = render_tree(tree, context(field_types=types))
    assert "The field type zip is not available" in alone
