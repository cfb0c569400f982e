"""The ``release-notes`` page. The host asks the handler for the page's tree when someone opens
it, and again with ``action`` set when they use a button or a form on it: ``add`` records the
submitted release (or shows why not, in the form), ``whats-new`` and ``open`` answer with a
side panel over the page, ``remove`` forgets a release. After a change, the plugin invalidates
the page, so others who have it open see it too."""

from __future__ import annotations

from typing import Any

from plugport.sdk import Plugin, UiRequest, page
from release_notes_page.page import ADD, OPEN, REMOVE, WHATS_NEW, panel
from release_notes_page.page import page as tree
from release_notes_page.releases import (
    EntryError,
    Release,
    find,
    newest_first,
    parse_release,
    stored,
)

PAGE = "release-notes"
KEY = "releases"


class ReleaseNotes(Plugin):
    @page(PAGE)
    async def release_notes(self, request: UiRequest) -> Any:
        releases = stored(await self.api.storage.get(KEY))
        if request.action == ADD:
            return await self._add(releases, request.values)
        if request.action in (WHATS_NEW, OPEN):
            return self._open(releases, request)
        if request.action == REMOVE:
            return await self._remove(releases, request.payload.get("version"))
        return tree(releases)

    async def _add(self, releases: list[Release], values: Any) -> Any:
        try:
            release = parse_release(values, releases)
        except EntryError as exc:
            return tree(releases, error=str(exc), error_field=exc.field, typed=values)
        releases = newest_first([release, *releases])
        await self._keep(releases)
        return tree(releases, notice=("ok", f"Recorded {release.version}: {release.title}."))

    def _open(self, releases: list[Release], request: UiRequest) -> Any:
        """The side panel of the latest release (``whats-new``) or the one chosen (``open``)."""
        if request.action == WHATS_NEW:
            if releases:
                return panel(releases[0])
            return tree(releases, notice=("warn", "No release is recorded yet."))
        version = request.values.get("version")
        release = find(releases, version)
        if release is not None:
            return panel(release)
        said = f"No release {version} is recorded." if isinstance(version, str) else ""
        return tree(releases, notice=("warn", said or "Choose a release to open."))

    async def _remove(self, releases: list[Release], version: Any) -> Any:
        gone = find(releases, version)
        if gone is None:
            return tree(releases, notice=("warn", "That release was already removed."))
        left = [r for r in releases if r is not gone]
        await self._keep(left)
        return tree(left, notice=("ok", f"Removed {gone.version}."))

    async def _keep(self, releases: list[Release]) -> None:
        await self.api.storage.set(KEY, [r.json() for r in releases])
        await self.api.ui.invalidate(PAGE)
