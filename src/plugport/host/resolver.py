"""Choose one version of every plugin an install needs, so that every requirement, every engine
range and the yank and pre-release rules hold at once.

Pure data in, data out: candidates come from a :class:`CandidateSource` (a registry index, local
archives) and the backtracking search is resolvelib's, the resolver pip runs. Its exceptions never
leave this module; a failure is a :class:`~plugport.errors.ResolutionError` in plain words.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from packaging.version import Version
from resolvelib import AbstractProvider, BaseReporter, Resolver
from resolvelib.resolvers import (
    RequirementInformation,
    ResolutionImpossible,
    ResolutionTooDeep,
    ResolverException,
)

from plugport.errors import InvalidInputError, NotFoundError, ResolutionError
from plugport.host._explain import Rejection, explain
from plugport.host.candidates import (
    Candidate,
    CandidateSource,
    MemorySource,
    Requirement,
    parse_requirement,
    specifier_set,
)
from plugport.versions import (
    ANY,
    is_compatible,
    normalize_specifier,
    parse_version,
)

__all__ = [
    "Candidate",
    "CandidateSource",
    "MemorySource",
    "Requirement",
    "Resolution",
    "parse_requirement",
    "resolve",
]

_NOTHING_INSTALLED: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class Resolution:
    """The chosen version of each plugin, and an order to install them in."""

    chosen: Mapping[str, Candidate]  # in install order
    order: tuple[str, ...]  # dependencies before dependents; see _install_order for cycles


def resolve(
    requirements: Sequence[Requirement],
    source: CandidateSource,
    *,
    environment: Mapping[str, str],
    installed: Mapping[str, str] = _NOTHING_INSTALLED,
    allow_prereleases: bool = False,
    max_rounds: int = 2000,
) -> Resolution:
    """Choose a version of every plugin ``requirements`` need, directly or through dependencies.

    ``environment`` maps ``"plugport"`` and the host application's name to their versions; a
    candidate's engine range on anything else is not checked. An ``installed`` version that
    meets everything is kept rather than upgraded. Yanked versions are chosen only when a
    requirement pins them exactly, pre-releases only when allowed or named by a requirement.
    """
    if max_rounds < 1:
        raise InvalidInputError(f"max_rounds must be at least 1, not {max_rounds}")
    judge = _Judge(
        source,
        environment=_versions("environment", environment),
        installed=_versions("installed", installed),
        allow_prereleases=allow_prereleases,
    )
    judge.study(requirements)
    resolver: Resolver[Requirement, Candidate, str] = Resolver(_Provider(judge), BaseReporter())
    try:
        result = resolver.resolve(list(requirements), max_rounds=max_rounds)
    except ResolutionImpossible as exc:
        causes: Iterable[RequirementInformation[Requirement, Candidate]] = exc.causes
        message, conflicts = explain((info.requirement for info in causes), judge)
        raise ResolutionError(message, conflicts) from None
    except ResolutionTooDeep:
        asked = ", ".join(map(str, requirements))
        raise ResolutionError(
            f"gave up choosing versions for {asked} after {max_rounds} rounds (max_rounds) of "
            "backtracking; pin some versions exactly or allow more rounds"
        ) from None
    except ResolverException as exc:  # InconsistentCandidate: a bug here, not in the input
        raise ResolutionError(f"the resolver failed unexpectedly: {exc}") from exc
    order = _install_order(result.mapping)
    return Resolution(chosen={name: result.mapping[name] for name in order}, order=order)


def _key(candidate: Candidate) -> tuple[str, str]:
    return (candidate.name, candidate.version)


def _versions(what: str, versions: Mapping[str, str]) -> dict[str, tuple[str, Version]]:
    parsed = {}
    for name, text in versions.items():
        try:
            parsed[name] = (text, parse_version(text))
        except ValueError as exc:
            raise InvalidInputError(f"{what}: {name}: {exc}") from None
    return parsed


class _Judge:
    """The rules for one resolution, with the source's answers cached; the search and the
    explanation of its failure both ask here, so they cannot disagree."""

    def __init__(
        self,
        source: CandidateSource,
        *,
        environment: dict[str, tuple[str, Version]],
        installed: dict[str, tuple[str, Version]],
        allow_prereleases: bool,
    ) -> None:
        self._source = source
        self._env = {name: version for name, (_, version) in environment.items()}
        self.environment = {name: text for name, (text, _) in environment.items()}
        self.installed = {name: version for name, (_, version) in installed.items()}
        self._allow_prereleases = allow_prereleases
        self._known: dict[str, tuple[Candidate, ...] | None] = {}
        self._parsed: dict[tuple[str, str], Version] = {}
        self._engine_clash: dict[tuple[str, str], Rejection | None] = {}
        self._asked: dict[str, list[Requirement]] = {}
        self._dead: dict[tuple[str, str], Rejection] = {}  # versions no answer can contain
        self._needs: dict[tuple[str, str], list[Requirement]] = {}
        self._inside: dict[tuple[str, tuple[str, str]], bool] = {}  # resolvelib asks often

    def asked(self, name: str) -> list[Requirement]:
        """The user's own requirements on ``name``."""
        return list(self._asked.get(name, ()))

    def study(self, asked: Sequence[Requirement]) -> None:
        """Before the search, rule out every version that no answer can contain.

        The user's requirements and the engines hold in every answer, so a version whose
        dependency admits only versions they exclude (directly, or further down) can never be
        chosen. resolvelib would learn that by backtracking through every version of every
        plugin above it, which grows exponentially with the depth of the conflict; a
        fixpoint over the reachable versions finds it in time linear in their dependencies.
        """
        for requirement in asked:
            self._asked.setdefault(requirement.name, []).append(requirement)
        names = list(dict.fromkeys(r.name for r in asked))
        seen = set(names)
        index = 0
        while index < len(names):  # everything any version of an asked-for plugin may need
            for candidate in self.versions(names[index]) or ():
                fresh = sorted(set(candidate.dependencies) - seen)
                seen.update(fresh)
                names.extend(fresh)
            index += 1
        everyone = [c for name in names for c in self.versions(name) or ()]
        alive = {_key(c) for c in everyone if self._fits_asked(c)}
        backers: dict[tuple[tuple[str, str], str], int] = {}  # (version, dependency) -> count
        needed_by: dict[tuple[str, str], list[tuple[Candidate, Requirement]]] = {}
        for candidate in everyone:
            if _key(candidate) not in alive:
                continue
            for need in self.dependencies(candidate):
                backing = [
                    d
                    for d in self.versions(need.name) or ()
                    if _key(d) in alive and self.inside(need, d)
                ]
                backers[_key(candidate), need.name] = len(backing)
                for backer in backing:
                    needed_by.setdefault(_key(backer), []).append((candidate, need))
        doomed = [
            (c, need)
            for c in everyone
            for need in self.dependencies(c)
            if backers.get((_key(c), need.name)) == 0
        ]
        while doomed:
            candidate, need = doomed.pop()
            if _key(candidate) not in alive:
                continue
            alive.discard(_key(candidate))
            text = f"{candidate} needs {need}, which cannot be installed"
            self._dead[_key(candidate)] = Rejection("dependency", text, requirement=need)
            for dependent, its_need in needed_by.get(_key(candidate), ()):
                backers[_key(dependent), its_need.name] -= 1
                if backers[_key(dependent), its_need.name] == 0:
                    doomed.append((dependent, its_need))

    def dependencies(self, candidate: Candidate) -> list[Requirement]:
        key = _key(candidate)
        if key not in self._needs:
            try:
                self._needs[key] = [
                    Requirement(name, specifier, parent=str(candidate))
                    for name, specifier in sorted(candidate.dependencies.items())
                ]
            except InvalidInputError as exc:
                raise InvalidInputError(f"{candidate} has a broken dependency: {exc}") from None
        return self._needs[key]

    def inside(self, requirement: Requirement, candidate: Candidate) -> bool:
        """Whether ``candidate``'s version lies in ``requirement``'s range, pre-release or not."""
        key = (requirement.specifier, _key(candidate))
        if key not in self._inside:
            version = self.version_of(candidate)
            spec = specifier_set(requirement.specifier)
            self._inside[key] = spec.contains(version, prereleases=True)
        return self._inside[key]

    def _fits_asked(self, candidate: Candidate) -> bool:
        """Whether the user's ranges and the engines admit ``candidate``; yanked versions and
        pre-releases count as admitted here, since a dependency may yet pin them."""
        return self._engines(candidate) is None and all(
            self.inside(r, candidate) for r in self._asked.get(candidate.name, ())
        )

    def versions(self, name: str) -> tuple[Candidate, ...] | None:
        """Newest first; ``None`` when the source knows no such plugin."""
        if name not in self._known:
            try:
                found = self._source.versions(name)
            except NotFoundError:
                self._known[name] = None
            else:
                once = {_key(c): c for c in reversed(found)}  # a version listed twice counts once
                # The text breaks ties (1.0 and 1.0.0 both listed) so the order is total.
                newest_first = sorted(once.values(), key=lambda c: (self.version_of(c), c.version))
                self._known[name] = tuple(reversed(newest_first))
        return self._known[name]

    def version_of(self, candidate: Candidate) -> Version:
        key = _key(candidate)
        if key not in self._parsed:
            try:
                self._parsed[key] = parse_version(candidate.version)
            except ValueError as exc:
                raise InvalidInputError(f"{candidate.name} has a broken version: {exc}") from None
        return self._parsed[key]

    def reject(self, candidate: Candidate, requirements: Sequence[Requirement]) -> Rejection | None:
        for requirement in requirements:
            if not self.inside(requirement, candidate):
                return Rejection("range", f"{candidate} is outside {requirement}")
        clash = self._engines(candidate) or self._dead.get(_key(candidate))
        if clash is not None:
            return clash
        if candidate.yanked and not any(r.pinned for r in requirements):
            return Rejection("yanked", f"{candidate} is yanked")
        if self.version_of(candidate).is_prerelease and not (
            self._allow_prereleases
            # packaging's rule: a range that names a pre-release (">=2.0rc1") admits them.
            or any(specifier_set(r.specifier).prereleases is True for r in requirements)
        ):
            return Rejection("pre-release", f"{candidate} is a pre-release")
        return None

    def _engines(self, candidate: Candidate) -> Rejection | None:
        key = _key(candidate)
        if key not in self._engine_clash:
            failed: list[tuple[str, str]] = []
            for engine, version in self._env.items():  # engines absent here constrain nothing
                spec = candidate.engines.get(engine, ANY)
                try:
                    if not is_compatible(version, spec):
                        failed.append((engine, normalize_specifier(spec)))
                except ValueError as exc:
                    raise InvalidInputError(
                        f"{candidate} has a broken engine range: {exc}"
                    ) from None
            needs = " and ".join(f"{engine}{spec}" for engine, spec in failed)
            self._engine_clash[key] = (
                Rejection("engine", f"{candidate} needs {needs}", tuple(e for e, _ in failed))
                if failed
                else None
            )
        return self._engine_clash[key]


class _Provider(AbstractProvider[Requirement, Candidate, str]):
    """resolvelib's questions, answered by the judge."""

    def __init__(self, judge: _Judge) -> None:
        self._judge = judge

    def identify(self, requirement_or_candidate: Requirement | Candidate) -> str:
        return requirement_or_candidate.name

    def get_preference(
        self,
        identifier: str,
        resolutions: Mapping[str, Candidate],
        candidates: Mapping[str, Iterator[Candidate]],
        information: Mapping[str, Iterator[RequirementInformation[Requirement, Candidate]]],
        backtrack_causes: Sequence[RequirementInformation[Requirement, Candidate]],
    ) -> tuple[bool, bool, str]:
        # Work on what just caused backtracking first (pip's heuristic), then exact pins; the
        # name breaks ties so the same input always takes the same path.
        causing = any(
            info.requirement.name == identifier
            or (info.parent is not None and info.parent.name == identifier)
            for info in backtrack_causes
        )
        pinned = any(info.requirement.pinned for info in information[identifier])
        return (not causing, not pinned, identifier)

    def find_matches(
        self,
        identifier: str,
        requirements: Mapping[str, Iterator[Requirement]],
        incompatibilities: Mapping[str, Iterator[Candidate]],
    ) -> list[Candidate]:
        wanted = list(requirements[identifier])
        ruled_out = {c.version for c in incompatibilities[identifier]}
        matches = [
            c
            for c in self._judge.versions(identifier) or ()
            if c.version not in ruled_out and self._judge.reject(c, wanted) is None
        ]
        installed = self._judge.installed.get(identifier)
        if installed is not None:  # keep what works: the installed version goes first
            matches.sort(key=lambda c: self._judge.version_of(c) != installed)
        return matches

    def is_satisfied_by(self, requirement: Requirement, candidate: Candidate) -> bool:
        return self._judge.inside(requirement, candidate)

    def get_dependencies(self, candidate: Candidate) -> list[Requirement]:
        return self._judge.dependencies(candidate)


def _install_order(chosen: Mapping[str, Candidate]) -> tuple[str, ...]:
    """Dependencies before dependents, ties broken by name.

    A cycle (A needs B, B needs A) has no such order; it is broken at its alphabetically first
    member, which goes before the rest of its cycle, so the order is still total and stable.
    """
    needs = {n: {d for d in c.dependencies if d in chosen and d != n} for n, c in chosen.items()}
    needed_by: dict[str, set[str]] = {n: set() for n in chosen}
    for name, deps in needs.items():
        for dep in deps:
            needed_by[dep].add(name)
    waiting = {n: len(deps) for n, deps in needs.items()}
    ready = sorted(n for n, count in waiting.items() if count == 0)
    order: list[str] = []
    placed: set[str] = set()
    while len(order) < len(chosen):
        if not ready:
            ready.append(min(n for n in chosen if n not in placed and _on_cycle(n, needs, placed)))
        name = heapq.heappop(ready)
        if name in placed:
            continue
        placed.add(name)
        order.append(name)
        for dependent in needed_by[name]:
            waiting[dependent] -= 1
            if waiting[dependent] == 0 and dependent not in placed:
                heapq.heappush(ready, dependent)
    return tuple(order)


def _on_cycle(start: str, needs: Mapping[str, set[str]], placed: set[str]) -> bool:
    """Whether ``start`` reaches itself through plugins not yet placed."""
    seen: set[str] = set()
    stack = [d for d in needs[start] if d not in placed]
    while stack:
        name = stack.pop()
        if name == start:
            return True
        if name not in seen:
            seen.add(name)
            stack.extend(d for d in needs[name] if d not in placed)
    return False
