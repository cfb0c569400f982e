"""GitLab for Plugport: merge requests and pushes announced on ``notify.gitlab``, comments on
merge requests."""

from gitlab_plugin.plugin import GitLabPlugin

__all__ = ["GitLabPlugin"]
