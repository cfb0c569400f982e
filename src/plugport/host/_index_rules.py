"""Decisions about a PEP 503/691 package index, without I/O: which URLs may be fetched, what a
project page lists (PEP 691 JSON or PEP 503 HTML), and which wheel of a project to install.

The rule it protects: a plugin comes from an index only as a wheel this interpreter can run,
of the highest version the operator's requirement admits, never a yanked one unless pinned
with ``==``; and every URL on the way is https (plain http only to this machine)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import unquote, urljoin, urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.tags import Tag
from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import Version

from plugport.errors import InvalidInputError, NotFoundError

__all__ = [
    "ACCEPT",
    "JSON_TYPE",
    "IndexFile",
    "IndexRequirement",
    "check_url",
    "choose_wheel",
    "parse_index_requirement",
    "parse_project_page",
    "project_url",
]

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
_HTML_TYPES = ("text/html", "application/vnd.pypi.simple.v1+html")
ACCEPT = f"{JSON_TYPE}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def check_url(url: str, *, what: str) -> str:
    """``url`` if it may be fetched: https, or http to this machine (tests, a local mirror)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname in _LOOPBACK:
        return url
    raise InvalidInputError(
        f"{what} {url!r}: only https is fetched from a package index (plain http only from "
        "127.0.0.1, localhost or ::1)"
    )


def project_url(index_url: str, name: str) -> str:
    """The PEP 503 project page: ``<index>/<normalised name>/`` (``acme.hello`` ->
    ``acme-hello``)."""
    return f"{index_url.rstrip('/')}/{canonicalize_name(name)}/"


@dataclass(frozen=True)
class IndexRequirement:
    """What the operator typed after ``--index-url``: a plugin name (``acme.hello``) or a
    project name (``acme-hello``), with an optional version range."""

    text: str
    project: NormalizedName
    specifier: SpecifierSet

    @property
    def pinned(self) -> bool:
        """``==X`` or ``===X``: the one case in which a yanked file may be chosen (PEP 592)."""
        return any(
            s.operator == "===" or (s.operator == "==" and not s.version.endswith(".*"))
            for s in self.specifier
        )

    @property
    def plugin_name(self) -> str | None:
        """The plugin name typed, when the name has a namespace (``acme.hello``); then the
        wheel's manifest must carry exactly that name."""
        name = re.split(r"[<>=!~ ;\[@]", self.text.strip(), maxsplit=1)[0]
        return name if "." in name else None


def parse_index_requirement(text: str) -> IndexRequirement:
    try:
        requirement = Requirement(text.strip())
    except InvalidRequirement as exc:
        raise InvalidInputError(
            f"{text!r} is not NAME[==VERSION] or NAME with a version range ({exc}); e.g. "
            "acme.hello, acme.hello==1.0.0, 'acme.hello>=1,<2'"
        ) from None
    if requirement.url or requirement.extras or requirement.marker:
        raise InvalidInputError(
            f"{text!r}: give a name and at most a version range (no extras, markers or URLs)"
        )
    return IndexRequirement(
        text.strip(), canonicalize_name(requirement.name), requirement.specifier
    )


@dataclass(frozen=True)
class IndexFile:
    """One file a project page lists."""

    filename: str
    url: str
    sha256: str | None
    yanked: str | None
    """``None``: not yanked; else the reason (possibly empty)."""
    requires_python: str | None = None

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")


def parse_project_page(body: bytes, content_type: str, page_url: str) -> list[IndexFile]:
    """The files of a project page, their URLs made absolute against ``page_url``."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == JSON_TYPE:
        return _from_json(body, page_url)
    if kind in _HTML_TYPES:
        return _from_html(body.decode("utf-8", errors="replace"), page_url)
    raise InvalidInputError(
        f"{page_url} answered with {kind or 'no content type'!r}, neither a PEP 691 JSON nor a "
        "PEP 503 HTML project page; is --index-url the index's /simple/ URL?"
    )


def _from_json(body: bytes, page_url: str) -> list[IndexFile]:
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise InvalidInputError(f"{page_url}: not a PEP 691 JSON page ({exc})") from None
    meta = document.get("meta") if isinstance(document, dict) else None
    version = str(meta.get("api-version", "")) if isinstance(meta, dict) else ""
    if not version.startswith("1."):
        raise InvalidInputError(
            f"{page_url}: PEP 691 api-version {version or 'missing'!r}; this Plugport reads 1.x"
        )
    rows = document.get("files")
    if not isinstance(rows, list):
        raise InvalidInputError(f"{page_url}: a PEP 691 page without a files list")
    files = []
    for row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("filename"), str):
            continue
        if not isinstance(row.get("url"), str):
            continue
        hashes = row.get("hashes")
        if not isinstance(hashes, dict):
            hashes = {}
        yanked = row.get("yanked", False)
        requires = row.get("requires-python")
        files.append(
            IndexFile(
                filename=row["filename"],
                url=urljoin(page_url, row["url"]),
                sha256=_sha256(hashes.get("sha256")),
                yanked=(yanked if isinstance(yanked, str) else "") if yanked else None,
                requires_python=requires if isinstance(requires, str) else None,
            )
        )
    return files


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.anchors.append(dict(attrs))


def _from_html(text: str, page_url: str) -> list[IndexFile]:
    parser = _Anchors()
    parser.feed(text)
    parser.close()
    files = []
    for anchor in parser.anchors:
        href = anchor.get("href")
        if not href:
            continue
        url, _, fragment = urljoin(page_url, href).partition("#")
        filename = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
        algorithm, _, digest = fragment.partition("=")
        files.append(
            IndexFile(
                filename=filename,
                url=url,
                sha256=_sha256(digest) if algorithm == "sha256" else None,
                yanked=(anchor["data-yanked"] or "") if "data-yanked" in anchor else None,
                requires_python=anchor.get("data-requires-python"),
            )
        )
    return files


def _sha256(value: object) -> str | None:
    if isinstance(value, str) and _SHA256_RE.match(value.lower()):
        return value.lower()
    return None


@dataclass(frozen=True)
class _Wheel:
    file: IndexFile
    version: Version
    tags: frozenset[Tag]


def choose_wheel(
    files: Sequence[IndexFile],
    requirement: IndexRequirement,
    *,
    tags: Sequence[Tag],
    python_version: str,
    page_url: str,
) -> IndexFile:
    """The wheel to install: the highest version ``requirement`` admits among the project's
    wheels this interpreter runs (``tags``: most specific first; ``python_version``: against
    ``requires-python``), yanked ones only when pinned; among that version's wheels, the one
    with the most specific tag. A refusal lists what the page has and why none fits."""
    wheels = _project_wheels(files, requirement.project)
    if not wheels:
        others = sorted({f.filename for f in files})
        listed = f" (it lists only {', '.join(others[:5])})" if others else ""
        raise NotFoundError(
            "plugin wheel",
            requirement.text,
            f"{page_url} has no wheel of {requirement.project}{listed}",
        )
    versions = sorted({w.version for w in wheels}, reverse=True)
    admitted = set(requirement.specifier.filter(versions))
    if not admitted:
        raise NotFoundError(
            "version",
            requirement.text,
            f"{page_url} has {', '.join(map(str, versions))}",
        )
    ranked = {tag: rank for rank, tag in enumerate(tags)}
    why: dict[Version, set[str]] = {}
    for version in versions:
        if version not in admitted:
            continue
        fitting = []
        for wheel in (w for w in wheels if w.version == version):
            reason = _unfit(wheel, requirement, ranked, python_version)
            if reason:
                why.setdefault(version, set()).add(reason)
            else:
                fitting.append(wheel)
        if fitting:
            best = min(fitting, key=lambda w: min(ranked[t] for t in w.tags if t in ranked))
            return best.file
    details = "; ".join(f"{v}: {', '.join(sorted(why[v]))}" for v in sorted(why, reverse=True))
    if tags and "no tag this Python runs" in details:
        details += f" (this Python's most specific tag is {tags[0]})"
    raise NotFoundError("installable wheel", requirement.text, f"at {page_url}, {details}")


def _project_wheels(files: Sequence[IndexFile], project: NormalizedName) -> list[_Wheel]:
    found = []
    for file in files:
        if not file.is_wheel:
            continue
        try:
            name, version, _, tags = parse_wheel_filename(file.filename)
        except InvalidWheelFilename:
            continue
        if name == project:
            found.append(_Wheel(file, version, tags))
    return found


def _unfit(
    wheel: _Wheel,
    requirement: IndexRequirement,
    ranked: dict[Tag, int],
    python_version: str,
) -> str | None:
    if wheel.file.yanked is not None and not requirement.pinned:
        reason = f" ({wheel.file.yanked})" if wheel.file.yanked else ""
        return f"yanked{reason}: pin it with =={wheel.version} to install it anyway"
    if wheel.file.requires_python:
        try:
            allowed = SpecifierSet(wheel.file.requires_python)
        except ValueError:
            return f"{wheel.file.filename} has an unreadable requires-python"
        if not allowed.contains(python_version, prereleases=True):
            return f"{wheel.file.filename} requires Python {wheel.file.requires_python}"
    if not any(tag in ranked for tag in wheel.tags):
        shown = ", ".join(sorted(str(t) for t in wheel.tags))
        return f"{wheel.file.filename} has no tag this Python runs ({shown})"
    return None
