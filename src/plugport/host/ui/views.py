"""Custom views on disk: which view of an installed plugin may be shown (the plugin enabled, the
view in its manifest, ``custom_view`` among the permissions the operator granted), and reading
its files from the plugin's installed code, each path confined to the view's folder after
symlinks are followed. The rules themselves are in :mod:`._view_rules`."""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from plugport import _web
from plugport.errors import ConflictError, NotFoundError, PlugportError
from plugport.host.ui._view_rules import (
    Bucket,
    ViewTokenError,
    asset_problem,
    assets_folder,
    content_type,
    is_under,
    root_variables,
    take,
)
from plugport.manifest import CustomView, Permissions, load_manifest

if TYPE_CHECKING:
    from plugport.host.host import PluginHost
    from plugport.host.state import Installation

__all__ = [
    "MAX_ASSET_BYTES",
    "CallBudgets",
    "InstalledView",
    "find_view",
    "installed_views",
    "read_asset",
    "read_document",
    "theme_variables",
]

MAX_ASSET_BYTES = 8 * 1024 * 1024
"""The largest file a view may load (an archive's own caps are tighter; a ``plugport dev``
directory has none)."""


@dataclass(frozen=True)
class InstalledView:
    """One view of an installed, enabled plugin that was granted ``custom_view``."""

    plugin: str
    version: str
    code_dir: Path
    view: CustomView

    @property
    def folder(self) -> str:
        """The archive folder its files come from."""
        return assets_folder(self.view.file, self.view.assets)


def _granted_views(host: PluginHost, plugin: str) -> tuple[Installation, list[CustomView], str]:
    """``plugin``'s installation and contributed views, and why none may be shown (``""``:
    they may)."""
    installation = host.state.get(plugin)
    if installation is None:
        raise NotFoundError("installed plugin", plugin)
    try:
        manifest = load_manifest(host.paths.code_dir(installation))
    except PlugportError:  # its code directory is gone or broken: nothing to show
        return installation, [], "its installed files cannot be read"
    views = list(manifest.contributes.views)
    if not installation.enabled:
        return installation, views, "disabled"
    if "custom_view" not in Permissions.model_validate(installation.permissions).ui:
        return installation, views, "not granted"
    return installation, views, ""


def installed_views(host: PluginHost, plugin: str) -> list[CustomView]:
    """The views of ``plugin`` a signed-in user may open now (none when it is disabled or was
    not granted ``custom_view``), in manifest order."""
    _, views, refused = _granted_views(host, plugin)
    return [] if refused else views


def find_view(host: PluginHost, plugin: str, view_id: str) -> InstalledView:
    """View ``view_id`` of ``plugin``, if it may be shown: a plugin not installed or a view it
    does not contribute is :class:`NotFoundError`, a disabled plugin :class:`ConflictError`,
    and a view whose ``custom_view`` permission was not granted :class:`ViewTokenError` (an
    authorization error: 403)."""
    installation, views, refused = _granted_views(host, plugin)
    found = next((v for v in views if v.id == view_id), None)
    if found is None:
        offered = ", ".join(v.id for v in views) or "none"
        raise NotFoundError("custom view", f"{plugin}/{view_id}", f"{plugin} has: {offered}")
    if refused == "disabled":
        raise ConflictError("plugin", plugin, "is disabled; enable it to open its views")
    if refused:
        raise ViewTokenError(
            f"{plugin} was not granted 'custom_view' in permissions.ui, so its views are not shown"
        )
    return InstalledView(plugin, installation.version, host.paths.code_dir(installation), found)


def _confined(code_dir: Path, folder: str, path: str) -> Path:
    """The file archive path ``path`` names, after symlinks, if it lies inside ``folder`` of
    ``code_dir`` (itself after symlinks); else :class:`NotFoundError`."""
    problem = asset_problem(path)
    if problem:
        raise NotFoundError("view file", path, problem)
    root = Path(os.path.realpath(code_dir))
    base = Path(os.path.realpath(root / folder)) if folder else root
    target = Path(os.path.realpath(root / path))
    if not base.is_relative_to(root) or not target.is_relative_to(base):
        raise NotFoundError("view file", path, "it leads outside the view's folder")
    if not target.is_file():
        raise NotFoundError("view file", path)
    if target.stat().st_size > MAX_ASSET_BYTES:
        raise NotFoundError("view file", path, f"it is larger than {MAX_ASSET_BYTES} bytes")
    return target


def read_document(view: InstalledView) -> bytes:
    """The view's HTML file, as the archive has it."""
    return _confined(view.code_dir, "", view.view.file).read_bytes()


def read_asset(view: InstalledView, path: str) -> tuple[bytes, str]:
    """``(content, Content-Type)`` of archive path ``path``: a file of an allowed type inside
    the view's folder, symlinks followed and confined. Anything else is
    :class:`NotFoundError`, saying why."""
    problem = asset_problem(path)
    if problem:
        raise NotFoundError("view file", path, problem)
    if not is_under(view.folder, path):
        raise NotFoundError("view file", path, f"views load files from {view.folder!r} only")
    kind = content_type(path)
    if kind is None:
        raise NotFoundError(
            "view file", path, "a view loads js, css, images, woff2 fonts and json only"
        )
    return _confined(view.code_dir, view.folder, path).read_bytes(), kind


@cache
def _default_variables() -> dict[str, str]:
    return root_variables((_web.STATIC_DIR / "plugport.css").read_text(encoding="utf-8"))


def theme_variables(ws: str) -> dict[str, str]:
    """The host stylesheet's default values (CSS custom property name, without ``--``, to
    value), under which a workspace's theme lays its own (``host/service/views.py``)."""
    del ws  # the same defaults in every workspace
    return dict(_default_variables())


class CallBudgets:
    """Each (user, view)'s bridge-call budget, in memory (one service process serves a
    workspace's pages); the least recently used are forgotten beyond ``max_keys``."""

    def __init__(
        self, *, max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._buckets: OrderedDict[tuple[str, ...], Bucket] = OrderedDict()
        self._lock = threading.Lock()
        self._max_keys = max_keys
        self._clock = clock

    def spend(self, key: tuple[str, ...]) -> float:
        """Seconds to wait before calling again; 0.0 when this call is allowed (and spent)."""
        now = self._clock()
        with self._lock:
            allowed, bucket, wait = take(self._buckets.get(key), now)
            self._buckets[key] = bucket
            self._buckets.move_to_end(key)
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        return 0.0 if allowed else max(wait, 0.001)


IMAGE_TYPES = ("png", "jpg", "jpeg", "gif", "webp", "svg")
"""What a component tree's ``image`` may show from the plugin's archive."""


def read_image(host: PluginHost, plugin: str, path: str) -> tuple[bytes, str]:
    """``(content, Content-Type)`` of an image in enabled plugin ``plugin``'s archive, for a
    component tree's ``image``: an allowed image type, confined to the plugin's code (symlinks
    followed); anything else is :class:`NotFoundError`, saying why."""
    installation = host.state.get(plugin)
    if installation is None or not installation.enabled:
        raise NotFoundError("enabled plugin", plugin)
    _, dot, extension = path.rpartition(".")
    kind = content_type(path)
    if not dot or extension.lower() not in IMAGE_TYPES or kind is None:
        raise NotFoundError("image", path, f"an image is one of: {', '.join(IMAGE_TYPES)}")
    return _confined(host.paths.code_dir(installation), "", path).read_bytes(), kind
