"""GitHub: a Plugport example integration (webhooks in, notifications out, REST calls back)."""

from github_plugin.plugin import GitHubPlugin

__all__ = ["GitHubPlugin"]
