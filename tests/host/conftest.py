"""The host's tests run against a real registry: the same fixtures as the registry's tests."""

from __future__ import annotations

from tests.registry.conftest import engine, registry

__all__ = ["engine", "registry"]
