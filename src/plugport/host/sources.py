"""Where a plugin comes from, decided from the text an operator typed, without I/O:
a registry requirement (``acme.hello``, ``acme.hello==1.2.0``, ``"acme.hello>=1,<2"``), an
https URL of an archive, a local ``.plugport`` file, a local directory (development mode), or,
given a package index URL, a plugin wheel on that index."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from plugport.errors import InvalidInputError
from plugport.host.resolver import Requirement, parse_requirement

__all__ = ["ARCHIVE_SUFFIX", "Source", "parse_source"]

ARCHIVE_SUFFIX = ".plugport"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class Source:
    kind: Literal["registry", "url", "file", "dev", "index"]
    text: str
    requirement: Requirement | None = None
    path: Path | None = None
    index_url: str | None = None
    """For ``index``: the PEP 503/691 index ``text`` (a name, maybe with a range) is on."""


def parse_source(text: str, *, is_file: bool, is_dir: bool, index_url: str | None = None) -> Source:
    """``is_file``/``is_dir`` say what ``text`` names on disk (the caller looked). With
    ``index_url``, a name (``acme.hello``, ``acme-hello==1.0``) is a plugin wheel on that
    package index instead of a registry requirement; URLs, files and directories stay what
    they are."""
    stripped = text.strip()
    if not stripped:
        raise InvalidInputError("an empty plugin to install; give a name, a URL or a path")
    if index_url is not None and "://" not in stripped and not is_dir and not is_file:
        if "/" in stripped or stripped.startswith("."):
            raise InvalidInputError(f"{stripped}: no such file or directory")
        return Source("index", stripped, index_url=index_url)
    if "://" in stripped:
        parts = urlsplit(stripped)
        local_http = parts.scheme == "http" and parts.hostname in _LOOPBACK
        if parts.scheme != "https" and not local_http:
            raise InvalidInputError(
                f"{stripped!r}: only https URLs are installed from (http only on this machine)"
            )
        if not parts.path.endswith(ARCHIVE_SUFFIX):
            raise InvalidInputError(f"{stripped!r}: a URL must name a {ARCHIVE_SUFFIX} archive")
        return Source("url", stripped)
    if is_dir:
        return Source("dev", stripped, path=Path(stripped))
    if is_file:
        return Source("file", stripped, path=Path(stripped))
    looks_like_path = "/" in stripped or stripped.startswith(".")
    if stripped.endswith(ARCHIVE_SUFFIX) and looks_like_path:
        raise InvalidInputError(f"{stripped}: no such archive")
    if stripped.endswith(ARCHIVE_SUFFIX):  # 'acme.plugport' may be a plugin's name
        try:
            return Source("registry", stripped, requirement=parse_requirement(stripped))
        except InvalidInputError:
            raise InvalidInputError(f"{stripped}: no such archive") from None
    return Source("registry", stripped, requirement=parse_requirement(stripped))
