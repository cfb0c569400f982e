"""Markdown from a plugin (its component trees in the host's UI, its README and changelog in
the marketplace), as HTML that cannot run or load anything: CommonMark without raw HTML
(markdown-it-py), then an allow-list sanitiser (nh3, Ammonia) that keeps only text formatting
and http(s)/mailto links, so a bug in one layer is caught by the other. Both libraries come with
the ``server`` extra."""

from __future__ import annotations

from functools import cache
from typing import Any

from markupsafe import Markup

__all__ = ["render_markdown"]

_TAGS = {
    "a", "blockquote", "br", "code", "del", "em", "h2", "h3", "h4", "h5", "h6", "hr", "li",
    "ol", "p", "pre", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
_ATTRIBUTES = {"a": {"href", "title"}, "td": {"align"}, "th": {"align"}}


@cache
def _parser() -> Any:
    from markdown_it import MarkdownIt

    # html=False: raw HTML in the source is shown as text, never passed through.
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def render_markdown(source: str) -> Markup:
    import nh3

    html = _parser().render(source)
    # Headings shift down one level: a surface's own title is the h2 of its tile or page.
    html = html.replace("<h1>", "<h2>").replace("</h1>", "</h2>")
    clean = nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return Markup(clean)  # noqa: S704 sanitised above by an allow-list
