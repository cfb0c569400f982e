"""What the HTTP libraries under ``net.fetch`` would log about a request must not carry a
credential the host injected into it. httpcore's DEBUG traces print every request's and
response's headers (an ``Authorization`` the host added, or a server echoing it back), and
httpx's INFO line prints the URL (with a credential of kind ``query`` in it). Filters on their
loggers drop the header traces and cut query strings from the request lines, whatever level
an operator turns on."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit, urlunsplit

__all__ = ["install"]

_HTTPCORE_LOGGERS = ("httpcore.http11", "httpcore.http2", "httpcore.connection", "httpcore.proxy")
_installed = False


class _NoHeaderTraces(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "headers" not in str(record.msg)


class _NoQueryStrings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_without_query(a) for a in record.args)
        return True


def _without_query(value: object) -> object:
    text = str(value)
    if "://" not in text or "?" not in text:
        return value
    parts = urlsplit(text)
    return urlunsplit(parts._replace(query="[query hidden]"))


def install() -> None:
    """Add the filters once per process (idempotent)."""
    global _installed  # noqa: PLW0603 - once per process, like logging itself
    if _installed:
        return
    for name in _HTTPCORE_LOGGERS:
        logging.getLogger(name).addFilter(_NoHeaderTraces())
    logging.getLogger("httpx").addFilter(_NoQueryStrings())
    _installed = True
