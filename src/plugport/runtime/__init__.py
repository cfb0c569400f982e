"""Sandboxed execution of plugins: one worker process per plugin, reached over a checked channel."""
