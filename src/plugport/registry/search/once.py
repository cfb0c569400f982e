"""What a search reads once per transaction: the search generation, and answers a search asks
for several times (whether a word set ranks the plugins it names first, for each window of a
host-filtered search). A transaction sees one state of the data, as far as a search is
concerned: an answer read again later in it would be as good, and costs a round trip."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.orm import Session

__all__ = ["generation", "once", "search_settings"]

T = TypeVar("T")

_KEY = "plugport.search.once"
_GENERATION = text("SELECT generation FROM search_state WHERE id = 1")
_SETTINGS = (
    "set_config('max_parallel_workers_per_gather', '0', true), set_config('jit', 'off', true)"
)
_SEARCH_SETTINGS = text(f"SELECT {_SETTINGS}")
_GENERATION_AND_SETTINGS = text(
    f"SELECT generation, {_SETTINGS} FROM search_state WHERE id = 1"  # noqa: S608
)
"""PostgreSQL: the search settings (see ``PostgresSearchBackend._prepare``) for the rest of
the transaction (``SET LOCAL``), riding along with the generation read: one round trip."""


def once(session: Session, key: Hashable, compute: Callable[[], T]) -> T:
    """``compute()``'s answer, kept in ``session.info`` for the rest of the session's
    transaction under ``key``."""
    session.connection()  # begins the transaction if none has
    transaction = session.get_transaction()
    kept: tuple[Any, dict[Hashable, Any]] | None = session.info.get(_KEY)
    if kept is None or kept[0] is not transaction:
        kept = session.info[_KEY] = (transaction, {})
    answers = kept[1]
    if key not in answers:
        answers[key] = compute()
    value: T = answers[key]
    return value


def generation(session: Session) -> int:
    """The search generation (migration 0006): raised by every change of what search shows,
    and read once per transaction. Something kept under the generation read first is never
    newer than the data it was computed from: a change meanwhile merely leaves it unused."""

    def read() -> int:
        if session.get_bind().dialect.name != "postgresql":
            return int(session.execute(_GENERATION).scalar_one())
        row = session.execute(_GENERATION_AND_SETTINGS).one()
        once(session, "settings", lambda: True)  # applied with it
        return int(row[0])

    return once(session, "generation", read)


def search_settings(session: Session) -> None:
    """PostgreSQL's settings for a search's transaction, once (see ``_GENERATION_AND_SETTINGS``)."""
    once(session, "settings", lambda: session.execute(_SEARCH_SETTINGS) is not None)
