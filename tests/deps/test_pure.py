"""The pure pieces of plugins' PyPI dependencies: the ``[python]`` table, the engine raise,
``plugport.lock`` and what a wheel may hold."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.tags import Tag

from plugport import __version__
from plugport._engines import raise_engine, raised_spec
from plugport.deps.lockfile import Lock, LockedPackage, LockedWheel, parse_lock
from plugport.deps.wheels import inspect_wheel, wheel_problem
from plugport.errors import DependencyError, ManifestError
from plugport.manifest import PythonDependencies, parse_manifest
from plugport.testing.pypi import build_wheel

HEAD = 'name = "acme.md"\nversion = "1.0.0"\nentry = "main:Main"\n'
SHA = "ab" * 32


def manifest(python: str, engines: str = "") -> str:
    return HEAD + engines + "[python]\n" + python


# --- [python] ------------------------------------------------------------------------------


def test_python_table_is_normalised() -> None:
    parsed = parse_manifest(
        manifest('dependencies = ["Markdown >= 3.5", "Jinja2~=3.1"]\nrequires-python = ">=3.11"\n')
    )
    assert parsed.python.dependencies == ["markdown>=3.5", "jinja2~=3.1"]
    assert parsed.python.requires_python == ">=3.11"
    assert parse_manifest(HEAD).python.is_empty()


@pytest.mark.parametrize(
    ("python", "where", "words"),
    [
        ('dependencies = ["x @ https://e.com/x.whl"]', "python.dependencies[0]", "names a URL"),
        ('dependencies = ["plugport>=0.1"]', "python.dependencies[0]", "host's own package"),
        ('dependencies = ["a", "A>1"]', "python.dependencies", "more than one requirement"),
        ('dependencies = ["a b"]', "python.dependencies[0]", "not a PEP 508 requirement"),
        ('requires-python = "3.x"', "python.requires-python", "not a Python version range"),
        ('platforms = ["any"]', "python.platforms[0]", "not a wheel platform tag"),
        ('platforms = ["Linux x86"]', "python.platforms[0]", "not a wheel platform tag"),
        ('requires_python = ">=3"', "python.requires_python", "did you mean 'requires-python'"),
    ],
)
def test_python_table_refusals_name_the_field(python: str, where: str, words: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(manifest(python))
    [problem] = caught.value.problems
    assert problem.path == where
    assert words in problem.message


def test_the_json_schema_describes_the_table() -> None:
    from plugport.manifest import manifest_json_schema

    schema = manifest_json_schema()
    python = schema["$defs"]["PythonDependencies"]["properties"]
    assert set(python) == {"dependencies", "requires-python", "platforms"}


# --- engines ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "raised"),
    [
        ("", ">=0.2"),
        (">=0.1", ">=0.2"),
        (">=0.1,<1", ">=0.2,<1"),
        ("<1", ">=0.2,<1"),
        (">=0.3", None),
        ("==0.2.1", None),
        ("~=0.2", None),
    ],
)
def test_the_engine_floor_only_rises(current: str, raised: str | None) -> None:
    assert raised_spec(current, "0.2") == raised


def test_packing_raises_the_engine_and_keeps_the_authors_text() -> None:
    text = "# my plugin\n" + manifest('dependencies = ["markdown"]  # renders\n')
    new = raise_engine(text, tomllib.loads(text))
    assert new is not None
    assert new.startswith("# my plugin\n")
    assert '"markdown"]  # renders' in new
    assert tomllib.loads(new)["engines"] == {"plugport": ">=0.2"}
    inline = manifest('dependencies = ["x"]\n', engines='engines = { plugport = ">=0.1" }\n')
    assert tomllib.loads(raise_engine(inline, tomllib.loads(inline)) or "")["engines"] == {
        "plugport": ">=0.2"
    }
    assert raise_engine(HEAD, tomllib.loads(HEAD)) is None  # no [python]: nothing to raise


def test_a_table_from_a_newer_plugport_is_refused_by_name_and_version() -> None:
    text = HEAD + '[engines]\nplugport = ">=9.1"\n[gizmos]\nx = 1\n'
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text)
    [problem] = caught.value.problems
    assert problem.path == "gizmos"
    assert "[gizmos] is read by a newer Plugport" in problem.message
    assert ">=9.1" in problem.message
    assert __version__ in problem.message
    # Without an engine that excludes us, an unknown key is a plain typo.
    with pytest.raises(ManifestError, match="unknown key 'gizmos'"):
        parse_manifest(HEAD + "[gizmos]\nx = 1\n")


# --- plugport.lock ----------------------------------------------------------------------------


def a_lock() -> Lock:
    python = PythonDependencies(dependencies=["markdown>=3.5", "tinyfmt"])
    return Lock.for_inputs(
        python,
        [
            LockedPackage("tinyfmt", "1.1", (LockedWheel("tinyfmt-1.1-py3-none-any.whl", SHA, 9),)),
            LockedPackage(
                "markdown",
                "3.7",
                (
                    LockedWheel("markdown-3.7-cp311-cp311-manylinux_2_28_x86_64.whl", "cd" * 32, 5),
                    LockedWheel("markdown-3.7-py3-none-any.whl", "ef" * 32, 7),
                ),
            ),
        ],
    )


def test_the_lock_round_trips_and_is_sorted() -> None:
    lock = a_lock()
    assert [p.name for p in lock.packages] == ["markdown", "tinyfmt"]
    assert parse_lock(lock.dumps()) == lock
    assert lock.dumps() == parse_lock(lock.dumps()).dumps()


def test_a_lock_answers_its_manifest_until_the_manifest_changes() -> None:
    lock = a_lock()
    same = parse_manifest(manifest('dependencies = ["tinyfmt", "markdown>=3.5"]\n'))
    assert lock.stale_reasons(same) == []
    changed = parse_manifest(manifest('dependencies = ["markdown>=3.8", "tinyfmt"]\n'))
    reasons = lock.stale_reasons(changed)
    assert "added markdown>=3.8; removed markdown>=3.5" in reasons[0]
    assert any(
        "the lock pins markdown 3.7, which 'markdown>=3.8' does not allow" in r for r in reasons
    )
    python = parse_manifest(
        manifest('dependencies = ["markdown>=3.5", "tinyfmt"]\nrequires-python = ">=3.12"\n')
    )
    assert any("requires-python" in r for r in lock.stale_reasons(python))


def test_a_hand_edited_pin_that_conflicts_is_caught() -> None:
    text = (
        a_lock()
        .dumps()
        .replace('version = "3.7"', 'version = "3.4"')
        .replace("markdown-3.7", "markdown-3.4")
    )
    lock = parse_lock(text)
    reasons = lock.stale_reasons(
        parse_manifest(manifest('dependencies = ["markdown>=3.5", "tinyfmt"]\n'))
    )
    assert reasons == [
        "the lock pins markdown 3.4, which 'markdown>=3.5' does not allow (a conflicting pin)"
    ]


def test_the_wheel_for_this_platform_is_chosen_by_tag_preference() -> None:
    lock = a_lock()
    linux = [Tag("cp311", "cp311", "manylinux_2_28_x86_64"), Tag("py3", "none", "any")]
    assert [w.filename for w in lock.select(linux)] == [
        "markdown-3.7-cp311-cp311-manylinux_2_28_x86_64.whl",
        "tinyfmt-1.1-py3-none-any.whl",
    ]
    mac = [Tag("cp311", "cp311", "macosx_11_0_arm64"), Tag("py3", "none", "any")]
    assert lock.select(mac)[0].filename == "markdown-3.7-py3-none-any.whl"


def test_no_wheel_for_this_platform_names_the_package() -> None:
    python = PythonDependencies(dependencies=["fastthing"], platforms=["win_amd64"])
    lock = Lock.for_inputs(
        python,
        [
            LockedPackage(
                "fastthing",
                "2.0",
                (LockedWheel("fastthing-2.0-cp311-cp311-win_amd64.whl", SHA, 1),),
            )
        ],
    )
    with pytest.raises(
        DependencyError, match=r"acme.x 1.0: no wheel of fastthing 2.0 runs on this platform"
    ) as caught:
        lock.select([Tag("py3", "none", "any")], plugin="acme.x 1.0")
    assert caught.value.package == "fastthing"
    assert "add this platform to [python] platforms" in str(caught.value)


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (("lock-version = 1", "lock-version = 7"), "lock-version is 7"),
        (('sha256 = "' + SHA + '"', 'sha256 = "xyz"'), "sha256 is not 64 lowercase hex digits"),
        (("tinyfmt-1.1-py3-none-any.whl", "tinyfmt-1.1.tar.gz"), "is not a wheel; only wheels"),
        (("tinyfmt-1.1-py3-none-any.whl", "../evil-1.1-py3-none-any.whl"), "is not a file name"),
        (("tinyfmt-1.1-py3-none-any.whl", "other-1.1-py3-none-any.whl"), "is not tinyfmt 1.1"),
        (("size = 9", "size = -1"), "size must be a positive byte count"),
        (("[[package]]", "[[package]]\n[[package]]"), "must be a non-empty string"),
        (("lock-version", "lock version"), "not valid TOML"),
    ],
)
def test_a_damaged_lock_is_refused_naming_the_entry(edit: tuple[str, str], words: str) -> None:
    text = a_lock().dumps().replace(*edit)
    with pytest.raises(DependencyError, match=r"plugport\.lock: ") as caught:
        parse_lock(text)
    assert words in str(caught.value)


# --- wheels ------------------------------------------------------------------------------------


def test_a_good_wheel_is_described(tmp_path: Path) -> None:
    path = build_wheel(
        tmp_path,
        "tinyfmt",
        "1.1",
        {
            "tinyfmt/__init__.py": "X = 1\n",
            "tinyfmt_extra.py": "",
            "tinyfmt/_speed.cpython-311-x86_64-linux-gnu.so": b"\x7fELF",
        },
        requires=("tinyutil>=1",),
        tag="cp311-cp311-manylinux_2_28_x86_64",
    )
    facts = inspect_wheel(path)
    assert (facts.name, facts.version) == ("tinyfmt", "1.1")
    assert facts.top_level == ("tinyfmt", "tinyfmt_extra")
    assert facts.compiled == ("tinyfmt/_speed.cpython-311-x86_64-linux-gnu.so",)
    assert facts.requires == ("tinyutil>=1",)
    assert not facts.pure


@pytest.mark.parametrize(
    ("files", "raw", "words"),
    [
        ({"evil.pth": "import os\n"}, {}, "member 'evil.pth' is refused: a .pth file"),
        ({}, {"../../etc/x.py": b""}, "member '../../etc/x.py' is refused: '..' component"),
        ({}, {"/abs.py": b""}, "member '/abs.py' is refused: absolute path"),
        ({"json/__init__.py": ""}, {}, "would shadow json"),
        ({"plugport/sdk.py": ""}, {}, "would shadow plugport"),
        ({"tinyfmt.data/purelib/asyncio/x.py": ""}, {}, "would shadow asyncio"),
    ],
)
def test_a_wheel_that_could_reach_beyond_the_plugin_is_refused(
    tmp_path: Path, files: dict[str, str], raw: dict[str, bytes], words: str
) -> None:
    path = build_wheel(tmp_path, "tinyfmt", "1.0", files, raw_members=raw)
    with pytest.raises(DependencyError) as caught:
        inspect_wheel(path)
    assert words in str(caught.value)
    assert caught.value.package == "tinyfmt"
    assert "tinyfmt-1.0-py3-none-any.whl" in str(caught.value)


def test_sdists_and_odd_names_are_not_wheels() -> None:
    assert "source distribution; only wheels are reproducible" in (
        wheel_problem("x-1.0.tar.gz") or ""
    )
    assert "is not a wheel" in (wheel_problem("x.whl") or "")
    assert wheel_problem("x-1.0-py3-none-any.whl") is None


def test_a_compression_bomb_wheel_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    path = build_wheel(
        tmp_path,
        "bomb",
        "1.0",
        {"bomb/__init__.py": "", "bomb/zeros.txt": b"\0" * (20 * 1024 * 1024)},
    )
    with pytest.raises(
        DependencyError, match=r"member 'bomb/zeros.txt' is refused: it expands"
    ) as caught:
        inspect_wheel(path)
    assert caught.value.package == "bomb"
