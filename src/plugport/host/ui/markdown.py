"""Markdown in a plugin's component tree: the shared renderer, :mod:`plugport._markdown`."""

from __future__ import annotations

from plugport._markdown import render_markdown

__all__ = ["render_markdown"]
