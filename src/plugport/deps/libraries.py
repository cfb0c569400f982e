"""A plugin's libraries on a host: its locked wheels installed into the shared :class:`WheelStore`
and the import path built from its lock, plus collecting the entries no plugin needs.

Used by the host's installer (wheels from the signed archive), ``plugport dev`` and
``plugport.testing`` (wheels from the author's wheel cache, into a development store).
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.tags import Tag, sys_tags

from plugport.deps.lockfile import LOCK_FILENAME, WHEELS_DIR, Lock, LockedWheel, load_lock
from plugport.deps.store import WheelStore
from plugport.errors import DependencyError
from plugport.manifest import Manifest

__all__ = [
    "PluginLibraries",
    "archive_wheels",
    "development_libraries",
    "development_store",
    "development_wheels",
    "running_tags",
]


_INSTALL_THREADS = 4


@functools.cache
def running_tags() -> tuple[Tag, ...]:
    """This interpreter's wheel tags, most specific first (computed once: it takes ms)."""
    return tuple(sys_tags())


def archive_wheels(code_dir: Path) -> Callable[[LockedWheel], Path]:
    """Where an unpacked archive keeps its locked wheels."""

    def find(wheel: LockedWheel) -> Path:
        path = code_dir / WHEELS_DIR / wheel.filename
        if not path.is_file():
            raise DependencyError(
                f"the archive has no {wheel.member}, which {LOCK_FILENAME} names; it was not "
                "packed by `plugport pack`, so it cannot be installed",
                package=wheel.filename.split("-", 1)[0],
                file=wheel.member,
            )
        return path

    return find


def development_wheels(code_dir: Path) -> Callable[[LockedWheel], Path]:
    """Where a plugin's source directory gets its locked wheels: a ``wheels/`` beside the lock
    if it has one, else the author's wheel cache (filled by ``plugport lock``)."""
    from plugport.deps.locker import cached_wheel

    in_tree = archive_wheels(code_dir)

    def find(wheel: LockedWheel) -> Path:
        if (code_dir / WHEELS_DIR / wheel.filename).is_file():
            return in_tree(wheel)
        return cached_wheel(wheel)

    return find


def development_store() -> Path:
    """The store ``plugport dev`` and ``plugport.testing`` install authors' locks into: beside
    the wheel cache, kept between runs (a cache: nothing collects it; delete it at will)."""
    from plugport.deps.locker import wheel_cache

    return wheel_cache().parent / "dev-store"


def development_libraries(
    source: Path, manifest: Manifest, code_dir: Path | None = None
) -> Callable[[], tuple[Path, ...]] | None:
    """Install the lock of the plugin at ``source`` into the development store and return
    what gives its import path (``code_dir``: where its code runs from, default ``source``);
    ``None`` when it has no libraries. A missing or stale lock is refused, saying why."""
    lock = load_lock(source)
    if lock is None and not manifest.python.dependencies:
        return None
    reasons = ["there is none"] if lock is None else lock.stale_reasons(manifest)
    if reasons:
        raise DependencyError(
            f"{source / LOCK_FILENAME} does not match [python] in plugport.toml: "
            f"{'; '.join(reasons)}; run `plugport lock`",
            file=LOCK_FILENAME,
        )
    libraries = PluginLibraries(WheelStore(development_store()))
    if not libraries.install(source, manifest, development_wheels(source)):
        return None
    libraries.compile_later(source, manifest)
    return functools.partial(libraries.import_paths, code_dir or source, manifest)


class PluginLibraries:
    def __init__(self, store: WheelStore) -> None:
        self.store = store

    def chosen(self, code_dir: Path, manifest: Manifest) -> list[LockedWheel]:
        """The wheels of ``code_dir``'s lock this host runs (none without a lock); refuses a
        plugin this Python or platform cannot run, naming the package."""
        lock = load_lock(code_dir)
        if lock is None:
            return []
        python = manifest.python.requires_python
        running = ".".join(map(str, sys.version_info[:3]))
        if python and not SpecifierSet(python).contains(running, prereleases=True):
            raise DependencyError(
                f"{manifest.name} {manifest.version} needs Python {python} "
                f"([python] requires-python) and this host runs {running}"
            )
        return lock.select(running_tags(), plugin=f"{manifest.name} {manifest.version}")

    def install(
        self, code_dir: Path, manifest: Manifest, wheels_from: Callable[[LockedWheel], Path]
    ) -> list[LockedWheel]:
        """Put every wheel this host needs from ``code_dir``'s lock into the store (hash
        checked against the lock, an existing intact entry reused). On failure the entries
        this call created are removed again, unless ``keep`` later claims them."""
        wheels = self.chosen(code_dir, manifest)
        before = set(self.store.entries())
        try:
            sources = [wheels_from(wheel) for wheel in wheels]  # all present, before any work
            if len(wheels) > 1:
                # Mostly file creation, which releases the GIL: the wheels install side by
                # side. Every one finishes (or fails) before this returns or raises.
                with ThreadPoolExecutor(min(len(wheels), _INSTALL_THREADS)) as pool:
                    list(pool.map(self.store.add, sources, wheels))
            else:
                for source, wheel in zip(sources, wheels, strict=True):
                    self.store.add(source, wheel)
        except BaseException:
            created = set(self.store.entries()) - before
            self.store.collect(set(self.store.entries()) - created)
            raise
        return wheels

    def compile_later(self, code_dir: Path, manifest: Manifest) -> None:
        """Byte-compile the plugin's store entries in the background (once it is installed:
        off the install's path, so the compile does not compete with its activation)."""
        with contextlib.suppress(DependencyError):
            self.store.compile_later(self.chosen(code_dir, manifest))

    def import_paths(self, code_dir: Path, manifest: Manifest) -> tuple[Path, ...]:
        """The store entries to put on the plugin's ``sys.path``, each checked to hold the
        wheel its lock names."""
        return tuple(map(Path, self.store.import_paths(self.chosen(code_dir, manifest))))

    @staticmethod
    def needed(code_dirs: Iterable[Path]) -> set[str]:
        """Every wheel hash the locks in ``code_dirs`` name (all platforms: a superset)."""
        hashes: set[str] = set()
        for code_dir in code_dirs:
            try:
                lock: Lock | None = load_lock(code_dir)
            except DependencyError:
                continue
            if lock is not None:
                hashes.update(wheel.sha256 for wheel in lock.wheels())
        return hashes

    def collect(self, code_dirs: Iterable[Path], *, keep: Iterable[str] = ()) -> list[str]:
        """Remove the store entries no lock in ``code_dirs`` (nor ``keep``) names."""
        return self.store.collect(self.needed(code_dirs) | set(keep))
