"""A page of release notes: the latest release, the history, and a form to record one."""

from release_notes_page.plugin import ReleaseNotes

__all__ = ["ReleaseNotes"]
