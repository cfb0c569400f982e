"""Sentry alerts to tickets: Jira or Linear issues from Sentry's integration-platform webhooks."""

from sentry_plugin.plugin import SentryPlugin

__all__ = ["SentryPlugin"]
