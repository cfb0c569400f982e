"""``plugport dev``: run a plugin from its source directory in the production sandbox, reload
it on every good change, stream what it does, and serve a local page to call it.

The parts: ``_watch_rules`` (which file events count, pure), ``_problems`` (errors pointed at a
file and line, pure), ``_source`` (manifest, syntax, settings file, staged code), ``_session``
(the plugin under a real Supervisor), ``_stream`` (the terminal or JSON lines), ``_page`` (the
local page) and ``_runner`` (the process: watcher, signals, shutdown)."""

from __future__ import annotations

from plugport.dev._runner import EXIT_FORCED, run_dev
from plugport.dev._session import DevOptions, DevSession, DevStartError
from plugport.dev._stream import Stream

__all__ = ["EXIT_FORCED", "DevOptions", "DevSession", "DevStartError", "Stream", "run_dev"]
