"""A pull request's review summary, from its files as GitHub lists them: how much changed, where
(by top-level directory), and how risky it looks, with the reasons a reviewer can check. Pure:
the plugin fetches the pull request and its files and hands them in, so every rule is tested
without GitHub.

The risk rules are deliberately few and explainable (each reason names the files that raised
it): a large diff, CI or workflow files (they run with the repository's secrets), database
migrations (hard to undo), lockfiles (new code from elsewhere), and code changed with no test
changed. Two points make a pull request ``high``, one ``medium``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "HUGE_DIFF_LINES",
    "LARGE_DIFF_LINES",
    "MARKER",
    "ChangedFile",
    "Reason",
    "area_of",
    "files_of",
    "review_summary",
    "risk_reasons",
]

LARGE_DIFF_LINES = 400  # changed lines that make a diff large (one point)
HUGE_DIFF_LINES = 1500  # ... very large (two points): few reviewers read that much well
MARKER = "<!-- plugport-review:{sha} -->"
"""Hidden in the posted comment: a retried task finds it and does not comment twice."""

_CI = re.compile(
    r"^(\.github/workflows/|\.github/actions/|\.circleci/|\.gitlab-ci\.yml$|Jenkinsfile$"
    r"|\.buildkite/|azure-pipelines\.yml$|\.travis\.yml$)"
)
_MIGRATION = re.compile(r"(^|/)(migrations|alembic/versions|db/migrate)/")
_LOCKFILES = frozenset(
    {
        "poetry.lock",
        "uv.lock",
        "Pipfile.lock",
        "package-lock.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "Cargo.lock",
        "go.sum",
        "Gemfile.lock",
        "composer.lock",
        "plugport.lock",
    }
)
_TEST = re.compile(
    r"(^|/)(tests?|__tests__|spec)/|(^|/)test_[^/]*\.py$|_test\.(py|go)$|\.(test|spec)\.[jt]sx?$"
)
_CODE = re.compile(r"\.(py|js|jsx|ts|tsx|go|rs|java|kt|rb|php|cs|c|cc|cpp|h|swift|scala)$")
MAX_LISTED = 3  # files named per reason


@dataclass(frozen=True)
class ChangedFile:
    """The fields of one entry of ``GET /pulls/{n}/files`` the summary reads."""

    filename: str
    status: str
    additions: int
    deletions: int

    @property
    def changes(self) -> int:
        return self.additions + self.deletions


@dataclass(frozen=True)
class Reason:
    """Why a pull request is riskier: ``points`` (1 or 2) and the sentence a reviewer reads."""

    points: int
    text: str


def files_of(items: Iterable[Any]) -> list[ChangedFile]:
    """GitHub's file objects as :class:`ChangedFile`; ValueError naming the field a malformed
    one lacks (an answer of another shape is not guessed around)."""
    found = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping) or not isinstance(item.get("filename"), str):
            raise ValueError(f"file {index} of the pull request has no filename")
        numbers = [item.get(name) for name in ("additions", "deletions")]
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in numbers):
            raise ValueError(f"file {item['filename']!r} has no additions or deletions count")
        status = str(item.get("status", "modified"))
        found.append(ChangedFile(item["filename"], status, int(numbers[0]), int(numbers[1])))
    return found


def area_of(filename: str) -> str:
    """The top-level directory a file is in, or ``(root)`` for a file at the top."""
    head, slash, _ = filename.partition("/")
    return head if slash else "(root)"


def _named(files: Sequence[ChangedFile]) -> str:
    names = ", ".join(f"`{f.filename}`" for f in files[:MAX_LISTED])
    more = len(files) - MAX_LISTED
    return names + (f" and {more} more" if more > 0 else "")


def risk_reasons(files: Sequence[ChangedFile]) -> list[Reason]:
    """Every rule a pull request's files break, in a fixed order."""
    reasons = []
    total = sum(f.changes for f in files)
    if total >= HUGE_DIFF_LINES:
        reasons.append(Reason(2, f"very large diff: {total} changed lines"))
    elif total >= LARGE_DIFF_LINES:
        reasons.append(Reason(1, f"large diff: {total} changed lines"))
    ci = [f for f in files if _CI.search(f.filename)]
    if ci:
        reasons.append(Reason(1, f"touches CI/workflows (they run with secrets): {_named(ci)}"))
    migrations = [f for f in files if _MIGRATION.search(f.filename)]
    if migrations:
        reasons.append(Reason(2, f"database migrations (hard to undo): {_named(migrations)}"))
    locks = [f for f in files if f.filename.rsplit("/", 1)[-1] in _LOCKFILES]
    if locks:
        reasons.append(Reason(1, f"dependency lockfiles changed: {_named(locks)}"))
    code = [f for f in files if _CODE.search(f.filename) and not _TEST.search(f.filename)]
    if code and not any(_TEST.search(f.filename) for f in files):
        reasons.append(Reason(1, "code changed but no tests changed"))
    return reasons


def _risk(reasons: Sequence[Reason]) -> str:
    points = sum(r.points for r in reasons)
    return "high" if points >= 2 else "medium" if points == 1 else "low"


def review_summary(pull: Mapping[str, Any], files: Sequence[ChangedFile]) -> dict[str, Any]:
    """The result of a ``GITHUB_PR_REVIEW`` task for ``pull`` (GitHub's pull request object:
    ``number``, ``title``, ``html_url``, ``head.sha``) with ``files``."""
    by_area: dict[str, int] = {}
    for changed in files:
        area = area_of(changed.filename)
        by_area[area] = by_area.get(area, 0) + changed.changes
    reasons = risk_reasons(files)
    risk = _risk(reasons)
    additions = sum(f.additions for f in files)
    deletions = sum(f.deletions for f in files)
    head = str(pull["head"]["sha"])
    lines = [
        MARKER.format(sha=head),
        f"### Review summary: #{pull['number']} {pull['title']}",
        "",
        f"**Risk: {risk}** · {len(files)} files · +{additions} -{deletions} · at `{head[:7]}`",
        "",
    ]
    lines += [f"- {r.text}" for r in reasons] or ["- nothing in the risk rules"]
    if by_area:
        lines += ["", "| area | changed lines |", "|---|---|"]
        ordered = sorted(by_area.items(), key=lambda item: (-item[1], item[0]))
        lines += [f"| `{area}` | {count} |" for area, count in ordered]
    return {
        "number": int(pull["number"]),
        "url": str(pull["html_url"]),
        "head_sha": head,
        "files": len(files),
        "additions": additions,
        "deletions": deletions,
        "by_area": by_area,
        "risk": risk,
        "reasons": [r.text for r in reasons],
        "markdown": "\n".join(lines) + "\n",
    }
