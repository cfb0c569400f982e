"""Microsoft Teams: Plugport notifications as Adaptive Cards through an incoming webhook."""

from teams_plugin.plugin import TeamsPlugin

__all__ = ["TeamsPlugin"]
