"""The marketplace files' rules, pure: PNG sizes read from the IHDR chunk, SVGs refused for
anything that can run or load, Markdown limits, and which files a plugin shows."""

from __future__ import annotations

import struct
import zlib

import pytest

from plugport._content_rules import (
    MAX_ICON_BYTES,
    MAX_TEXT_BYTES,
    CheckedFile,
    check_content,
    check_file,
    content_paths,
    png_dimensions,
    svg_problem,
)
from plugport.errors import Problem


def png(width: int, height: int, *, extra: int = 0) -> bytes:
    """A real, minimal PNG (one grey row per line), ``extra`` bytes of padding in a tEXt."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    text = chunk(b"tEXt", b"c\x00" + b"x" * extra) if extra else b""
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + text
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    b'<circle cx="8" cy="8" r="6"/></svg>'
)


def svg(inner: str, attrs: str = "") -> bytes:
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'viewBox="0 0 16 16"{attrs}>{inner}</svg>'
    ).encode()


def test_png_dimensions_come_from_the_ihdr_chunk() -> None:
    assert png_dimensions(png(64, 32)) == (64, 32)


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (b"GIF89a" + b"\0" * 40, "not a PNG"),
        (png(16, 16)[:20], "truncated"),
        (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"tEXt" + b"\0" * 20, "13-byte IHDR"),
        (b"\x89PNG\r\n\x1a\n" + struct.pack(">I4sII", 13, b"IHDR", 0, 5) + b"\0" * 9, "0x5"),
    ],
)
def test_what_is_not_a_png_is_named(data: bytes, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        png_dimensions(data)


def test_an_icon_png_within_the_limits_passes_with_its_size() -> None:
    assert check_file("icon", "assets/icon.png", png(128, 128)) == CheckedFile(
        "icon", "assets/icon.png", "image/png", 128, 128
    )


@pytest.mark.parametrize(
    ("kind", "data", "said"),
    [
        ("icon", png(2048, 64), "2048x64 pixels; each side must be 16 to 1024"),
        ("icon", png(8, 8), "8x8 pixels"),
        ("icon", png(64, 64, extra=MAX_ICON_BYTES), f"at most {MAX_ICON_BYTES} bytes"),
        ("screenshot", png(5000, 100), "5000x100 pixels; each side must be 1 to 3840"),
        ("screenshot", SVG, "not a PNG"),
        ("icon", b"\xff\xd8\xff\xe0 a jpeg", "an icon must be a PNG or an SVG"),
    ],
)
def test_an_image_over_a_limit_is_a_problem_naming_file_and_limit(
    kind: str, data: bytes, said: str
) -> None:
    found = check_file(kind, "assets/x.png", data)  # type: ignore[arg-type]
    assert isinstance(found, Problem)
    assert found.path == ("screenshots" if kind == "screenshot" else "icon")
    assert "assets/x.png" in found.message
    assert said in found.message


def test_a_plain_svg_passes_as_it_is() -> None:
    assert svg_problem(SVG) is None
    inner = '<defs><linearGradient id="g"/></defs><rect fill="url(#g)" width="4" height="4"/>'
    assert svg_problem(svg(inner + '<use href="#g"/><use xlink:href="#g"/>')) is None
    assert svg_problem(svg('<image href="data:image/png;base64,iVBORw0KGgo="/>')) is None
    assert svg_problem(svg("<style>circle { fill: red; }</style>")) is None
    assert check_file("icon", "icon.svg", SVG) == CheckedFile("icon", "icon.svg", "image/svg+xml")


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (svg("<script>alert(1)</script>"), "a <script> element"),
        (svg('<script xlink:href="https://evil.example/x.js"/>'), "a <script> element"),
        (svg("", ' onload="alert(1)"'), "an event handler attribute onload= on <svg>"),
        (svg('<circle ONCLICK="alert(1)"/>'), "event handler attribute ONCLICK="),
        (
            svg('<a href="javascript:alert(1)"><circle/></a>'),
            "a reference to 'javascript:alert(1)'",
        ),
        (svg('<a href=" java\tscript:alert(1)"><circle/></a>'), "a reference to"),
        (svg('<image href="https://evil.example/track.png"/>'), "'https://evil.example/track.png'"),
        (svg('<use xlink:href="other.svg#a"/>'), "'other.svg#a'"),
        (
            svg('<image href="data:image/svg+xml;base64,PHN2Zz4="/>'),
            "only '#fragment' or data:image/png",
        ),
        (
            svg(
                "<foreignObject><div xmlns='http://www.w3.org/1999/xhtml'>hi</div></foreignObject>"
            ),
            "<foreignObject>",
        ),
        (svg('<rect style="fill: url(https://evil.example/a)"/>'), "in a style's url()"),
        (svg('<rect fill="url(https://evil.example/#a)"/>'), "in a style's url()"),
        (svg("<style>@import url(https://evil.example/a.css);</style>"), "@import"),
        (svg('<set attributeName="href" to="javascript:alert(1)"/>'), "(<set>) that changes href="),
        (svg('<animate attributeName="xlink:href" values="#a;#b"/>'), "changes xlink:href="),
        (svg('<h:p xmlns:h="http://www.w3.org/1999/xhtml">x</h:p>'), "another vocabulary"),
        (b'<?xml-stylesheet href="https://evil.example/a.css"?>' + SVG, "processing instruction"),
        (b'<html xmlns="http://www.w3.org/1999/xhtml"/>', "not an SVG image"),
        (b"<svg><unclosed></svg>", "not well-formed XML"),
        (svg("", ' width="5000"'), "at most 1024 pixels"),
    ],
)
def test_a_hostile_svg_is_refused_saying_what_was_found(data: bytes, said: str) -> None:
    found = svg_problem(data)
    assert found is not None
    assert said in found
    problem = check_file("icon", "assets/icon.svg", data)
    assert isinstance(problem, Problem)
    assert problem.path == "icon"
    assert problem.message.startswith("assets/icon.svg ")


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE svg [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<svg xmlns="http://www.w3.org/2000/svg"><text>&lol3;</text></svg>"""

EXTERNAL_ENTITY = b"""<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>"""


@pytest.mark.parametrize("data", [BILLION_LAUGHS, EXTERNAL_ENTITY, b"<!doctype svg>" + SVG])
def test_a_doctype_is_refused_before_parsing_so_no_entity_expands(data: bytes) -> None:
    assert svg_problem(data) == (
        "has a DOCTYPE (entities and external DTDs are not allowed in an icon)"
    )


def test_an_undeclared_entity_is_not_well_formed() -> None:
    assert "not well-formed" in (svg_problem(svg("<text>&lol;</text>")) or "")


def test_markdown_must_be_utf8_text_within_the_limit() -> None:
    assert check_file("readme", "README.md", b"# Hi\n") == CheckedFile(
        "readme", "README.md", "text/markdown; charset=utf-8"
    )
    latin = check_file("changelog", "CHANGES.md", "caf\u00e9".encode("latin-1"))
    assert isinstance(latin, Problem)
    assert latin.path == "changelog"
    assert "CHANGES.md is not UTF-8 text (byte 3)" in latin.message
    big = check_file("readme", "README.md", b"x" * (MAX_TEXT_BYTES + 1))
    assert isinstance(big, Problem)
    assert f"at most {MAX_TEXT_BYTES}" in big.message


def test_content_paths_take_the_manifest_then_top_level_defaults() -> None:
    members = {"README.md", "CHANGELOG.md", "docs/NOTES.md"}
    assert content_paths(None, None, None, [], members) == [
        ("readme", "README.md"),
        ("changelog", "CHANGELOG.md"),
    ]
    assert content_paths("docs/NOTES.md", None, "i.svg", ["a.png", "b.png"], members) == [
        ("icon", "i.svg"),
        ("screenshot", "a.png"),
        ("screenshot", "b.png"),
        ("readme", "docs/NOTES.md"),
        ("changelog", "CHANGELOG.md"),
    ]
    assert content_paths(None, None, None, [], {"README.rst"}) == []


def test_check_content_names_each_missing_or_bad_file_and_keeps_the_good() -> None:
    files = {"icon.svg": SVG, "shot.png": b"not a png"}
    passed, problems = check_content(
        [("icon", "icon.svg"), ("screenshot", "shot.png"), ("readme", "README.md")], files.get
    )
    assert [checked.path for checked, _ in passed] == ["icon.svg"]
    assert [(p.path, p.value) for p in problems] == [
        ("screenshots", "shot.png"),
        ("readme", "README.md"),
    ]
    assert problems[1].message == "'README.md' is not a file in the plugin"


def test_the_new_fields_raise_the_engine_floor_and_the_icon_alone_does_not() -> None:
    from plugport._engines import required_plugport

    assert required_plugport({"icon": "i.svg"}) is None  # known since the first release
    assert required_plugport({"readme": "R.md", "screenshots": ["a.png"]}) == (
        "0.5",
        ["readme", "screenshots"],
    )
