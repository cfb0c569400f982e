"""Themes as design tokens, without I/O: WCAG 2.x luminance and contrast against known values,
the AA checks (each problem at its manifest path, naming the pair, the ratio and the
threshold), the manifest refusing an unreadable theme through ``validate`` and ``pack``, and
the CSS a theme becomes, which can hold nothing but the custom properties it is made of."""

from __future__ import annotations

import re
from itertools import product
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from plugport._builtin_themes import BUILTIN_THEMES, PLUGPORT_DARK, PLUGPORT_LIGHT
from plugport._theme_rules import (
    BLACK,
    CONTRAST_CHECKS,
    DENSITY_SPACE,
    FONT_STACKS,
    WHITE,
    contrast_problems,
    contrast_ratio,
    derived_colours,
    mix,
    on_colour,
    palette_for,
    parse_hex,
    relative_luminance,
    theme_css,
    theme_problems,
)
from plugport._web import STATIC_DIR
from plugport.errors import ManifestError
from plugport.manifest import THEME_COLORS, THEME_FONTS, Theme, ThemeColors, parse_manifest
from tests.conftest import RunCli, snapshot

NORD_LIGHT = {
    "bg": "#eceff4",
    "surface": "#ffffff",
    "text": "#2e3440",
    "muted": "#4c566a",
    "border": "#d8dee9",
    "accent": "#3b6394",
    "ok": "#3f6b2a",
    "warn": "#8a5a00",
    "bad": "#a33a44",
}
NORD_DARK = {
    "bg": "#242933",
    "surface": "#2e3440",
    "text": "#eceff4",
    "muted": "#d8dee9",
    "border": "#4c566a",
    "accent": "#88c0d0",
    "ok": "#a3be8c",
    "warn": "#ebcb8b",
    "bad": "#e5959c",
}


def palette(**changes: str) -> ThemeColors:
    return ThemeColors(**(NORD_LIGHT | changes))


def manifest_with(theme: str) -> str:
    return (
        'name = "acme.nord"\nversion = "1.0.0"\nentry = "main:Main"\n'
        '[permissions]\nui = ["themes"]\n[[contributes.themes]]\nid = "nord"\ntitle = "Nord"\n'
        + theme
    )


def inline(colours: dict[str, str]) -> str:
    return "{ " + ", ".join(f'{k} = "{v}"' for k, v in colours.items()) + " }"


# --- WCAG arithmetic ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("#000000", "#ffffff", 21.00),
        ("#ffffff", "#000000", 21.00),  # either order
        ("#777777", "#ffffff", 4.48),  # the classic near miss: fails AA
        ("#767676", "#ffffff", 4.54),  # the lightest grey that passes on white
        ("#ffffff", "#ffffff", 1.00),
        ("#ff0000", "#ffffff", 4.00),
        ("#0000ff", "#ffffff", 8.59),
        ("#1f4fd1", "#ffffff", 6.78),  # Plugport's accent on a card
    ],
)
def test_contrast_ratio_matches_known_values(a: str, b: str, expected: float) -> None:
    assert round(contrast_ratio(a, b), 2) == expected


def test_luminance_is_wcag_s() -> None:
    assert relative_luminance("#000000") == 0.0
    assert relative_luminance("#ffffff") == pytest.approx(1.0)
    # below the knee of the transfer function the channel is linear: 10/255/12.92
    assert relative_luminance("#0a0a0a") == pytest.approx(10 / 255 / 12.92)
    assert relative_luminance("#808080") == pytest.approx(0.2158605)


def test_colours_parse_strictly_and_mix_deterministically() -> None:
    assert parse_hex("#1F4fD1") == (0x1F, 0x4F, 0xD1)
    for bad in ("1f4fd1", "#1f4fd", "#1f4fd1;", "#fff", "red", "#1f4fd1 ", "url(x)", 7):
        with pytest.raises(ValueError, match="not a colour"):
            parse_hex(bad)  # type: ignore[arg-type]
    assert mix("#000000", "#ffffff", 0.5) == "#808080"  # 127.5 rounds half up
    assert mix("#102030", "#ffffff", 0) == "#102030"
    assert mix("#102030", "#ffffff", 1) == "#ffffff"
    assert mix("#1f4fd1", "#000000", 0.25) == mix("#1f4fd1", "#000000", 0.25)
    with pytest.raises(ValueError, match="not within 0 to 1"):
        mix("#000000", "#ffffff", 1.5)


def test_button_text_is_the_better_of_white_and_black() -> None:
    assert on_colour("#1f4fd1") == WHITE
    assert on_colour("#88c0d0") == BLACK
    assert on_colour("#ffff00") == BLACK
    # Whatever the button's colour, the better of the two reaches at least 4.58:1 (the
    # worst case is a mid grey whose luminance is sqrt(0.05 * 1.05) - 0.05).
    worst = min(
        contrast_ratio(on_colour(f"#{r:02x}{g:02x}{b:02x}"), f"#{r:02x}{g:02x}{b:02x}")
        for r, g, b in product(range(0, 256, 15), repeat=3)
    )
    assert 4.58 <= worst < 4.7


# --- AA checks ------------------------------------------------------------------------------------


def test_a_readable_palette_has_no_problem_and_every_check_is_met() -> None:
    colours = derived_colours(palette())
    assert contrast_problems(palette(), "light") == []
    for check in CONTRAST_CHECKS:
        assert contrast_ratio(colours[check.fg], colours[check.bg]) >= check.minimum, check


def test_unreadable_text_is_a_problem_at_its_path_naming_pair_ratio_and_threshold() -> None:
    problems = contrast_problems(
        palette(text="#777777", bg="#ffffff"), "light", path="contributes.themes[0]"
    )
    assert problems, "grey #777 on white must fail AA"
    assert {p.path for p in problems} == {"contributes.themes[0].light.text"}
    first = problems[0]
    assert first.value == "#777777"
    assert first.message == (
        "text #777777 on bg #ffffff has contrast 4.47:1; WCAG AA needs 4.5:1 for body text "
        "on the page"
    )  # 4.478 is shown cut, never rounded up to a passing-looking 4.48


@pytest.mark.parametrize(
    ("token", "value", "pair"),
    [
        ("muted", "#9aa3b5", "muted #9aa3b5 on surface #ffffff"),
        ("accent", "#88c0d0", "accent #88c0d0 on surface #ffffff"),
        ("ok", "#a3be8c", "ok #a3be8c on surface #ffffff"),
        ("warn", "#ebcb8b", "warn #ebcb8b on surface #ffffff"),
        ("bad", "#e5959c", "bad #e5959c on surface #ffffff"),
    ],
)
def test_each_token_is_checked_where_it_is_drawn(token: str, value: str, pair: str) -> None:
    """Nord's dark-mode colours on a light card: each fails, and says which pair."""
    problems = contrast_problems(palette(**{token: value}), "light", path="p")
    assert problems
    assert {p.path for p in problems} == {f"p.light.{token}"}
    assert any(p.message.startswith(pair) and "WCAG AA needs 4.5:1" in p.message for p in problems)


def test_tints_and_hover_shades_are_checked_as_served() -> None:
    """Status text that passes on the card (4.94:1) but not on its own badge background, a
    tint of itself: the badge is what the page draws, so it is refused."""
    light_surface = NORD_DARK | {"bg": "#3b4252", "surface": "#3b4252"}
    colours = ThemeColors(**light_surface)
    messages = [p.message for p in contrast_problems(colours, "dark") if p.path == "dark.ok"]
    assert contrast_ratio("#a3be8c", "#3b4252") >= 4.5
    assert len(messages) == 1
    assert messages[0].startswith("ok #a3be8c on ok-soft ")
    assert "(12% ok over bg or surface)" in messages[0]
    assert "for status badges" in messages[0]


def test_form_field_borders_reach_three_to_one_and_the_border_token_is_free() -> None:
    """The border token may be faint (decoration, as Plugport's own at 1.57:1); the border the
    host derives for form fields is pushed to WCAG 1.4.11's 3:1."""
    faint = palette(border="#f4f5f7")
    assert contrast_ratio("#f4f5f7", "#ffffff") < 1.1
    assert contrast_problems(faint, "light") == []
    field = derived_colours(faint)["input-border"]
    assert contrast_ratio(field, "#ffffff") >= 3.0
    assert contrast_ratio(PLUGPORT_LIGHT.light.border, "#ffffff") < 3  # type: ignore[union-attr]


def test_hover_shades_move_away_from_the_button_text() -> None:
    light, dark = derived_colours(palette()), derived_colours(ThemeColors(**NORD_DARK))
    assert light["on-accent"] == WHITE
    assert relative_luminance(light["accent-dark"]) < relative_luminance(light["accent"])
    assert dark["on-accent"] == BLACK
    assert relative_luminance(dark["accent-dark"]) > relative_luminance(dark["accent"])


def test_theme_problems_cover_both_palettes() -> None:
    theme = Theme(
        id="t",
        title="T",
        light=palette(muted="#aaaaaa"),
        dark=ThemeColors(**(NORD_DARK | {"accent": "#3b6394"})),
    )
    paths = {p.path for p in theme_problems(theme, path="x")}
    assert paths == {"x.light.muted", "x.dark.accent"}


def test_builtin_themes_pass_and_light_is_the_stylesheet() -> None:
    for key, theme in BUILTIN_THEMES.items():
        assert theme_problems(theme) == [], key
    assert PLUGPORT_LIGHT.dark is None
    assert PLUGPORT_DARK.light is None
    stylesheet = (STATIC_DIR / "plugport.css").read_text()
    root = stylesheet[stylesheet.index(":root {") : stylesheet.index("}")]
    declared = dict(re.findall(r"--([a-z-]+): ([^;]+);", root))
    assert PLUGPORT_LIGHT.light is not None
    for token in THEME_COLORS:
        assert declared[token] == getattr(PLUGPORT_LIGHT.light, token), token
    assert declared["font"] == FONT_STACKS["system"]
    assert declared["radius"] == f"{PLUGPORT_LIGHT.radius_px}px"
    assert declared["space"] == DENSITY_SPACE[PLUGPORT_LIGHT.density]


def test_every_colour_variable_a_theme_sets_is_one_the_stylesheet_reads() -> None:
    stylesheet = (STATIC_DIR / "plugport.css").read_text()
    root = stylesheet[stylesheet.index(":root {") : stylesheet.index("}")]
    rules = stylesheet[stylesheet.index("}") :]
    declared = set(re.findall(r"--([a-z-]+):", root))
    used = set(re.findall(r"var\(--([a-z-]+)\)", rules))
    themed = set(derived_colours(palette()))
    assert themed <= declared, themed - declared
    assert themed <= used, themed - used
    # no colour is written into a rule: every one comes from a variable a theme can set
    assert re.findall(r"#[0-9a-fA-F]{3,6}\b", rules) == []


# --- the manifest ---------------------------------------------------------------------------------


def test_the_manifest_refuses_an_unreadable_theme_at_its_paths() -> None:
    theme = f"light = {inline(NORD_LIGHT | {'text': '#777777'})}\n"
    theme += f"dark = {inline(NORD_DARK | {'bad': '#bf616a'})}\n"
    with pytest.raises(ManifestError) as caught:
        parse_manifest(manifest_with(theme))
    paths = {p.path for p in caught.value.problems}
    assert paths == {"contributes.themes[0].light.text", "contributes.themes[0].dark.bad"}
    assert "contrast" in str(caught.value)
    # the same theme, readable, is accepted
    good = f"light = {inline(NORD_LIGHT)}\ndark = {inline(NORD_DARK)}\n"
    assert parse_manifest(manifest_with(good)).contributes.themes[0].id == "nord"


def test_tokens_are_only_tokens() -> None:
    """What a theme may hold is closed: no CSS, no URLs, no unknown keys or fonts."""
    for theme, found in [
        (f"light = {inline(NORD_LIGHT | {'bg': 'red'})}\n", "contributes.themes[0].light.bg"),
        (
            f"light = {inline(NORD_LIGHT | {'bg': '#fff;}body{background:url(//x)'})}\n",
            "contributes.themes[0].light.bg",
        ),
        (f'light = {inline(NORD_LIGHT)}\ncss = "a{{}}"\n', "contributes.themes[0].css"),
        (f'light = {inline(NORD_LIGHT)}\nfont = "Comic Sans"\n', "contributes.themes[0].font"),
        (f"light = {inline(NORD_LIGHT)}\nradius_px = 99\n", "contributes.themes[0].radius_px"),
        ("", "contributes.themes[0]"),
    ]:
        with pytest.raises(ManifestError) as caught:
            parse_manifest(manifest_with(theme))
        assert found in {p.path for p in caught.value.problems}, (theme, caught.value)


def test_validate_and_pack_refuse_an_unreadable_theme(run_cli: RunCli, tmp_path: Path) -> None:
    plugin = tmp_path / "nord"
    plugin.mkdir()
    (plugin / "main.py").write_text(
        "from plugport.sdk import Plugin\n\n\nclass Main(Plugin):\n    pass\n"
    )
    (plugin / "plugport.toml").write_text(
        manifest_with(f"light = {inline(NORD_LIGHT | {'accent': '#88c0d0'})}\n")
    )
    validated = run_cli("validate", "nord")
    assert validated.exit_code == 1
    errors = [line for line in validated.output.splitlines() if line.startswith("error ")]
    assert errors
    assert all(line.startswith("error contributes.themes[0].light.accent: ") for line in errors)
    assert "accent #88c0d0 on surface #ffffff has contrast 2.00:1" in validated.output
    before = snapshot(tmp_path)
    packed = run_cli("pack", "nord")
    assert packed.exit_code == 1
    assert "contributes.themes[0].light.accent" in packed.output
    assert snapshot(tmp_path) == before  # no archive written

    (plugin / "plugport.toml").write_text(manifest_with(f"light = {inline(NORD_LIGHT)}\n"))
    assert run_cli("validate", "nord").exit_code == 0


# --- CSS ------------------------------------------------------------------------------------------

_VALUE = r"#[0-9a-f]{6}"
_DECLARATION = re.compile(
    r"(?:color-scheme: (?:light|dark)"
    rf"|--[a-z]+(?:-[a-z]+)*: {_VALUE}"
    rf"|--font: (?:{'|'.join(map(re.escape, FONT_STACKS.values()))})"
    r"|--radius: (?:[0-9]|1[0-9]|2[0-4])px"
    rf"|--space: (?:{'|'.join(map(re.escape, DENSITY_SPACE.values()))}));"
)


def _structure(css: str) -> list[str]:
    """Every line of ``css`` that is not a declaration this module may write."""
    allowed = {
        "/* A Plugport theme, generated from its design tokens. */",
        ":root {",
        "}",
        "@media (prefers-color-scheme: dark) {",
        "  :root {",
        "  }",
    }
    return [
        line
        for line in css.splitlines()
        if line not in allowed and not _DECLARATION.fullmatch(line.strip())
    ]


@pytest.mark.parametrize(("font", "density"), list(product(THEME_FONTS, DENSITY_SPACE)))
def test_css_has_only_the_expected_declarations(font: str, density: str) -> None:
    theme = Theme(
        id="nord",
        title="Nord */ } body { background: url(//evil) } /*",  # a title is never written
        light=palette(),
        dark=ThemeColors(**NORD_DARK),
        font=font,  # type: ignore[arg-type]
        radius_px=24,
        density=density,  # type: ignore[arg-type]
    )
    for mode in ("auto", "light", "dark"):
        css = theme_css(theme, mode=mode)
        assert _structure(css) == [], css
        assert "url(" not in css
        assert "evil" not in css
        assert "@import" not in css
        assert css.count("{") == css.count("}")
        assert f"--font: {FONT_STACKS[font]};" in css
        assert f"--space: {DENSITY_SPACE[density]};" in css


def test_css_per_mode() -> None:
    theme = Theme(id="nord", title="Nord", light=palette(), dark=ThemeColors(**NORD_DARK))
    light, dark, auto = (theme_css(theme, mode=m) for m in ("light", "dark", "auto"))
    assert "--bg: #eceff4;" in light
    assert "#242933" not in light
    assert "color-scheme: light;" in light
    assert "--bg: #242933;" in dark
    assert "color-scheme: dark;" in dark
    assert "#eceff4;\n" not in dark.replace("--text: #eceff4;", "")
    assert "@media" not in light + dark
    head, _, media = auto.partition("@media (prefers-color-scheme: dark) {")
    assert "--bg: #eceff4;" in head
    assert "--bg: #242933;" in media
    assert theme_css(theme, mode="auto") == auto  # deterministic
    with pytest.raises(ValueError, match="mode"):
        theme_css(theme, mode="sepia")


def test_a_theme_with_one_palette_wears_it_in_every_mode() -> None:
    only_light = Theme(id="x", title="X", light=palette())
    for mode in ("auto", "light", "dark"):
        css = theme_css(only_light, mode=mode)
        assert "--bg: #eceff4;" in css
        assert "color-scheme: light;" in css
        assert "@media" not in css
    assert palette_for(PLUGPORT_DARK, "light") is PLUGPORT_DARK.dark
    assert "color-scheme: dark;" in theme_css(PLUGPORT_DARK, mode="light")


def test_css_refuses_tokens_that_skipped_validation() -> None:
    """theme_css trusts nothing: a token that did not come through the manifest's validation
    (a model built without it) is refused, never written."""

    def tokens(**changes: Any) -> Any:
        base = {"light": palette(), "dark": None, "font": "system", "radius_px": 8}
        return SimpleNamespace(**(base | {"density": "normal"} | changes))

    colours = {**NORD_LIGHT, "bg": "#fff} body { background: url(//x) } :root {"}
    for bad, message in [
        (tokens(light=SimpleNamespace(**colours)), "not a colour"),
        (tokens(font="x; } body { x"), "font"),
        (tokens(density="1rem; } *"), "density"),
        (tokens(radius_px="8px; }"), "radius_px"),
        (tokens(radius_px=True), "radius_px"),
        (tokens(radius_px=1000), "radius_px"),
    ]:
        with pytest.raises(ValueError, match=message):
            theme_css(bad, mode="light")
