"""What a plugin may show in the marketplace: its icon (PNG or SVG), screenshots (PNG), README
and changelog (Markdown), each checked from its bytes alone, here, with no I/O.

The rule this module protects: the registry serves only files it has checked. A PNG is
recognised by its signature and IHDR chunk (never by its name) and limited in bytes and
pixels; an SVG is *refused*, not rewritten, when it carries anything that can run or load:
scripts, event handlers, ``javascript:`` URLs, references to anything but its own
``#fragments`` or ``data:image/png``, ``<foreignObject>``, a DOCTYPE (so no entities, and no
billion laughs), processing instructions; so what is served is byte for byte what the author
signed. Markdown must be UTF-8 and is rendered later through :mod:`plugport._markdown`.
"""

from __future__ import annotations

import re
import struct
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from plugport.errors import Problem

__all__ = [
    "CHANGELOG_DEFAULTS",
    "MAX_ICON_BYTES",
    "MAX_ICON_PIXELS",
    "MAX_SCREENSHOTS",
    "MAX_SCREENSHOT_BYTES",
    "MAX_SCREENSHOT_PIXELS",
    "MAX_TEXT_BYTES",
    "MIN_ICON_PIXELS",
    "README_DEFAULTS",
    "CheckedFile",
    "ContentKind",
    "check_content",
    "check_file",
    "content_paths",
    "png_dimensions",
    "svg_problem",
]

MAX_SCREENSHOTS = 6
MAX_ICON_BYTES = 256 * 1024
MIN_ICON_PIXELS = 16
MAX_ICON_PIXELS = 1024  # each side
MAX_SCREENSHOT_BYTES = 2 * 1024 * 1024
MAX_SCREENSHOT_PIXELS = 3840  # each side: a 4K screen
MAX_TEXT_BYTES = 256 * 1024
README_DEFAULTS = ("README.md", "readme.md", "README.markdown", "README")
CHANGELOG_DEFAULTS = ("CHANGELOG.md", "changelog.md", "CHANGES.md", "CHANGELOG")

ContentKind = Literal["icon", "screenshot", "readme", "changelog"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SVG_NS = "http://www.w3.org/2000/svg"
_XLINK_NS = "http://www.w3.org/1999/xlink"
_FORBIDDEN_ELEMENTS = {
    "script": "a <script> element",
    "foreignobject": "a <foreignObject> element (HTML inside the image)",
    "handler": "a <handler> element (script)",
    "listener": "a <listener> element (script)",
    "iframe": "an <iframe> element",
    "embed": "an <embed> element",
    "object": "an <object> element",
    "audio": "an <audio> element",
    "video": "a <video> element",
}
_ANIMATIONS = {"animate", "set", "animatetransform", "animatemotion", "discard"}
_URL_ATTRIBUTES = {"href", "src"}
# url(...) in styles and presentation attributes: only to this image's own fragments.
_CSS_URL = re.compile(r"url\s*\(\s*(['\"]?)(.*?)\1\s*\)", re.IGNORECASE | re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x20]+")
_DATA_PNG = re.compile(r"^data:image/png;base64,[A-Za-z0-9+/=\s]*$", re.IGNORECASE)
_LENGTH = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(px)?\s*$")


@dataclass(frozen=True)
class CheckedFile:
    """A file of the plugin that may be shown: what it is, where it is in the archive, its
    media type and, for images, its size in pixels (``None`` for an SVG without one)."""

    kind: ContentKind
    path: str
    media_type: str
    width: int | None = None
    height: int | None = None


def png_dimensions(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk, which must come first; ``ValueError``
    saying what is wrong otherwise."""
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError("is not a PNG (it does not start with the PNG signature)")
    if len(data) < 33:
        raise ValueError("is a truncated PNG (no complete IHDR chunk)")
    length, chunk = struct.unpack(">I4s", data[8:16])
    if chunk != b"IHDR" or length != 13:
        raise ValueError("is not a valid PNG (its first chunk is not a 13-byte IHDR)")
    width, height = struct.unpack(">II", data[16:24])
    if width == 0 or height == 0:
        raise ValueError(f"is a PNG of {width}x{height} pixels; a PNG has at least 1x1")
    return width, height


def _png_problem(data: bytes, *, min_px: int, max_px: int) -> tuple[str | None, int, int]:
    try:
        width, height = png_dimensions(data)
    except ValueError as exc:
        return str(exc), 0, 0
    if not (min_px <= width <= max_px and min_px <= height <= max_px):
        return (
            f"is {width}x{height} pixels; each side must be {min_px} to {max_px} pixels",
            width,
            height,
        )
    return None, width, height


def _url_problem(value: str) -> str | None:
    """Where a reference may point: this image's own ``#fragment``, or an embedded PNG."""
    bare = _CONTROL.sub("", value)
    if bare.startswith("#") or _DATA_PNG.match(value.strip()):
        return None
    return f"a reference to {value[:80]!r} (only '#fragment' or data:image/png is allowed)"


def _style_problem(text: str) -> str | None:
    bare = _CONTROL.sub("", text).lower()
    if "javascript:" in bare:
        return "a javascript: URL in a style"
    if "@import" in bare:
        return "an @import in a style (it loads another file)"
    if "expression(" in bare:
        return "a CSS expression() in a style"
    for match in _CSS_URL.finditer(text):
        problem = _url_problem(match.group(2))
        if problem:
            return f"{problem} in a style's url()"
    return None


def _local(name: str) -> tuple[str, str]:
    """``{namespace}local`` -> (namespace, local name)."""
    if name.startswith("{"):
        namespace, _, local = name[1:].partition("}")
        return namespace, local
    return "", name


def _attribute_problem(element: str, name: str, value: str) -> str | None:
    namespace, local = _local(name)
    lowered = local.lower()
    if lowered.startswith("on"):
        return f"an event handler attribute {local}= on <{element}>"
    if lowered in _URL_ATTRIBUTES and namespace in ("", _XLINK_NS):
        problem = _url_problem(value)
        return f"{problem} in {local}= on <{element}>" if problem else None
    if "javascript:" in _CONTROL.sub("", value).lower():
        return f"a javascript: URL in {local}= on <{element}>"
    target = value.strip().lower()
    if (
        lowered == "attributename"
        and element.lower() in _ANIMATIONS
        and (target.split(":")[-1] in _URL_ATTRIBUTES or target.startswith("on"))
    ):
        return f"an animation (<{element}>) that changes {value}= (it could make a link run script)"
    if "url(" in value.lower() or lowered == "style":
        return _style_problem(value)
    return None


def _element_problem(node: ET.Element) -> str | None:
    namespace, local = _local(node.tag)
    if namespace != _SVG_NS:
        return f"an element from another vocabulary, <{local}> in {namespace or 'none'}"
    found = _FORBIDDEN_ELEMENTS.get(local.lower())
    if found:
        return found
    if local.lower() == "style":
        problem = _style_problem(node.text or "")
        if problem:
            return problem
    for name, value in node.attrib.items():
        problem = _attribute_problem(local, name, value)
        if problem:
            return problem
    return None


def _root_problem(root: ET.Element, max_px: int) -> str | None:
    namespace, local = _local(root.tag)
    if (namespace, local) != (_SVG_NS, "svg"):
        where = f" in {namespace}" if namespace else ""
        return f"is not an SVG image (its root element is <{local}>{where}, not <svg> in {_SVG_NS})"
    return _svg_size_problem(root, max_px)


def svg_problem(data: bytes, *, max_px: int = MAX_ICON_PIXELS) -> str | None:  # noqa: PLR0911 one return per rule, each naming what it found
    """What makes ``data`` unsafe or unusable as an icon (``None``: it may be served as it is)."""
    if b"<!doctype" in data.lower() or b"<!entity" in data.lower():
        return "has a DOCTYPE (entities and external DTDs are not allowed in an icon)"
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start", "pi"))
    try:
        parser.feed(data)
        parser.close()
        events = [(event[0], event[-1]) for event in parser.read_events()]
    except ET.ParseError as exc:
        return f"is not well-formed XML ({exc})"
    if any(event == "pi" for event, _ in events):
        return "has a processing instruction (it could load a stylesheet)"
    elements = [node for _, node in events if isinstance(node, ET.Element)]
    if not elements:
        return "is not an SVG image (no elements)"
    problem = _root_problem(elements[0], max_px)
    if problem:
        return problem
    for node in elements:
        problem = _element_problem(node)
        if problem:
            return f"has {problem}"
    return None


def _svg_size_problem(root: ET.Element, max_px: int) -> str | None:
    for side in ("width", "height"):
        match = _LENGTH.match(root.get(side, ""))
        if match and float(match.group(1)) > max_px:
            return f"has {side}={root.get(side)!r}; each side may be at most {max_px} pixels"
    return None


def check_file(kind: ContentKind, path: str, data: bytes) -> CheckedFile | Problem:
    """Decide one file named by the manifest (``kind`` says which field): the checked file, or
    a problem naming the field, the file and what was found."""
    field = {"screenshot": "screenshots"}.get(kind, kind)
    found: CheckedFile | str | None = None
    if kind in ("readme", "changelog"):
        found = _text_file(kind, path, data)
    if found is None and kind in ("icon", "screenshot"):
        found = _image_file(kind, path, data)
    if isinstance(found, str):
        return Problem(field, f"{path} {found}", path)
    return found or CheckedFile(kind, path, "text/markdown; charset=utf-8")


def _text_file(kind: ContentKind, path: str, data: bytes) -> str | None:
    if len(data) > MAX_TEXT_BYTES:
        return f"is {len(data)} bytes; at most {MAX_TEXT_BYTES} are shown"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"is not UTF-8 text (byte {exc.start})"
    return None


def _image_file(kind: ContentKind, path: str, data: bytes) -> CheckedFile | str:
    limit = MAX_ICON_BYTES if kind == "icon" else MAX_SCREENSHOT_BYTES
    if len(data) > limit:
        return f"is {len(data)} bytes; an {kind} may be at most {limit} bytes"
    if kind == "icon" and path.lower().endswith(".svg"):
        return svg_problem(data) or CheckedFile(kind, path, "image/svg+xml")
    if kind == "icon":
        found, width, height = _png_problem(data, min_px=MIN_ICON_PIXELS, max_px=MAX_ICON_PIXELS)
    else:
        found, width, height = _png_problem(data, min_px=1, max_px=MAX_SCREENSHOT_PIXELS)
    if found:
        allowed = "a PNG or an SVG (.svg)" if kind == "icon" else "a PNG"
        return f"{found}; an {kind} must be {allowed}"
    return CheckedFile(kind, path, "image/png", width, height)


def content_paths(
    readme: str | None,
    changelog: str | None,
    icon: str | None,
    screenshots: list[str],
    members: Mapping[str, object] | frozenset[str] | set[str],
) -> list[tuple[ContentKind, str]]:
    """The files to show, in order: what the manifest names, and a top-level README.md or
    CHANGELOG.md when it names none."""
    wanted: list[tuple[ContentKind, str]] = []
    if icon:
        wanted.append(("icon", icon))
    wanted += [("screenshot", path) for path in screenshots]
    for kind, named, defaults in (
        ("readme", readme, README_DEFAULTS),
        ("changelog", changelog, CHANGELOG_DEFAULTS),
    ):
        found = named or next((d for d in defaults if d in members), None)
        if found:
            wanted.append((kind, found))  # type: ignore[arg-type]
    return wanted


def check_content(
    wanted: list[tuple[ContentKind, str]], read: Callable[[str], bytes | None]
) -> tuple[list[tuple[CheckedFile, bytes]], list[Problem]]:
    """Every wanted file checked (``read`` returns ``None`` for a path the plugin lacks):
    the files that passed with their bytes, and one problem per file that did not."""
    passed: list[tuple[CheckedFile, bytes]] = []
    problems: list[Problem] = []
    for kind, path in wanted:
        data = read(path)
        field = {"screenshot": "screenshots"}.get(kind, kind)
        if data is None:
            problems.append(Problem(field, f"{path!r} is not a file in the plugin", path))
            continue
        checked = check_file(kind, path, data)
        if isinstance(checked, Problem):
            problems.append(checked)
        else:
            passed.append((checked, data))
    return passed, problems
