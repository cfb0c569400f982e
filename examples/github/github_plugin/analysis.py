"""An issue's triage, from its text: what kind it is (bug, feature, question, docs), the labels
keyword rules suggest, which open issues look like duplicates (title similarity), and whether
the reporter still owes the details a bug needs. Pure: the plugin fetches the issue, its
comments and the open issues and hands them in.

Keyword rules, not a model: a maintainer can read why a label was suggested, and a wrong
suggestion costs one click. Similarity is word overlap (Jaccard over normalised title words,
stop words dropped) blended with character similarity (difflib), which catches both "Login fails
on Safari" vs "Safari: login failing" and small rewordings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from difflib import SequenceMatcher
from typing import Any

__all__ = [
    "DUPLICATE_THRESHOLD",
    "KINDS",
    "analysis_markdown",
    "classify",
    "find_duplicates",
    "needs_info",
    "suggest_labels",
    "title_similarity",
]

KINDS = ("bug", "feature", "question", "docs")
DUPLICATE_THRESHOLD = 0.5
MAX_DUPLICATES = 5

_KIND_WORDS: dict[str, tuple[str, ...]] = {
    "bug": (
        "bug",
        "error",
        "exception",
        "traceback",
        "crash",
        "fails",
        "failing",
        "broken",
        "regression",
        "doesn't work",
        "does not work",
        "wrong",
        "500",
    ),
    "feature": (
        "feature",
        "support for",
        "add support",
        "would be nice",
        "request",
        "proposal",
        "allow",
        "option to",
        "enhancement",
    ),
    "question": ("how do i", "how to", "question", "is it possible", "can i", "why does", "?"),
    "docs": ("docs", "documentation", "readme", "typo", "tutorial", "example in the guide"),
}
_KIND_LABEL = {
    "bug": "bug",
    "feature": "enhancement",
    "question": "question",
    "docs": "documentation",
}
_TOPIC_WORDS: dict[str, tuple[str, ...]] = {
    "security": ("security", "vulnerability", "cve-", "xss", "csrf", "injection", "leak of"),
    "performance": ("slow", "performance", "latency", "memory leak", "high cpu", "timeout"),
    "regression": ("regression", "used to work", "worked in", "after upgrading"),
    "crash": ("crash", "segfault", "panic", "core dump"),
}
_BUG_DETAILS = (
    "steps to reproduce",
    "to reproduce",
    "expected",
    "actual",
    "version",
    "traceback",
    "```",
)
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "has",
        "have",
        "how",
        "i",
        "in",
        "is",
        "it",
        "its",
        "not",
        "of",
        "on",
        "or",
        "the",
        "this",
        "to",
        "was",
        "when",
        "with",
    ]
)
_WORD = re.compile(r"[a-z0-9]+")


def _text(*parts: str | None) -> str:
    return " ".join(p for p in parts if p).lower()


def _hits(text: str, words: Iterable[str]) -> int:
    return sum(1 for w in words if w in text)


def classify(title: str, body: str | None, labels: Sequence[str] = ()) -> str:
    """The issue's kind. A label the maintainers already set wins; otherwise the kind whose
    keywords the title (counted twice: it is the summary) and body hit most; ties go to
    ``bug``, then ``feature``, ``question``, ``docs`` (the order of KINDS)."""
    for kind, label in _KIND_LABEL.items():
        if label in labels or kind in labels:
            return kind
    title_text, body_text = _text(title), _text(body)
    scores = {
        kind: 2 * _hits(title_text, words) + _hits(body_text, words)
        for kind, words in _KIND_WORDS.items()
    }
    best = max(KINDS, key=lambda kind: (scores[kind], -KINDS.index(kind)))
    return best if scores[best] > 0 else "question"


def suggest_labels(kind: str, title: str, body: str | None, have: Sequence[str] = ()) -> list[str]:
    """The kind's label and each topic whose keywords appear, minus labels the issue has."""
    text = _text(title, body)
    found = [_KIND_LABEL[kind]]
    found += [label for label, words in _TOPIC_WORDS.items() if _hits(text, words)]
    return [label for label in found if label not in have]


def _words(title: str) -> set[str]:
    return {w for w in _WORD.findall(title.lower()) if w not in _STOP}


def title_similarity(a: str, b: str) -> float:
    """0..1: the mean of word overlap (Jaccard) and character similarity of the lower-cased
    titles."""
    left, right = _words(a), _words(b)
    jaccard = len(left & right) / len(left | right) if left | right else 0.0
    chars = SequenceMatcher(None, a.lower().strip(), b.lower().strip()).ratio()
    return round((jaccard + chars) / 2, 3)


def find_duplicates(
    number: int,
    title: str,
    candidates: Iterable[Mapping[str, Any]],
    threshold: float = DUPLICATE_THRESHOLD,
) -> list[dict[str, Any]]:
    """Open issues (GitHub's issue objects) whose titles are at least ``threshold`` similar,
    most similar first, at most five; pull requests (a ``pull_request`` key) and the issue
    itself are left out."""
    found = []
    for other in candidates:
        if other.get("number") == number or "pull_request" in other:
            continue
        score = title_similarity(title, str(other.get("title", "")))
        if score >= threshold:
            found.append(
                {
                    "number": int(other["number"]),
                    "title": str(other["title"]),
                    "url": str(other.get("html_url", "")),
                    "similarity": score,
                }
            )
    found.sort(key=lambda d: (-d["similarity"], d["number"]))
    return found[:MAX_DUPLICATES]


def needs_info(kind: str, body: str | None, author_comments: Sequence[str] = ()) -> bool:
    """Whether to ask the reporter for more: a bug without any reproduction detail (steps,
    expected/actual, a version, a traceback or a code block) in the body or the reporter's
    own comments, or any issue with almost no text."""
    text = _text(body, *author_comments)
    if len(text.strip()) < 30:
        return True
    return kind == "bug" and not _hits(text, _BUG_DETAILS)


def analysis_markdown(
    number: int,
    kind: str,
    labels: Sequence[str],
    duplicates: Sequence[Mapping[str, Any]],
    ask: bool,
) -> str:
    """What a maintainer reads (in the task's result, or a chat message)."""
    lines = [f"### Triage of #{number}: {kind}", ""]
    lines.append(f"- suggested labels: {', '.join(f'`{x}`' for x in labels) or 'none'}")
    if duplicates:
        lines.append("- possible duplicates:")
        lines += [
            f"  - #{d['number']} {d['title']} ({int(d['similarity'] * 100)}% similar)"
            for d in duplicates
        ]
    else:
        lines.append("- no similar open issues")
    if ask:
        lines.append("- **needs info**: steps to reproduce, expected and actual behaviour, version")
    return "\n".join(lines) + "\n"
