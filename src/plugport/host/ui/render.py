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

__all__ = ["FieldTypeView", "RenderContext", "render_tree"]

TEMPLATE_DIR = Path(__file__).parent / "templates"
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
    the URL its actions post to, the URLs of the plugin's assets and pages, a CSRF token, and
    the field types forms may use."""

    id_prefix: str
    action_url: str
    csrf: str = ""
    asset_url: Callable[[str], str] = lambda path: ""
    page_url: Callable[[str], str] = lambda page: ""
    close_url: str = ""
    field_types: Mapping[str, FieldTypeView] = field(default_factory=dict)

    def markdown(self, source: str) -> Markup:
        return render_markdown(source)

    def chart(self, chart: Mapping[str, Any], path: str) -> Markup:
        from plugport.host.ui.charts import render_chart

        return render_chart(chart, id_prefix=f"{self.id_prefix}-{path}")

    def field_type(self, widget: str) -> FieldTypeView | None:
        return self.field_types.get(widget)

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


def render_tree(tree: Mapping[str, Any], context: RenderContext) -> Markup:
    """The markup of a checked tree."""
    template = _environment().get_template("components.html")
    module: Any = template.module
    return Markup(str(module.surface(tree, context)).strip())  # noqa: S704 autoescaped template
