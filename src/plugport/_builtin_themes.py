"""The host's own themes, as the same design tokens a plugin contributes: ``Plugport light`` is
what the shared stylesheet (``_web/static/plugport.css``) draws with no theme at all, and
``Plugport dark`` its dark counterpart. They pass the same contrast checks as any plugin's
(:mod:`plugport._theme_rules`); a test keeps the light one equal to the stylesheet's colours.

Apart from :mod:`plugport._theme_rules` because they are :class:`~plugport.manifest.Theme`
objects, and the manifest imports the rules to check plugins' themes."""

from __future__ import annotations

from plugport.manifest import Theme, ThemeColors

__all__ = ["BUILTIN_NAMESPACE", "BUILTIN_THEMES", "PLUGPORT_DARK", "PLUGPORT_LIGHT"]

BUILTIN_NAMESPACE = "plugport"
"""Built-in themes are ``plugport:<id>``; a plugin's are ``<plugin name>:<id>``, and a plugin
name always has a dot, so the two never meet."""

PLUGPORT_LIGHT = Theme(
    id="light",
    title="Plugport light",
    light=ThemeColors(
        bg="#f7f8fa",
        surface="#ffffff",
        text="#16181d",
        muted="#4a5160",
        border="#c9ced8",
        accent="#1f4fd1",
        ok="#126b34",
        warn="#7a4b00",
        bad="#a4161a",
    ),
)
PLUGPORT_DARK = Theme(
    id="dark",
    title="Plugport dark",
    dark=ThemeColors(
        bg="#0f1217",
        surface="#171b22",
        text="#e6e9ef",
        muted="#a9b1bf",
        border="#343b47",
        accent="#8ab4ff",
        ok="#5fd38d",
        warn="#f0b45a",
        bad="#ff8a8a",
    ),
)
BUILTIN_THEMES = {
    f"{BUILTIN_NAMESPACE}:{theme.id}": theme for theme in (PLUGPORT_LIGHT, PLUGPORT_DARK)
}
"""Theme key -> theme, in the order a picker lists them."""
