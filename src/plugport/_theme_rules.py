"""Themes are design tokens, never CSS: this module is the one place tokens become CSS, and the
one place they are checked for WCAG AA contrast, so a theme that is unreadable is refused at
``plugport validate``/``pack``, at upload and again each time a host applies it.

Everything here is pure: colours in, numbers, problems or CSS text out. Colours are parsed
from ``#rrggbb`` and written back from integers, fonts come from a fixed table of local system
fonts, the radius is an integer and the spacing a fixed step: whatever a manifest holds, the
CSS cannot carry anything else (no ``url()``, no ``@import``, no selector of the author's).

What is checked, and why (WCAG 2.2, level AA; the ratios are the exact ones, never rounded up):

- 4.5:1 (1.4.3, normal-size text) for every pair of text and background the stylesheet draws:
  text and muted text on the page and on cards; links (the accent) on both; status text
  (ok, warn, bad) on cards and on their own badge backgrounds; text on the tinted message
  backgrounds and on table headings; button text on each button colour and on its hover
  shade; the header's text. Derived colours (hover shades, tints, the header) are computed
  from the tokens here and checked like the tokens, so what is served is what was checked.
- Button text is whichever of white and black contrasts more with the button (WCAG's own
  luminance decides); that choice always reaches at least 4.58:1, and is checked anyway.
- 3:1 (1.4.11, non-text contrast) for the border of form fields, which is how a user finds
  them: the host derives it from the theme's ``border``, darkened (or on a dark field
  lightened) until it reaches 3:1 on the field's background.
- The ``border`` token itself is *not* held to 3:1: it separates cards and table rows, which
  their content and background already identify, and 1.4.11 does not cover such decoration
  (Plugport's own light border is 1.57:1). Asking 3:1 there would refuse ordinary, readable
  themes for a line WCAG does not require.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from plugport.errors import Problem

__all__ = [
    "BLACK",
    "CONTRAST_CHECKS",
    "DENSITY_SPACE",
    "FONT_STACKS",
    "MODES",
    "WHITE",
    "ContrastCheck",
    "Palette",
    "ThemeTokens",
    "contrast_problems",
    "contrast_ratio",
    "derived_colours",
    "mix",
    "on_colour",
    "palette_for",
    "parse_hex",
    "relative_luminance",
    "theme_css",
    "theme_problems",
    "themes_problems",
    "to_hex",
]

Mode = Literal["auto", "light", "dark"]
MODES: tuple[Mode, ...] = ("auto", "light", "dark")
"""``auto`` follows the system's light or dark preference; ``light`` and ``dark`` pick one."""
WHITE = "#ffffff"
BLACK = "#000000"
_HEX = re.compile(r"#([0-9a-fA-F]{6})")

FONT_STACKS = {
    "system": 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif',
    "humanist": 'Seravek, "Gill Sans Nova", Ubuntu, Calibri, "DejaVu Sans", source-sans-pro, '
    "sans-serif",
    "rounded": 'ui-rounded, "Hiragino Maru Gothic ProN", Quicksand, Comfortaa, Manjari, '
    '"Arial Rounded MT", Calibri, source-sans-pro, sans-serif',
    "serif": '"Iowan Old Style", "Palatino Linotype", "URW Palladio L", P052, Georgia, serif',
    "mono": 'ui-monospace, "Cascadia Code", "Source Code Pro", Menlo, Consolas, '
    '"DejaVu Sans Mono", monospace',
}
"""A theme's ``font`` -> the CSS font stack: names of fonts a system may have installed, ending
in a generic family. No ``@font-face``, no URL: a theme never makes the browser load anything."""
DENSITY_SPACE = {"compact": "0.75rem", "normal": "1rem", "comfortable": "1.25rem"}
"""A theme's ``density`` -> ``--space``, the unit the stylesheet's paddings and gaps scale with
(``normal`` is the stylesheet's own 1rem)."""


class Palette(Protocol):
    """One mode's colour tokens (``plugport.manifest.ThemeColors`` is one)."""

    @property
    def bg(self) -> str: ...
    @property
    def surface(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def muted(self) -> str: ...
    @property
    def border(self) -> str: ...
    @property
    def accent(self) -> str: ...
    @property
    def ok(self) -> str: ...
    @property
    def warn(self) -> str: ...
    @property
    def bad(self) -> str: ...


class ThemeTokens(Protocol):
    """A theme's tokens (``plugport.manifest.Theme`` is one). A Protocol, so the manifest can
    call these checks without this module importing the manifest."""

    @property
    def light(self) -> Palette | None: ...
    @property
    def dark(self) -> Palette | None: ...
    @property
    def font(self) -> str: ...
    @property
    def radius_px(self) -> int: ...
    @property
    def density(self) -> str: ...


# --- colour arithmetic ----------------------------------------------------------------------------

Rgb = tuple[int, int, int]


def parse_hex(value: str) -> Rgb:
    """``#rrggbb`` -> its three channels; anything else is a ``ValueError``."""
    match = _HEX.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{value!r} is not a colour; write #rrggbb")
    digits = match.group(1)
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def to_hex(rgb: Rgb) -> str:
    return "#" + "".join(f"{max(0, min(255, channel)):02x}" for channel in rgb)


def _linear(channel: int) -> float:
    c = channel / 255
    # WCAG 2.x's sRGB transfer function (the 0.04045 knee of IEC 61966-2-1; WCAG 2.0 printed
    # 0.03928, which gives the same result for every 8-bit value).
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def relative_luminance(colour: str) -> float:
    """WCAG 2.x relative luminance, 0 (black) to 1 (white)."""
    r, g, b = (_linear(c) for c in parse_hex(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: str, b: str) -> float:
    """WCAG 2.x contrast ratio of two colours, 1.0 to 21.0, in either order; exact (WCAG says a
    ratio is not rounded before it is compared: 4.499 fails 4.5)."""
    la, lb = relative_luminance(a), relative_luminance(b)
    lighter, darker = max(la, lb), min(la, lb)
    return (lighter + 0.05) / (darker + 0.05)


def mix(a: str, b: str, weight: float) -> str:
    """``weight`` of ``b`` mixed into ``a``, channel by channel in sRGB, rounded half up:
    deterministic, so the same tokens always give the same CSS."""
    if not 0 <= weight <= 1:
        raise ValueError(f"weight {weight} is not within 0 to 1")
    ca, cb = parse_hex(a), parse_hex(b)
    r, g, bl = (math.floor(x + (y - x) * weight + 0.5) for x, y in zip(ca, cb, strict=True))
    return to_hex((r, g, bl))


def on_colour(background: str) -> str:
    """The text colour for a filled control: white or black, whichever contrasts more (at
    equal contrast, white)."""
    white = contrast_ratio(WHITE, background)
    return WHITE if white >= contrast_ratio(BLACK, background) else BLACK


def _hover(colour: str) -> str:
    """A filled control's hover shade: 25% further from its text colour, so hovering never
    lowers the contrast of the button's label."""
    return mix(colour, BLACK if on_colour(colour) == WHITE else WHITE, 0.25)


def _field_border(border: str, background: str) -> str:
    """The theme's border, moved in 5% steps towards black (on a light field) or white (on a
    dark one) until form fields stand out at 3:1 (WCAG 1.4.11); it always gets there, since
    the end of the way is at least 4.58:1."""
    towards = on_colour(background)
    for step in range(21):
        candidate = mix(border, towards, step / 20)
        if contrast_ratio(candidate, background) >= 3.0:
            return candidate
    return towards


def palette_for(theme: ThemeTokens, mode: Literal["light", "dark"]) -> Palette:
    """The palette a theme shows in ``mode``: its own for that mode, else the one it has (a
    theme with one palette looks the same in both modes)."""
    first, second = (theme.light, theme.dark) if mode == "light" else (theme.dark, theme.light)
    found = first if first is not None else second
    if found is None:
        raise ValueError("a theme needs colours for 'light', 'dark' or both")
    return found


_TOKENS = ("bg", "surface", "text", "muted", "border", "accent", "ok", "warn", "bad")


def derived_colours(palette: Palette) -> dict[str, str]:
    """Every colour variable the stylesheet reads, for one palette: the nine tokens and what
    the host derives from them (hover shades, tints, button text, the header, form fields)."""
    tokens = {name: to_hex(parse_hex(getattr(palette, name))) for name in _TOKENS}
    surface, text, bg = tokens["surface"], tokens["text"], tokens["bg"]
    darker = text if relative_luminance(text) < relative_luminance(bg) else bg
    header_bg = mix(darker, BLACK, 0.3)
    # Tints sit on whichever of bg and surface is further from the text (surface in a light
    # theme, usually bg in a dark one), so a tinted message keeps the most contrast it can.
    tinted = surface if contrast_ratio(text, surface) >= contrast_ratio(text, bg) else bg
    header_text = on_colour(header_bg)
    colours = dict(tokens)
    colours |= {
        "accent-dark": _hover(tokens["accent"]),
        "accent-soft": mix(tinted, tokens["accent"], 0.12),
        "on-accent": on_colour(tokens["accent"]),
        "subtle": mix(surface, tokens["border"], 0.3),
        "on-text": on_colour(text),
        "header-bg": header_bg,
        "header-text": header_text,
        "header-muted": mix(header_text, header_bg, 0.12),
        "brand-mark": mix(tokens["accent"], header_text, 0.5),
        "input-bg": surface,
        "input-border": _field_border(tokens["border"], surface),
        "star": tokens["warn"],
    }
    for status in ("ok", "warn", "bad"):
        colours[f"{status}-soft"] = mix(tinted, tokens[status], 0.12)
        colours[f"{status}-line"] = mix(surface, tokens[status], 0.45)
    for status in ("ok", "bad"):  # filled buttons: confirm and danger
        colours[f"{status}-dark"] = _hover(tokens[status])
        colours[f"on-{status}"] = on_colour(tokens[status])
    return colours


# --- contrast checks ------------------------------------------------------------------------------

TEXT_AA = 4.5
NON_TEXT_AA = 3.0


@dataclass(frozen=True)
class ContrastCheck:
    """``fg`` must reach ``minimum`` on ``bg`` (both names from :func:`derived_colours`);
    ``change`` is the token to change when it does not (``@header``: the darker of text and
    bg, which the header is made from)."""

    fg: str
    bg: str
    minimum: float
    change: str
    what: str


def _checks() -> Iterator[ContrastCheck]:
    yield ContrastCheck("text", "bg", TEXT_AA, "text", "body text on the page")
    yield ContrastCheck("text", "surface", TEXT_AA, "text", "text on cards, tables and forms")
    yield ContrastCheck("text", "subtle", TEXT_AA, "text", "table headings and plain badges")
    for tint, what in (
        ("accent", "info"),
        ("ok", "success"),
        ("warn", "warning"),
        ("bad", "error"),
    ):
        yield ContrastCheck("text", f"{tint}-soft", TEXT_AA, "text", f"{what} messages")
    yield ContrastCheck("muted", "bg", TEXT_AA, "muted", "secondary text on the page")
    yield ContrastCheck("muted", "surface", TEXT_AA, "muted", "secondary text on cards")
    yield ContrastCheck("accent", "bg", TEXT_AA, "accent", "links on the page")
    yield ContrastCheck("accent", "surface", TEXT_AA, "accent", "links on cards")
    yield ContrastCheck("on-accent", "accent", TEXT_AA, "accent", "button text")
    yield ContrastCheck("on-accent", "accent-dark", TEXT_AA, "accent", "button text on hover")
    for status in ("ok", "warn", "bad"):
        yield ContrastCheck(status, "surface", TEXT_AA, status, "status text")
        yield ContrastCheck(status, f"{status}-soft", TEXT_AA, status, "status badges")
    for status, what in (("ok", "confirm"), ("bad", "danger")):
        yield ContrastCheck(f"on-{status}", status, TEXT_AA, status, f"{what} button text")
        yield ContrastCheck(
            f"on-{status}", f"{status}-dark", TEXT_AA, status, f"{what} button text on hover"
        )
    yield ContrastCheck("header-text", "header-bg", TEXT_AA, "@header", "the header's title")
    yield ContrastCheck("header-muted", "header-bg", TEXT_AA, "@header", "the header's links")
    yield ContrastCheck(
        "input-border", "input-bg", NON_TEXT_AA, "border", "form field borders (WCAG 1.4.11)"
    )


CONTRAST_CHECKS: tuple[ContrastCheck, ...] = tuple(_checks())

_DERIVED_WORDS = {
    "accent-dark": "the accent's hover shade",
    "accent-soft": "12% accent over bg or surface",
    "on-accent": "white or black, whichever contrasts more",
    "subtle": "30% border over surface",
    "header-bg": "the darker of text and bg, 30% towards black",
    "header-text": "white or black, whichever contrasts more",
    "header-muted": "the header text, 12% towards the header",
    "input-border": "border darkened or lightened to 3:1",
    "input-bg": "surface",
    "ok-soft": "12% ok over bg or surface",
    "warn-soft": "12% warn over bg or surface",
    "bad-soft": "12% bad over bg or surface",
    "ok-dark": "ok's hover shade",
    "bad-dark": "bad's hover shade",
    "on-ok": "white or black, whichever contrasts more",
    "on-bad": "white or black, whichever contrasts more",
}


def _named(name: str, value: str) -> str:
    words = _DERIVED_WORDS.get(name)
    return f"{name} {value} ({words})" if words else f"{name} {value}"


def _shown(ratio: float) -> str:
    """Two decimals, cut rather than rounded: 4.4999 shows as 4.49, never as a passing 4.50."""
    return f"{math.floor(ratio * 100) / 100:.2f}"


def contrast_problems(colours: Palette, mode: str, *, path: str = "") -> list[Problem]:
    """Every pair of :data:`CONTRAST_CHECKS` that falls short in one palette, each at
    ``{path}.{mode}.{token}`` (the token to change), naming the pair, the ratio and the
    threshold."""
    values = derived_colours(colours)
    text_is_darker = relative_luminance(values["text"]) < relative_luminance(values["bg"])
    darker = "text" if text_is_darker else "bg"
    problems = []
    for check in CONTRAST_CHECKS:
        ratio = contrast_ratio(values[check.fg], values[check.bg])
        if ratio >= check.minimum:
            continue
        change = darker if check.change == "@header" else check.change
        where = ".".join(p for p in (path, mode, change) if p)
        problems.append(
            Problem(
                where,
                f"{_named(check.fg, values[check.fg])} on {_named(check.bg, values[check.bg])} "
                f"has contrast {_shown(ratio)}:1; WCAG AA needs {check.minimum:g}:1 for "
                f"{check.what}",
                values[change],
            )
        )
    return problems


def theme_problems(theme: ThemeTokens, *, path: str = "") -> list[Problem]:
    """The contrast problems of each palette a theme has."""
    problems = []
    for mode in ("light", "dark"):
        palette = getattr(theme, mode)
        if palette is not None:
            problems += contrast_problems(palette, mode, path=path)
    return problems


def themes_problems(themes: Sequence[ThemeTokens], *, path: str) -> list[Problem]:
    """For a manifest's ``contributes.themes``: each theme's problems at ``{path}[i]``."""
    problems = []
    for index, theme in enumerate(themes):
        problems += theme_problems(theme, path=f"{path}[{index}]")
    return problems


# --- CSS ------------------------------------------------------------------------------------------


def _declarations(palette: Palette, scheme: str) -> list[str]:
    lines = [f"color-scheme: {scheme};"]
    lines += [f"--{name}: {value};" for name, value in sorted(derived_colours(palette).items())]
    return lines


def _block(selector: str, lines: list[str], indent: str = "") -> str:
    inner = "".join(f"{indent}  {line}\n" for line in lines)
    return f"{indent}{selector} {{\n{inner}{indent}}}\n"


def theme_css(theme: ThemeTokens, *, mode: str) -> str:
    """The stylesheet that applies ``theme`` over Plugport's own: ``:root`` custom properties
    only, for the palette ``mode`` picks; ``auto`` with a theme of two palettes adds the dark
    one under ``@media (prefers-color-scheme: dark)``. Refuses (``ValueError``) a token that
    is not a colour, a font, a radius or a density it knows, whatever validated it before."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    font = FONT_STACKS.get(theme.font)
    space = DENSITY_SPACE.get(theme.density)
    radius = theme.radius_px
    if font is None:
        raise ValueError(f"font {theme.font!r} is not one of {', '.join(sorted(FONT_STACKS))}")
    if space is None:
        raise ValueError(f"density {theme.density!r} is not one of {', '.join(DENSITY_SPACE)}")
    if type(radius) is not int or not 0 <= radius <= 24:
        raise ValueError(f"radius_px {radius!r} is not an integer from 0 to 24")
    shape = [f"--font: {font};", f"--radius: {radius}px;", f"--space: {space};"]
    palette = palette_for(theme, "dark" if mode == "dark" else "light")
    scheme = "dark" if palette is theme.dark else "light"
    css = "/* A Plugport theme, generated from its design tokens. */\n"
    css += _block(":root", _declarations(palette, scheme) + shape)
    if mode == "auto" and theme.light is not None and theme.dark is not None:
        dark = _block(":root", _declarations(theme.dark, "dark"), "  ")
        css += f"@media (prefers-color-scheme: dark) {{\n{dark}}}\n"
    return css
