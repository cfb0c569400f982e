"""Why a resolution failed, in plain words: which requirements clash and who asked for each.

Kept apart from the search so the wording can grow without touching the rules; it asks the
same judge the search used, so an explanation never disagrees with the decision it explains.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple, Protocol

from plugport.host.candidates import Candidate, Requirement
from plugport.versions import ANY

__all__ = ["Judge", "Rejection", "explain"]

_MAX_LISTED = 5  # versions or reasons quoted in one message before "and N more"


class Rejection(NamedTuple):
    """Why one candidate cannot be chosen for the requirements on its name."""

    kind: str  # "range", "engine", "dependency", "yanked" or "pre-release"
    text: str  # "acme.a 3.0 needs myapp>=3"
    engines: tuple[str, ...] = ()  # "engine": the environment keys it does not admit
    requirement: Requirement | None = None  # "dependency": the need that no version meets


class Judge(Protocol):
    """The rules the search applied, asked again to explain a failure."""

    @property
    def environment(self) -> Mapping[str, str]: ...

    def versions(self, name: str) -> Sequence[Candidate] | None:
        """Newest first; ``None`` when no plugin has that name."""
        ...

    def reject(self, candidate: Candidate, requirements: Sequence[Requirement]) -> Rejection | None:
        """Why ``candidate`` cannot be chosen, or ``None`` when it can."""
        ...

    def asked(self, name: str) -> list[Requirement]:
        """The user's own requirements on ``name``."""
        ...


class _Finding(NamedTuple):
    detail: str  # "acme.b 1.0.0 needs acme.a>=2, but you asked for acme.a<2"
    involved: list[Requirement]  # the requirements in conflict
    deeper: Requirement | None = None  # every version fails on this dependency: look there


def explain(causes: Iterable[Requirement], judge: Judge) -> tuple[str, tuple[str, ...]]:
    """The message for a failed resolution and the requirements in conflict, from the
    requirements resolvelib blamed (it may blame more than the ones that clash)."""
    by_name: dict[str, list[Requirement]] = {}
    for requirement in causes:
        found = by_name.setdefault(requirement.name, [])
        if requirement not in found:
            found.append(requirement)
    messages: list[str] = []
    conflicts: list[str] = []
    for name in sorted(by_name):
        # Dependencies first, so the message starts from the plugin that cannot be installed.
        ordered = sorted(by_name[name], key=lambda r: (r.parent is None, r.parent or "", str(r)))
        message, involved = _trace(name, ordered, judge)
        messages.append(message)
        conflicts.extend(_conflict(r) for r in involved)
    return "\n".join(messages), tuple(conflicts)


def _trace(
    name: str, requirements: list[Requirement], judge: Judge
) -> tuple[str, list[Requirement]]:
    """Follow 'every version fails on a dependency' down to the conflict underneath, and say
    which chain of plugins led there."""
    finding = _find(name, requirements, judge)
    subject = _subject(finding.involved[0])
    via: list[str] = []  # "gen.p000 3.0", ...: the versions whose dependency led deeper
    seen = {name}
    while finding.deeper is not None and finding.deeper.name not in seen:
        need = finding.deeper
        seen.add(need.name)
        via.append(need.parent or "")
        finding = _find(need.name, [need, *judge.asked(need.name)], judge)
    suffix = ""
    if len(via) > 1:
        through = [v.split(" ", 1)[0] for v in via[1:-1]]
        listed = ", ".join(through if len(through) <= 3 else [through[0], "…", through[-1]])
        suffix = f" ({via[0]} needs {via[-1].split(' ', 1)[0]}" + (
            f" through {listed})" if through else ")"
        )
    return f"cannot install {subject}: {finding.detail}{suffix}", finding.involved


def _find(name: str, requirements: list[Requirement], judge: Judge) -> _Finding:
    versions = judge.versions(name)
    if versions is None:
        asked = " and ".join(_who(r) for r in requirements)
        return _Finding(f"{asked}, but no plugin named {name!r} is known", requirements)
    for requirement in requirements:
        rejected = [
            (c, why) for c in versions if (why := judge.reject(c, [requirement])) is not None
        ]
        if len(rejected) == len(versions):
            return _nothing_fits(name, requirement, versions, rejected, judge)
    for index, one in enumerate(requirements):
        for other in requirements[index + 1 :]:
            if all(judge.reject(c, [one, other]) is not None for c in versions):
                if one.parent is None and other.parent is None:
                    return _Finding(f"you asked for both {one} and {other}", [one, other])
                return _Finding(f"{_who(one)}, but {_who(other)}", [one, other])
    asked = "; ".join(_who(r) for r in requirements)
    if all(judge.reject(c, requirements) is not None for c in versions):
        return _Finding(f"{asked}; no version of {name} meets all of these", requirements)
    clash = f"every version of {name} that meets them clashes with other plugins' needs"
    return _Finding(f"{asked}; {clash}", requirements)


def _nothing_fits(
    name: str,
    requirement: Requirement,
    versions: Sequence[Candidate],
    rejected: list[tuple[Candidate, Rejection]],
    judge: Judge,
) -> _Finding:
    def found(why: str, deeper: Requirement | None = None) -> _Finding:
        return _Finding(f"{_who(requirement)}, but {why}", [requirement], deeper)

    if not versions:
        return found(f"{name} has no published versions")
    in_range = [(c, r) for c, r in rejected if r.kind != "range"]
    if not in_range:
        known = _listing([c.version for c in versions])
        return found(f"no version of {name} matches {requirement.specifier} (known: {known})")
    reasons = _listing([r.text for _, r in in_range], separator="; ")
    if all(r.kind == "dependency" for _, r in in_range):
        return found(
            f"no version of {name} can be installed ({reasons})", in_range[0][1].requirement
        )
    engines = list(dict.fromkeys(e for _, r in in_range for e in r.engines))
    if engines:
        env = " and ".join(f"{e} {judge.environment[e]}" for e in engines)
        return found(f"no version of {name} works with {env} ({reasons})")
    where = "" if requirement.specifier == ANY else f" that matches {requirement.specifier}"
    hint = f"ask for one exactly, e.g. {name}=={in_range[0][0].version}"
    if any(r.kind == "pre-release" for _, r in in_range):
        hint += ", or allow pre-releases"
    return found(f"every version of {name}{where} is yanked or a pre-release ({reasons}); {hint}")


def _listing(items: list[str], separator: str = ", ") -> str:
    shown = separator.join(items[:_MAX_LISTED])
    more = len(items) - _MAX_LISTED
    return f"{shown}{separator}and {more} more" if more > 0 else shown


def _who(requirement: Requirement) -> str:
    if requirement.parent is None:
        return f"you asked for {requirement}"
    return f"{requirement.parent} needs {requirement}"


def _subject(requirement: Requirement) -> str:
    """The plugin the user cannot have: the dependent, or the plugin itself if asked for."""
    if requirement.parent is None:
        return requirement.name
    return requirement.parent.split(" ", 1)[0]


def _conflict(requirement: Requirement) -> str:
    if requirement.parent is None:
        return f"{requirement} (asked for by you)"
    return f"{requirement} (needed by {requirement.parent})"
