"""``plugport lock``: resolve a plugin's ``[python]`` dependencies with pip's own resolver and
write ``plugport.lock``.

pip does the resolving and downloading (``pip download --only-binary=:all:``), so the index the
author's pip is configured with (its config files, ``PIP_*`` variables, ``--index-url``,
``--extra-index-url``, ``--find-links``) is honoured exactly as pip honours it. Without
``platforms`` only pure-Python wheels are accepted; with them, one resolution per platform, and
every platform must agree on the versions. An existing lock that still matches the manifest
constrains the resolution to its pins (``--upgrade`` lifts that), so locking again on a new
machine downloads the same files, and a file whose hash changed under the same name is refused.

The wheels land in the author's wheel cache (:func:`wheel_cache`), by hash; ``plugport pack``
takes them from there.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name, parse_wheel_filename

from plugport._dirs import write_atomic
from plugport.deps.lockfile import LOCK_FILENAME, Lock, LockedPackage, LockedWheel, load_lock
from plugport.deps.store import sha256_of
from plugport.deps.wheels import check_record, inspect_wheel, wheel_problem
from plugport.errors import DependencyError
from plugport.manifest import Manifest, load_manifest

__all__ = ["IndexOptions", "cached_wheel", "lock_plugin", "wheel_cache"]

_PIP_TIMEOUT_S = 600
_NO_MATCH_RE = re.compile(r"No matching distribution found for (\S+)")


@dataclass(frozen=True)
class IndexOptions:
    """Where pip looks, beyond its own configuration (each maps to pip's option)."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()

    def pip_args(self) -> list[str]:
        args = []
        if self.index_url:
            args += ["--index-url", self.index_url]
        for url in self.extra_index_urls:
            args += ["--extra-index-url", url]
        for link in self.find_links:
            args += ["--find-links", link]
        return args


def wheel_cache() -> Path:
    """The author's wheel cache: ``$PLUGPORT_WHEEL_CACHE``, else ``$XDG_CACHE_HOME`` (or
    ``~/.cache``) ``/plugport/wheels``. Files sit at ``<sha256>/<filename>``."""
    explicit = os.environ.get("PLUGPORT_WHEEL_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "plugport" / "wheels"


def cached_wheel(wheel: LockedWheel, cache: Path | None = None) -> Path:
    """The cached file of a locked wheel, checked against its hash; a missing or altered file
    is a :class:`DependencyError` that says to run ``plugport lock``."""
    path = (cache or wheel_cache()) / wheel.sha256 / wheel.filename
    name = parse_wheel_filename(wheel.filename)[0]
    if not path.is_file():
        raise DependencyError(
            f"{wheel.filename} (locked in {LOCK_FILENAME}) is not in the wheel cache "
            f"{path.parent.parent}; run `plugport lock` to download it",
            package=name,
            file=wheel.filename,
        )
    if sha256_of(path) != wheel.sha256:
        raise DependencyError(
            f"the cached {path} does not have the sha256 {LOCK_FILENAME} names; delete it and "
            "run `plugport lock`",
            package=name,
            file=wheel.filename,
        )
    return path


def lock_plugin(
    root: Path,
    *,
    index: IndexOptions = IndexOptions(),
    upgrade: bool = False,
    cache: Path | None = None,
) -> Lock:
    """Resolve ``root``'s ``[python]`` dependencies, fill the wheel cache and write
    ``plugport.lock`` (atomically; nothing is written when anything fails)."""
    manifest = load_manifest(root)
    python = manifest.python
    if python.requires_python and not SpecifierSet(python.requires_python).contains(
        _running_python(), prereleases=True
    ):
        raise DependencyError(
            f"[python] requires-python is {python.requires_python!r} but this is Python "
            f"{_running_python()}; run plugport lock with a Python the plugin supports"
        )
    cache = cache or wheel_cache()
    previous = None if upgrade else _current_lock(root, manifest)
    packages: dict[str, LockedPackage] = {}
    if python.dependencies:
        with tempfile.TemporaryDirectory(prefix="plugport-lock-") as scratch:
            work = Path(scratch)
            (work / "requirements.txt").write_text("\n".join(python.dependencies) + "\n")
            constraints = work / "constraints.txt"
            pins = [f"{p.name}=={p.version}" for p in previous.packages] if previous else []
            constraints.write_text("\n".join(pins) + "\n")
            targets: list[str | None] = [*python.platforms] or [None]
            for platform in targets:
                found = _download(work, platform, index, constraints)
                _merge(packages, found, platform)
            for package in packages.values():
                _check_against(previous, package)
                for wheel in package.wheels:
                    _cache(work / "downloads" / wheel.filename, wheel, cache)
    lock = Lock.for_inputs(python, packages.values())
    write_atomic(root / LOCK_FILENAME, lock.dumps().encode("utf-8"))
    return lock


def _running_python() -> str:
    return ".".join(map(str, sys.version_info[:3]))


def _current_lock(root: Path, manifest: Manifest) -> Lock | None:
    lock = load_lock(root)
    if lock is None or lock.stale_reasons(manifest):
        return None
    return lock


def _download(
    work: Path, platform: str | None, index: IndexOptions, constraints: Path
) -> list[tuple[str, str, LockedWheel, bool]]:
    """Run pip for one platform (``None``: pure Python only); returns, per downloaded wheel,
    its canonical name, version, locked entry and whether it is pure."""
    dest = work / "downloads"
    before = set(os.listdir(dest)) if dest.is_dir() else set()
    target = work / f"by-{platform or 'any'}"
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "--no-input",
        "--only-binary=:all:",
        "--dest",
        str(target),
        "-r",
        str(work / "requirements.txt"),
        "-c",
        str(constraints),
        *_platform_args(platform),
        *index.pip_args(),
    ]
    env = {**os.environ, "PIP_NO_INPUT": "1"}
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S, env=env, check=False
        )
    except FileNotFoundError:
        raise DependencyError("cannot run pip; install it in this environment") from None
    except subprocess.TimeoutExpired:
        raise DependencyError(
            f"pip did not finish within {_PIP_TIMEOUT_S} s; is the index reachable?"
        ) from None
    if done.returncode != 0:
        raise _pip_failure(done.stdout + done.stderr, platform)
    dest.mkdir(exist_ok=True)
    found = []
    for path in sorted(target.iterdir()):
        problem = wheel_problem(path.name)
        if problem:
            raise DependencyError(problem, file=path.name)
        facts = inspect_wheel(path)
        check_record(path, facts.name)
        if platform is None and not facts.pure:
            compiled = ", ".join(facts.compiled[:3]) or "a platform tag"
            raise DependencyError(
                f"{path.name} has compiled parts ({compiled}); "
                "declare the platforms to lock for in [python] platforms, e.g. "
                "['manylinux_2_28_x86_64']",
                package=facts.name,
                file=path.name,
            )
        if path.name not in before:
            shutil.copyfile(path, dest / path.name)
        wheel = LockedWheel(path.name, sha256_of(path), path.stat().st_size)
        found.append((facts.name, facts.version, wheel, facts.pure))
    return found


def _platform_args(platform: str | None) -> list[str]:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    if platform is None:
        return ["--platform", "any", "--implementation", "py", "--abi", "none",
                "--python-version", version]  # fmt: skip
    return ["--platform", platform, "--implementation", "cp", "--python-version", version]


def _pip_failure(output: str, platform: str | None) -> DependencyError:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line.removeprefix("ERROR: ") for line in lines if line.startswith("ERROR:")]
    where = f"for {platform}" if platform else "as a pure-Python wheel"
    missing = _NO_MATCH_RE.search(output)
    if missing:
        requirement = missing.group(1)
        name = canonicalize_name(re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0])
        return DependencyError(
            f"pip found no wheel of {requirement} {where}: either no release matches, or the "
            "package publishes only a source distribution (refused: only wheels are "
            "reproducible to install). Widen the range, choose a release with wheels, declare "
            "[python] platforms for compiled wheels, or point --index-url at an index that "
            "has them",
            package=name,
        )
    if "ResolutionImpossible" in output or "conflicting dependencies" in output:
        detail = " ".join(lines[-6:])
        return DependencyError(
            f"the [python] dependencies conflict ({detail}); loosen one of the ranges"
        )
    detail = "; ".join(errors[-3:]) or " ".join(lines[-3:]) or "no output"
    return DependencyError(f"pip download failed {where}: {detail}")


def _merge(
    packages: dict[str, LockedPackage],
    found: Sequence[tuple[str, str, LockedWheel, bool]],
    platform: str | None,
) -> None:
    for name, version, wheel, _pure in found:
        known = packages.get(name)
        if known is None:
            packages[name] = LockedPackage(name, version, (wheel,))
        elif known.version != version:
            raise DependencyError(
                f"{name} resolves to {known.version} for one platform and {version} for "
                f"{platform}; pin one version in [python] dependencies",
                package=name,
            )
        elif wheel not in known.wheels:
            wheels = tuple(sorted((*known.wheels, wheel), key=lambda w: w.filename))
            packages[name] = LockedPackage(name, version, wheels)


def _check_against(previous: Lock | None, package: LockedPackage) -> None:
    """A file the index serves under a locked file name must be the locked file."""
    old = previous.package(package.name) if previous else None
    if old is None:
        return
    hashes = {w.filename: w.sha256 for w in old.wheels}
    for wheel in package.wheels:
        if wheel.filename in hashes and hashes[wheel.filename] != wheel.sha256:
            raise DependencyError(
                f"the index now serves {wheel.filename} with sha256 {wheel.sha256[:16]}…, but "
                f"{LOCK_FILENAME} locked {hashes[wheel.filename][:16]}…: the file changed under "
                "the same name. Find out why before trusting it; `plugport lock --upgrade` "
                "locks whatever the index serves now",
                package=package.name,
                file=wheel.filename,
            )


def _cache(source: Path, wheel: LockedWheel, cache: Path) -> None:
    target = cache / wheel.sha256 / wheel.filename
    if target.is_file() and sha256_of(target) == wheel.sha256:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{wheel.filename}.tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)
