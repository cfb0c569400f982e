"""The base class every plugin's entry class derives from."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

__all__ = ["Plugin"]


class Plugin:
    """Subclass this and decorate methods with :func:`hook`, :func:`command` or :func:`on_event`.

    The runtime creates one instance per worker process, sets :attr:`api` (the capability
    proxies the host granted) and :attr:`log`, then calls :meth:`initialize`. Handlers may be
    plain or ``async`` functions.
    """

    name: ClassVar[str] = ""
    api: Any
    log: logging.Logger

    def __init__(self) -> None:
        self.log = logging.getLogger(f"plugport.plugin.{type(self).__name__}")

    def initialize(self) -> None:
        """Called once after activation, before the first hook or command."""

    def cleanup(self) -> None:
        """Called on clean deactivation, with a deadline; release what initialize() took."""
