"""The Nord theme: design tokens in plugport.toml; no code runs for it."""

from nord_theme.plugin import NordTheme

__all__ = ["NordTheme"]
