"""Jira: create, transition and search Jira Cloud issues through the host's network broker."""

from jira_plugin.plugin import JiraPlugin

__all__ = ["JiraPlugin"]
