"""Every error the API returns has one JSON shape, ``{"error": {"code", "message",
"details"}}``, and the status that tells a client what to do next (the shape and the mapping
live in :mod:`plugport._api_errors`, which the host service shares)."""

from __future__ import annotations

from plugport._api_errors import error_body, install_error_handlers, status_for

__all__ = ["error_body", "install_error_handlers", "status_for"]
