"""The host's UI extensions: component trees rendered with the host's own templates."""

from pathlib import Path

__all__ = ["UI_STATIC_DIR", "UI_STATIC_PATH"]

UI_STATIC_DIR = Path(__file__).parent / "static"
"""The components' stylesheets (charts, components) and the renderer's script."""
UI_STATIC_PATH = "/host-service/ui"
