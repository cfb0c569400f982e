"""Linear: create issues, comment and list teams through Linear's GraphQL API."""

from linear_plugin.plugin import LinearPlugin

__all__ = ["LinearPlugin"]
