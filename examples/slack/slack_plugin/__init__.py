"""Slack: Plugport notifications as Block Kit messages, and the /plugport slash command."""

from slack_plugin.plugin import SlackPlugin

__all__ = ["SlackPlugin"]
