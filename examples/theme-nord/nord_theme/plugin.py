"""A theme plugin has nothing to run: the host reads the theme's tokens from ``plugport.toml``
([[contributes.themes]]), checks their contrast and turns them into CSS itself. The class is
here because every plugin has an entry point; it is never activated for the theme."""

from plugport.sdk import Plugin


class NordTheme(Plugin):
    """The Nord palette, light and dark."""
