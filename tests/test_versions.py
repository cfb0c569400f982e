"""PEP 440 versions and ranges: parsing, normalisation and the compatibility question."""

from __future__ import annotations

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from plugport.versions import (
    ANY,
    canonical_version,
    is_compatible,
    normalize_specifier,
    parse_specifier,
    parse_version,
)

# --- parse_version ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("1.0.0", "1.0.0"),
        ("1.0.0-rc1", "1.0.0rc1"),
        ("2.1rc1", "2.1rc1"),
        ("v1.0", "1.0"),
        ("1.0-post1", "1.0.post1"),
        ("1.0_dev3", "1.0.dev3"),
        ("01.02", "1.2"),
        ("1.0+abc.1", "1.0+abc.1"),
    ],
)
def test_parse_version_accepts_pep440_and_normalises(text: str, canonical: str) -> None:
    assert str(parse_version(text)) == canonical


@pytest.mark.parametrize("text", ["1.0.x", "latest", "", "1..0", "one", "1.0.0 beta"])
def test_parse_version_rejects_with_the_value_and_examples(text: str) -> None:
    with pytest.raises(ValueError, match="is not a PEP 440 version") as info:
        parse_version(text)
    message = str(info.value)
    assert repr(text) in message
    assert "'1.0.0'" in message
    assert "'2.1rc1'" in message


def test_parse_version_error_hides_the_packaging_traceback() -> None:
    with pytest.raises(ValueError, match="PEP 440") as info:
        parse_version("nope")
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


# --- canonical_version -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spellings", "canonical"),
    [
        (("1", "1.0", "1.0.0", "1.0.0.0", "v1.0", "01.00", "1.0.0+local"), "1"),
        (("1.2", "1.2.0", "1.02.0.0"), "1.2"),
        (("1.0rc1", "1.0.0-rc1", "1.0.0.0c1"), "1rc1"),
        (("1.0.post0", "1.0.0-0"), "1.post0"),
        (("0", "0.0", "0.0.0"), "0"),
        (("1!1.0",), "1!1"),
    ],
)
def test_equal_versions_share_one_canonical_form(
    spellings: tuple[str, ...], canonical: str
) -> None:
    assert {canonical_version(s) for s in spellings} == {canonical}
    assert {canonical_version(Version(s)) for s in spellings} == {canonical}
    for spelling in spellings:  # the same question a pin asks: == matches every spelling
        assert Version(spelling) in SpecifierSet(f"=={canonical}")


@pytest.mark.parametrize(("a", "b"), [("1.0", "1.0.1"), ("1.0", "1.0rc1"), ("1.0", "1.0.post1")])
def test_different_versions_have_different_canonical_forms(a: str, b: str) -> None:
    assert canonical_version(a) != canonical_version(b)


def test_canonical_version_refuses_what_is_not_a_version() -> None:
    with pytest.raises(ValueError, match="not a PEP 440 version"):
        canonical_version("one")


# --- parse_specifier and normalize_specifier ----------------------------------------------------


@pytest.mark.parametrize("text", ["", "*", " * ", "   "])
def test_star_and_empty_mean_any_version(text: str) -> None:
    spec = parse_specifier(text)
    assert spec == SpecifierSet()
    assert spec.contains("0.0.1")
    assert normalize_specifier(text) == ANY == "*"


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        (">=2.3,<3", "<3,>=2.3"),
        (" >=2.3, <3 ", "<3,>=2.3"),
        (">= 1.0", ">=1.0"),
        (">=1.0,>=1.0", ">=1.0"),
        ("==1.4.*", "==1.4.*"),
        ("~=2.1", "~=2.1"),
        ("!=1.5,>1", "!=1.5,>1"),
    ],
)
def test_normalize_specifier_sorts_and_trims_clauses(text: str, canonical: str) -> None:
    assert normalize_specifier(text) == canonical
    # Normalising is idempotent, so stored ranges compare equal as text.
    assert normalize_specifier(canonical) == canonical


@pytest.mark.parametrize("text", [">>1", "=>1", "~=1", "latest", "1.0", ">=1.0,*", "^1.2"])
def test_parse_specifier_rejects_with_the_value_and_examples(text: str) -> None:
    with pytest.raises(ValueError, match="is not a PEP 440 version range") as info:
        parse_specifier(text)
    message = str(info.value)
    assert repr(text) in message
    assert "'>=1.2,<2'" in message
    assert "'*' for any version" in message


def test_normalize_specifier_raises_the_same_error() -> None:
    with pytest.raises(ValueError, match=r"'>>1' is not a PEP 440 version range"):
        normalize_specifier(">>1")


# --- is_compatible -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "specifier", "expected"),
    [
        ("2.3", ">=2.3,<3", True),
        ("2.9.9", ">=2.3,<3", True),
        ("3.0", ">=2.3,<3", False),
        ("2.2.9", ">=2.3,<3", False),
        ("1.4.7", "==1.4.*", True),
        ("1.5.0", "==1.4.*", False),
        ("2.4", "~=2.1", True),
        ("3.0", "~=2.1", False),
        # Pre-release hosts are compared like any other version.
        ("2.5rc1", ">=2", True),
        ("2.5.dev1", ">=2,<3", True),
        ("3.0rc1", "<3", False),
        ("2.0rc1", ">=2.0", False),
        ("2.0rc1", ">=2.0rc1", True),
        # '*' and '' admit everything, pre-releases included.
        ("0.0.1", "*", True),
        ("3.0.dev1", "*", True),
        ("9.9a1", "", True),
    ],
)
def test_is_compatible(version: str, specifier: str, expected: bool) -> None:
    assert is_compatible(version, specifier) is expected


def test_is_compatible_accepts_parsed_objects() -> None:
    assert is_compatible(Version("2.5rc1"), SpecifierSet(">=2"))
    assert not is_compatible(Version("1.9"), SpecifierSet(">=2"))
    assert is_compatible("2.0", SpecifierSet(">=2"))
    assert is_compatible(Version("2.0"), ">=2")


def test_is_compatible_rejects_bad_input_with_messages() -> None:
    with pytest.raises(ValueError, match=r"'2\.x' is not a PEP 440 version;"):
        is_compatible("2.x", ">=2")
    with pytest.raises(ValueError, match=r"'>>2' is not a PEP 440 version range"):
        is_compatible("2.0", ">>2")
