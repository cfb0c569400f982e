"""Component trees to HTML with the host's own templates and design system. The tree was checked
against :data:`plugport.components.COMPONENT_SCHEMA` first; here every string is escaped on
the way out, Markdown goes through the sanitiser, charts are drawn as SVG by the host, images
come only from the plugin's own assets and links only to ``https`` pages or the plugin's own
pages. Pure: tree and context in, markup out; no plugin call, no I/O."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from plugport.host.ui.markdown import render_markdown

__all__ = [
    "STATIC_DIR",
    "STATIC_PATH",
    "FieldTypeView",
    "RenderContext",
    "render_failure",
    "render_overlay",
    "render_tree",
]

TEMPLATE_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
"""``plugport-ui.js`` (what enhances surfaces in the browser) and ``components.css``."""
STATIC_PATH = "/host-ui/static"
"""Where a host app serves :data:`STATIC_DIR`."""
_WIDTHS = (64, 128, 256, 512)


@dataclass(frozen=True)
class FieldTypeView:
    """A field type a plugin contributes, as host forms show it."""

    plugin: str
    id: str
    base: str = "string"
    placeholder: str = ""
    pattern: str = ""
    help: str = ""


@dataclass(frozen=True)
class RenderContext:
    """What a surface's markup needs from where it is shown: element ids unique on the page,
    the URL its actions post to, the URLs of the plugin's assets and pages, a CSRF token, the
    field types forms may use (``plugin:field-id`` -> view), the plugin that drew the surface
    (an overlay names it; a bare ``widget`` id is its own field type), and ``sign``, which
    gives each action the host renders its signature (``""``: none)."""

    id_prefix: str
    action_url: str
    csrf: str = ""
    asset_url: Callable[[str], str] = lambda path: ""
    page_url: Callable[[str], str] = lambda page: ""
    close_url: str = ""
    field_types: Mapping[str, FieldTypeView] = field(default_factory=dict)
    plugin: str = ""
    sign: Callable[[str, Mapping[str, Any]], str] = lambda action, payload: ""

    def markdown(self, source: str) -> Markup:
        return render_markdown(source)

    def chart(self, chart: Mapping[str, Any], path: str) -> Markup:
        from plugport.host.ui.charts import render_chart

        return render_chart(chart, id_prefix=f"{self.id_prefix}-{path}")

    def field_type(self, widget: str) -> FieldTypeView | None:
        if ":" not in widget and self.plugin:
            widget = f"{self.plugin}:{widget}"
        return self.field_types.get(widget)

    def widget_name(self, widget: str) -> str:
        """The field type a ``widget`` names, spelled out for a note about it."""
        return widget if ":" in widget or not self.plugin else f"{self.plugin}:{widget}"

    @staticmethod
    def json(value: Any) -> str:
        return json.dumps(value, separators=(",", ":"), sort_keys=True)

    @staticmethod
    def number(value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return str(value)
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        if isinstance(value, float) and not value.is_integer():
            return f"{value:,.2f}".rstrip("0").rstrip(".")
        return f"{int(value):,}"

    @classmethod
    def scalar(cls, value: Any) -> str:
        if value is None:
            return "—"
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, int | float):
            return cls.number(value)
        return str(value)

    @staticmethod
    def width_class(width: int) -> int:
        """The nearest size class at or under ``width`` (no style attributes under the CSP)."""
        return max([w for w in _WIDTHS if w <= width] or [_WIDTHS[0]])


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _module() -> Any:
    return _environment().get_template("components.html").module


def render_tree(tree: Mapping[str, Any], context: RenderContext) -> Markup:
    """The markup of a checked tree."""
    return Markup(str(_module().surface(tree, context)).strip())  # noqa: S704 autoescaped template


def render_failure(kind: str, message: str, plugin: str) -> Markup:
    """The error box a page shows instead of a surface: which plugin, what kind of failure
    (``raised``, ``timeout``, ``invalid``, ``refused``, ``crashed``) and the safe message."""
    markup = _module().failure(kind, message, plugin)
    return Markup(str(markup).strip())  # noqa: S704 autoescaped template


def render_overlay(kind: str, title: str, body: Markup, context: RenderContext) -> Markup:
    """A modal (``kind="modal"``) or side panel around ``body`` (markup the host rendered),
    with its title, the plugin that drew it and a close link to ``context.close_url``."""
    markup = _module().overlay_frame(kind, title, context, body, "o")
    return Markup(str(markup).strip())  # noqa: S704 autoescaped template
