"""Markdown to HTML with the ``markdown`` library the plugin locks (``plugport.lock``). The
text given is already HTML-escaped (``render``): Markdown adds structure (paragraphs, lists,
emphasis, code, links), and raw HTML from an event never survives."""

from __future__ import annotations

import markdown as _markdown

__all__ = ["to_html"]

_EXTENSIONS = ["sane_lists", "nl2br"]


def to_html(escaped: str) -> str:
    return _markdown.markdown(escaped, extensions=_EXTENSIONS, output_format="html")
