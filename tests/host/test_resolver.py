"""The host's resolver: which versions it chooses, the order it installs them in, and how it
explains a request that cannot be met. Pure data in and out, so every test is in memory."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

import pytest

from plugport.errors import InvalidInputError, NotFoundError, ResolutionError
from plugport.host.resolver import (
    Candidate,
    MemorySource,
    Requirement,
    Resolution,
    parse_requirement,
    resolve,
)

ENV = {"plugport": "0.4.0", "myapp": "2.4.0"}


def cand(
    ident: str,
    deps: Mapping[str, str] | None = None,
    engines: Mapping[str, str] | None = None,
    *,
    yanked: bool = False,
) -> Candidate:
    name, version = ident.split(" ")
    return Candidate(name, version, dict(deps or {}), dict(engines or {}), yanked=yanked)


def run(
    candidates: Sequence[Candidate],
    *requirements: str,
    environment: Mapping[str, str] = ENV,
    installed: Mapping[str, str] | None = None,
    allow_prereleases: bool = False,
    max_rounds: int = 2000,
) -> Resolution:
    return resolve(
        [parse_requirement(r) for r in requirements],
        MemorySource(candidates),
        environment=environment,
        installed=installed or {},
        allow_prereleases=allow_prereleases,
        max_rounds=max_rounds,
    )


def chosen(
    candidates: Sequence[Candidate], *requirements: str, **options: object
) -> dict[str, str]:
    resolution = run(candidates, *requirements, **options)  # type: ignore[arg-type]
    return {name: c.version for name, c in resolution.chosen.items()}


def failure(
    candidates: Sequence[Candidate], *requirements: str, **options: object
) -> ResolutionError:
    with pytest.raises(ResolutionError) as info:
        run(candidates, *requirements, **options)  # type: ignore[arg-type]
    # resolvelib's exceptions stay inside the resolver, not even chained.
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
    return info.value


HELLO = [
    cand("acme.hello 1.1"),
    cand("acme.hello 2.0"),
    cand("acme.hello 0.9"),
    cand("acme.hello 1.0"),
]


# --- choosing one plugin ------------------------------------------------------------------------


def test_the_newest_version_is_chosen_whatever_order_the_source_lists() -> None:
    assert chosen(HELLO, "acme.hello") == {"acme.hello": "2.0"}
    assert chosen(HELLO[::-1], "acme.hello") == {"acme.hello": "2.0"}


@pytest.mark.parametrize(
    ("requirement", "version"),
    [
        ("acme.hello<2", "1.1"),
        ("acme.hello==1.0", "1.0"),
        ("acme.hello==1.0.0", "1.0"),
        ("acme.hello~=1.0", "1.1"),
        ("acme.hello>=1,<1.1", "1.0"),
        ("acme.hello==1.*", "1.1"),
        ("acme.hello!=2.0", "1.1"),
        ("acme.hello *", "2.0"),
    ],
)
def test_ranges_and_exact_pins(requirement: str, version: str) -> None:
    assert chosen(HELLO, requirement) == {"acme.hello": version}


def test_requirements_on_the_same_plugin_are_combined() -> None:
    assert chosen(HELLO, "acme.hello>=1", "acme.hello<2", "acme.hello!=1.1") == {
        "acme.hello": "1.0"
    }


def test_an_installed_version_that_fits_is_kept_rather_than_upgraded() -> None:
    assert chosen(HELLO, "acme.hello", installed={"acme.hello": "1.0"}) == {"acme.hello": "1.0"}
    # 1.0.0 and 1.0 are the same version.
    assert chosen(HELLO, "acme.hello", installed={"acme.hello": "1.0.0"}) == {"acme.hello": "1.0"}


def test_an_installed_version_that_does_not_fit_is_upgraded_to_the_newest() -> None:
    assert chosen(HELLO, "acme.hello>=1.1", installed={"acme.hello": "1.0"}) == {
        "acme.hello": "2.0"
    }
    # Installed from somewhere the source does not know: the source's newest.
    assert chosen(HELLO, "acme.hello", installed={"acme.hello": "1.5"}) == {"acme.hello": "2.0"}
    broken = [cand("acme.hello 2.0"), cand("acme.hello 1.0", engines={"myapp": ">=3"})]
    assert chosen(broken, "acme.hello", installed={"acme.hello": "1.0"}) == {"acme.hello": "2.0"}


def test_an_installed_dependency_is_kept_too() -> None:
    plugins = [
        cand("acme.app 1.0", {"acme.lib": ">=1"}),
        cand("acme.lib 1.0"),
        cand("acme.lib 1.5"),
    ]
    assert chosen(plugins, "acme.app", installed={"acme.lib": "1.0"}) == {
        "acme.lib": "1.0",
        "acme.app": "1.0",
    }
    assert chosen(plugins, "acme.app") == {"acme.lib": "1.5", "acme.app": "1.0"}


# --- yanked versions and pre-releases -----------------------------------------------------------

YANKED = [cand("acme.aa 1.0"), cand("acme.aa 1.1"), cand("acme.aa 2.0", yanked=True)]


def test_yanked_versions_are_skipped() -> None:
    assert chosen(YANKED, "acme.aa") == {"acme.aa": "1.1"}
    assert chosen(YANKED, "acme.aa", installed={"acme.aa": "2.0"}) == {"acme.aa": "1.1"}


@pytest.mark.parametrize("requirement", ["acme.aa==2.0", "acme.aa===2.0", "acme.aa==2.0,>=1"])
def test_a_yanked_version_pinned_exactly_is_chosen(requirement: str) -> None:
    assert chosen(YANKED, requirement) == {"acme.aa": "2.0"}


def test_a_dependency_may_pin_a_yanked_version() -> None:
    plugins = [*YANKED, cand("acme.bb 1.0", {"acme.aa": "==2.0"})]
    assert chosen(plugins, "acme.bb") == {"acme.aa": "2.0", "acme.bb": "1.0"}


def test_a_range_that_only_a_yanked_version_meets_says_how_to_get_it() -> None:
    error = failure(YANKED, "acme.aa>=2")
    assert str(error) == (
        "cannot install acme.aa: you asked for acme.aa>=2, but every version of acme.aa that "
        "matches >=2 is yanked or a pre-release (acme.aa 2.0 is yanked); ask for one exactly, "
        "e.g. acme.aa==2.0"
    )
    assert error.conflicts == ("acme.aa>=2 (asked for by you)",)
    assert Requirement("acme.aa", "==2.0").pinned
    assert not Requirement("acme.aa", "==2.*").pinned
    assert not Requirement("acme.aa", ">=2").pinned


PRE = [cand("acme.aa 1.0"), cand("acme.aa 2.0rc1"), cand("acme.aa 2.0.dev1")]


@pytest.mark.parametrize(
    ("requirements", "options", "version"),
    [
        (["acme.aa"], {}, "1.0"),
        (["acme.aa"], {"allow_prereleases": True}, "2.0rc1"),
        (["acme.aa>=2.0rc1"], {}, "2.0rc1"),
        (["acme.aa==2.0rc1"], {}, "2.0rc1"),
        (["acme.aa==2.0.dev1"], {}, "2.0.dev1"),
        # One requirement naming a pre-release admits them for every range on that plugin.
        (["acme.aa>=1", "acme.aa>=2.0.dev0"], {}, "2.0rc1"),
        (["acme.aa"], {"installed": {"acme.aa": "2.0rc1"}}, "1.0"),
        (["acme.aa"], {"installed": {"acme.aa": "2.0rc1"}, "allow_prereleases": True}, "2.0rc1"),
    ],
)
def test_pre_releases_only_when_allowed_or_named(
    requirements: list[str], options: dict[str, object], version: str
) -> None:
    assert chosen(PRE, *requirements, **options) == {"acme.aa": version}


def test_a_range_that_only_pre_releases_meet_suggests_allowing_them() -> None:
    error = failure(PRE, "acme.aa>=1.5")
    assert str(error) == (
        "cannot install acme.aa: you asked for acme.aa>=1.5, but every version of acme.aa that "
        "matches >=1.5 is yanked or a pre-release (acme.aa 2.0rc1 is a pre-release; "
        "acme.aa 2.0.dev1 is a pre-release); ask for one exactly, e.g. acme.aa==2.0rc1, or allow "
        "pre-releases"
    )


# --- engines ------------------------------------------------------------------------------------

ENGINES = [
    cand("acme.aa 3.0", engines={"myapp": ">=3"}),
    cand("acme.aa 2.0", engines={"plugport": ">=9", "myapp": ">=2"}),
    cand("acme.aa 1.0", engines={"plugport": ">=0.4", "myapp": ">=2,<3", "otherapp": ">=99"}),
]


def test_engines_rule_out_versions_for_plugport_and_the_host_app() -> None:
    assert chosen(ENGINES, "acme.aa") == {"acme.aa": "1.0"}


def test_engines_for_apps_not_present_constrain_nothing() -> None:
    assert chosen(ENGINES, "acme.aa", environment={"plugport": "0.4.0"}) == {"acme.aa": "3.0"}
    assert chosen(ENGINES, "acme.aa", environment={"plugport": "9.1"}) == {"acme.aa": "3.0"}
    only_other = [cand("acme.bb 1.0", engines={"otherapp": ">=99", "thirdapp": "<0"})]
    assert chosen(only_other, "acme.bb") == {"acme.bb": "1.0"}


def test_no_version_for_this_host_names_the_host_and_each_versions_need() -> None:
    error = failure(ENGINES[:2], "acme.aa")
    assert str(error) == (
        "cannot install acme.aa: you asked for acme.aa, but no version of acme.aa works with "
        "myapp 2.4.0 and plugport 0.4.0 (acme.aa 3.0 needs myapp>=3; acme.aa 2.0 needs plugport>=9)"
    )
    assert error.conflicts == ("acme.aa (asked for by you)",)


def test_a_dependency_no_version_of_which_fits_the_host_names_the_dependent() -> None:
    plugins = [cand("acme.bb 1.0.0", {"acme.aa": ">=2"}), *ENGINES]
    error = failure(plugins, "acme.bb")
    assert str(error) == (
        "cannot install acme.bb: acme.bb 1.0.0 needs acme.aa>=2, but no version of acme.aa works "
        "with myapp 2.4.0 and plugport 0.4.0 (acme.aa 3.0 needs myapp>=3; acme.aa 2.0 needs "
        "plugport>=9)"
    )
    assert error.conflicts == ("acme.aa>=2 (needed by acme.bb 1.0.0)",)


# --- graphs -------------------------------------------------------------------------------------


def test_a_diamond_takes_the_highest_version_both_sides_accept() -> None:
    plugins = [
        cand("acme.aa 1.0", {"acme.bb": "*", "acme.cc": ">=1"}),
        cand("acme.bb 1.0", {"acme.dd": ">=1,<3"}),
        cand("acme.cc 1.0", {"acme.dd": ">=2"}),
        *(cand(f"acme.dd {v}") for v in ("1.0", "2.0", "2.5", "3.0")),
    ]
    resolution = run(plugins, "acme.aa")
    assert resolution.order == ("acme.dd", "acme.bb", "acme.cc", "acme.aa")
    assert {n: c.version for n, c in resolution.chosen.items()} == {
        "acme.dd": "2.5",
        "acme.bb": "1.0",
        "acme.cc": "1.0",
        "acme.aa": "1.0",
    }
    assert list(resolution.chosen) == list(resolution.order)
    assert resolution.chosen["acme.bb"] is plugins[1]


def test_a_conflict_names_both_requirements_and_who_asked() -> None:
    plugins = [cand("acme.bb 1.0.0", {"acme.aa": ">=2"}), cand("acme.aa 1.0"), cand("acme.aa 2.0")]
    error = failure(plugins, "acme.bb", "acme.aa<2")
    assert (
        str(error)
        == "cannot install acme.bb: acme.bb 1.0.0 needs acme.aa>=2, but you asked for acme.aa<2"
    )
    assert error.conflicts == (
        "acme.aa>=2 (needed by acme.bb 1.0.0)",
        "acme.aa<2 (asked for by you)",
    )


def test_a_conflict_between_two_dependencies_names_both_dependents() -> None:
    plugins = [
        cand("acme.top 1.0", {"acme.left": "*", "acme.right": "*"}),
        cand("acme.left 1.0", {"acme.dd": "<1"}),
        cand("acme.right 1.0", {"acme.dd": ">=1"}),
        cand("acme.dd 0.5"),
        cand("acme.dd 1.0"),
    ]
    error = failure(plugins, "acme.top")
    assert str(error) == (
        "cannot install acme.left: acme.left 1.0 needs acme.dd<1, but acme.right 1.0 needs "
        "acme.dd>=1"
    )
    assert error.conflicts == (
        "acme.dd<1 (needed by acme.left 1.0)",
        "acme.dd>=1 (needed by acme.right 1.0)",
    )


def test_a_conflict_below_a_dependency_is_traced_to_where_it_happens() -> None:
    plugins = [
        cand("acme.top 1.0", {"acme.mid": "*"}),
        cand("acme.mid 2.0", {"acme.dd": "<1"}),
        cand("acme.mid 1.0", {"acme.dd": "<1"}),
        cand("acme.dd 0.5"),
        cand("acme.dd 1.0"),
    ]
    error = failure(plugins, "acme.top", "acme.dd>=1")
    assert str(error) == (
        "cannot install acme.top: acme.mid 2.0 needs acme.dd<1, but you asked for acme.dd>=1 "
        "(acme.top 1.0 needs acme.mid)"
    )
    assert error.conflicts == (
        "acme.dd<1 (needed by acme.mid 2.0)",
        "acme.dd>=1 (asked for by you)",
    )


def test_a_requirement_passed_on_behalf_of_an_installed_plugin_is_named_as_such() -> None:
    plugins = [cand("acme.new 1.0", {"acme.dd": ">=1"}), cand("acme.dd 0.5"), cand("acme.dd 1.0")]
    with pytest.raises(ResolutionError) as info:
        resolve(
            [Requirement("acme.new"), Requirement("acme.dd", "<1", parent="acme.old 1.0")],
            MemorySource(plugins),
            environment=ENV,
        )
    assert str(info.value) == (
        "cannot install acme.new: acme.new 1.0 needs acme.dd>=1, but acme.old 1.0 needs acme.dd<1"
    )


def test_two_user_requirements_that_exclude_each_other() -> None:
    error = failure(HELLO, "acme.hello>=2", "acme.hello<1")
    assert (
        str(error) == "cannot install acme.hello: you asked for both acme.hello<1 and acme.hello>=2"
    )


def test_a_version_outside_every_known_one_lists_what_exists() -> None:
    error = failure(HELLO, "acme.hello>=5")
    assert str(error) == (
        "cannot install acme.hello: you asked for acme.hello>=5, but no version of acme.hello "
        "matches >=5 (known: 2.0, 1.1, 1.0, 0.9)"
    )


def test_backtracking_takes_an_older_version_when_the_newest_conflicts() -> None:
    plugins = [
        cand("acme.aa 1.0", {"acme.bb": "*", "acme.dd": ">=1"}),
        cand("acme.bb 2.0", {"acme.dd": "<1"}),
        cand("acme.bb 1.0", {"acme.dd": ">=1"}),
        cand("acme.dd 0.5"),
        cand("acme.dd 1.0"),
    ]
    assert chosen(plugins, "acme.aa") == {"acme.dd": "1.0", "acme.bb": "1.0", "acme.aa": "1.0"}


def test_a_cycle_resolves_and_is_ordered_from_its_first_name() -> None:
    plugins = [
        cand("acme.bb 1.0", {"acme.aa": ">=1"}),
        cand("acme.aa 1.0", {"acme.bb": ">=1"}),
        cand("acme.cc 1.0", {"acme.bb": "*"}),
        cand("acme.zz 1.0", {"acme.cc": "*"}),
    ]
    resolution = run(plugins, "acme.zz")
    assert resolution.order == ("acme.aa", "acme.bb", "acme.cc", "acme.zz")
    assert {n: c.version for n, c in resolution.chosen.items()} == dict.fromkeys(
        resolution.order, "1.0"
    )


def test_a_cycle_that_excludes_the_newest_backtracks() -> None:
    plugins = [
        cand("acme.aa 2.0", {"acme.bb": ">=2"}),
        cand("acme.aa 1.0", {"acme.bb": "*"}),
        cand("acme.bb 2.0", {"acme.aa": "<2"}),
        cand("acme.bb 1.0", {"acme.aa": "*"}),
    ]
    assert chosen(plugins, "acme.aa", "acme.bb>=2") == {"acme.aa": "1.0", "acme.bb": "2.0"}


def test_an_unknown_plugin_is_named_with_who_asked_for_it() -> None:
    error = failure(HELLO, "acme.nope")
    assert str(error) == (
        "cannot install acme.nope: you asked for acme.nope, but no plugin named 'acme.nope' is "
        "known"
    )
    plugins = [cand("acme.bb 1.0", {"acme.gone": ">=1"})]
    error = failure(plugins, "acme.bb")
    assert str(error) == (
        "cannot install acme.bb: acme.bb 1.0 needs acme.gone>=1, but no plugin named "
        "'acme.gone' is known"
    )
    assert error.conflicts == ("acme.gone>=1 (needed by acme.bb 1.0)",)


def test_an_unknown_dependency_of_the_newest_version_falls_back_to_an_older_one() -> None:
    plugins = [cand("acme.bb 2.0", {"acme.gone": "*"}), cand("acme.bb 1.0")]
    assert chosen(plugins, "acme.bb") == {"acme.bb": "1.0"}


def test_nothing_asked_nothing_chosen() -> None:
    assert run(HELLO) == Resolution(chosen={}, order=())


def _generated(size: int, seed: int) -> tuple[list[Candidate], dict[str, str]]:
    """A chain gen.p000 -> gen.p001 -> ... plus random extra edges forward, three versions of
    each node; some edges cap the target below 3.0. Returns the candidates and the answer."""
    rng = random.Random(seed)  # noqa: S311 -- a reproducible graph, not a secret
    names = [f"gen.p{i:03d}" for i in range(size)]
    deps: dict[str, dict[str, str]] = {n: {} for n in names}
    capped: set[str] = set()
    for i, name in enumerate(names[:-1]):
        deps[name][names[i + 1]] = ">=1"
        for j in rng.sample(range(i + 1, size), k=min(2, size - i - 1)):
            if rng.random() < 0.2:
                deps[name][names[j]] = "<3"
                capped.add(names[j])
            else:
                deps[name].setdefault(names[j], "*")
    candidates = [
        cand(f"{name} {version}", deps[name], {"plugport": ">=0.4"})
        for name in names
        for version in ("1.0", "2.0", "3.0")
    ]
    return candidates, {n: "2.0" if n in capped else "3.0" for n in names}


ROUNDS_FOR_200 = 250


def test_a_200_plugin_graph_resolves_without_backtracking() -> None:
    """Rounds, not seconds (a loaded machine makes timings lie): one round per plugin plus a
    little, where exponential backtracking would need far more than this cap."""
    candidates, expected = _generated(200, seed=7)
    resolution = run(candidates, "gen.p000", max_rounds=ROUNDS_FOR_200)
    assert {n: c.version for n, c in resolution.chosen.items()} == expected
    assert resolution.order == tuple(sorted(expected, reverse=True))  # the chain fixes the order


def test_an_impossible_200_plugin_graph_fails_quickly_and_readably() -> None:
    candidates, expected = _generated(200, seed=7)
    assert expected["gen.p199"] == "2.0"  # capped below 3.0 deep down the chain
    error = failure(candidates, "gen.p000", "gen.p199>=3", max_rounds=ROUNDS_FOR_200)
    # Every version of every plugin above the cap is ruled out, so the message follows the
    # chain down to the clash instead of blaming gen.p000's direct dependency.
    assert str(error) == (
        "cannot install gen.p000: gen.p174 3.0 needs gen.p199<3, but you asked for gen.p199>=3 "
        "(gen.p000 3.0 needs gen.p174 through gen.p001, …, gen.p173)"
    )
    assert error.conflicts == (
        "gen.p199<3 (needed by gen.p174 3.0)",
        "gen.p199>=3 (asked for by you)",
    )


def test_too_many_rounds_is_a_resolution_error_naming_max_rounds() -> None:
    candidates, _ = _generated(50, seed=1)
    error = failure(candidates, "gen.p000", max_rounds=3)
    assert str(error) == (
        "gave up choosing versions for gen.p000 after 3 rounds (max_rounds) of backtracking; pin "
        "some versions exactly or allow more rounds"
    )
    with pytest.raises(InvalidInputError, match="max_rounds must be at least 1"):
        run(candidates, "gen.p000", max_rounds=0)


def test_the_same_input_gives_the_same_resolution() -> None:
    candidates, _ = _generated(60, seed=3)
    first = run(candidates, "gen.p000")
    shuffled = list(candidates)
    random.Random(5).shuffle(shuffled)  # noqa: S311 -- a reproducible order, not a secret
    assert run(shuffled, "gen.p000") == first
    assert run(candidates, "gen.p000") == first


# --- inputs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name", "specifier"),
    [
        ("acme.hello", "acme.hello", "*"),
        ("acme.hello==1.2.0", "acme.hello", "==1.2.0"),
        ("acme.hello>=1,<2", "acme.hello", "<2,>=1"),
        ("acme.hello >= 1", "acme.hello", ">=1"),
        ("  acme.hello  ", "acme.hello", "*"),
        ("acme.hello *", "acme.hello", "*"),
        ("acme-co.hello-world~=2.1", "acme-co.hello-world", "~=2.1"),
        ("acme.hello!=1.5,>=1", "acme.hello", "!=1.5,>=1"),
    ],
)
def test_parse_requirement_accepts(text: str, name: str, specifier: str) -> None:
    assert parse_requirement(text) == Requirement(name, specifier, parent=None)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "is not a requirement; a requirement is a plugin name"),
        (">=1", "is not a requirement; a requirement is a plugin name"),
        ("hello", "is not a plugin name"),
        ("Acme.Hello", "is not a plugin name"),
        ("acme.hello[extra]", "is not a plugin name"),
        ("acme.hello 1.2.0", "is not a PEP 440 version range"),
        ("acme.hello>=one", "is not a PEP 440 version range"),
        ("acme.hello=>1", "is not a PEP 440 version range"),
    ],
)
def test_parse_requirement_rejects_and_shows_the_shape(text: str, why: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_requirement(text)
    message = str(info.value)
    assert message.startswith(f"{text!r} is not a requirement")
    assert why in message
    assert "e.g. 'acme.hello', 'acme.hello==1.2.0' or 'acme.hello>=1,<2'" in message


def test_requirement_normalises_its_range() -> None:
    assert Requirement("acme.aa", ">= 1, <2").specifier == "<2,>=1"
    assert Requirement("acme.aa", "").specifier == "*"
    assert str(Requirement("acme.aa", ">=1")) == "acme.aa>=1"
    with pytest.raises(InvalidInputError, match=r"acme\.aa: 'nope' is not a PEP 440 version range"):
        Requirement("acme.aa", "nope")


def test_bad_environment_versions_are_input_errors() -> None:
    with pytest.raises(InvalidInputError, match=r"environment: myapp: 'latest' is not a PEP 440"):
        run(HELLO, "acme.hello", environment={"myapp": "latest"})
    with pytest.raises(InvalidInputError, match=r"installed: acme\.hello: 'x' is not a PEP 440"):
        run(HELLO, "acme.hello", installed={"acme.hello": "x"})


def test_memory_source_raises_not_found_for_an_unknown_plugin() -> None:
    source = MemorySource(HELLO)
    assert {c.version for c in source.versions("acme.hello")} == {"0.9", "1.0", "1.1", "2.0"}
    with pytest.raises(NotFoundError):
        source.versions("acme.nope")
