"""Record/replay files for ``net.fetch``: JSON an integration's tests replay offline.

The rule this module protects: a secret never reaches a cassette. Request and response headers
that carry credentials (Authorization, Cookie, Set-Cookie, API keys, tokens, signatures) are
written as ``REDACTED``; bodies are kept, as UTF-8 text when they are, base64 otherwise.
"""

from __future__ import annotations

import base64
import difflib
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from plugport.errors import InvalidInputError

__all__ = ["REDACTED", "Cassette", "Interaction", "Mode", "redact_headers"]

REDACTED = "REDACTED"
Mode = Literal["replay", "record", "once"]
MODES = ("replay", "record", "once")
_VERSION = 1
_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "cookie2", "set-cookie", "set-cookie2"}
)
_SECRET_WORDS = ("auth", "token", "secret", "signature", "password", "session", "key")
_HOP_HEADERS = frozenset({"transfer-encoding", "connection", "keep-alive", "accept-encoding"})


def _is_secret(name: str) -> bool:
    name = name.lower()
    return name in _SECRET_HEADERS or any(word in name for word in _SECRET_WORDS)


def redact_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers as a cassette keeps them: lower-case names, credentials replaced, hop-by-hop
    headers left out (they describe one connection, not the exchange)."""
    kept: dict[str, str] = {}
    for raw_name, value in headers:
        name = raw_name.lower()
        if name in _HOP_HEADERS:
            continue
        shown = REDACTED if _is_secret(name) else value
        kept[name] = f"{kept[name]}, {shown}" if name in kept else shown
    return kept


def _encode_body(body: bytes) -> dict[str, str]:
    try:
        return {"body": body.decode("utf-8")}
    except UnicodeDecodeError:
        return {"body_base64": base64.b64encode(body).decode("ascii")}


def _decode_body(part: dict[str, Any], where: str) -> bytes:
    if "body_base64" in part:
        return base64.b64decode(str(part["body_base64"]), validate=True)
    body = part.get("body", "")
    if not isinstance(body, str):
        raise InvalidInputError(f"{where}: body must be a string")
    return body.encode("utf-8")


@dataclass
class Interaction:
    method: str
    url: str
    request_headers: dict[str, str]
    request_body: bytes
    status: int
    response_headers: dict[str, str]
    response_body: bytes
    used: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "request": {
                "method": self.method,
                "url": self.url,
                "headers": self.request_headers,
                **_encode_body(self.request_body),
            },
            "response": {
                "status": self.status,
                "headers": self.response_headers,
                **_encode_body(self.response_body),
            },
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> Interaction:
        try:
            request, response = data["request"], data["response"]
            return cls(
                method=str(request["method"]).upper(),
                url=str(request["url"]),
                request_headers=dict(request.get("headers", {})),
                request_body=_decode_body(request, where),
                status=int(response["status"]),
                response_headers=dict(response.get("headers", {})),
                response_body=_decode_body(response, where),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"{where}: not a recorded interaction ({type(exc).__name__}: {exc}); "
                "re-record the cassette with mode='record'"
            ) from None


@dataclass
class Cassette:
    """One cassette file and the interactions it holds (recorded this run or read from it)."""

    path: Path
    mode: Mode
    interactions: list[Interaction] = field(default_factory=list)
    recording: bool = False

    @classmethod
    def open(cls, path: Path | str, mode: str) -> Cassette:
        """Read (replay), start empty (record) or either (once: replay when the file exists)."""
        if mode not in MODES:
            raise InvalidInputError(
                f"cassette mode must be one of {', '.join(MODES)}, not {mode!r}"
            )
        path = Path(path).resolve()
        recording = mode == "record" or (mode == "once" and not path.exists())
        cassette = cls(path, mode, recording=recording)  # type: ignore[arg-type]
        if recording:
            return cassette
        if not path.is_file():
            raise InvalidInputError(
                f"cassette {path} does not exist; record it once with "
                "net.cassette(path, mode='record') against the real service or a local server"
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidInputError(f"cassette {path} is not readable JSON: {exc}") from None
        items = data.get("interactions") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise InvalidInputError(f"cassette {path}: no 'interactions' list; re-record it")
        cassette.interactions = [
            Interaction.from_json(item, f"cassette {path}, interaction {n}")
            for n, item in enumerate(items)
        ]
        return cassette

    def find(self, method: str, url: str, body: bytes) -> Interaction | None:
        """The interaction to replay: same method and URL, the first not yet played (one with
        the same body first), else the last one played again (for polling)."""
        same = [i for i in self.interactions if i.method == method and i.url == url]
        if not same:
            return None
        fresh = [i for i in same if not i.used]
        chosen = next((i for i in fresh if i.request_body == body), None)
        chosen = chosen or (fresh[0] if fresh else same[-1])
        chosen.used += 1
        return chosen

    def closest(self, method: str, url: str) -> str:
        """The recorded request most like ``method url``, for a mismatch message."""
        wanted = f"{method} {url}"
        recorded = [f"{i.method} {i.url}" for i in self.interactions]
        if not recorded:
            return "none (the cassette is empty)"
        return max(recorded, key=lambda r: difflib.SequenceMatcher(None, wanted, r).ratio())

    def add(self, interaction: Interaction) -> None:
        """Keep a recorded interaction and rewrite the file at once (atomically), so an
        interrupted test run still leaves a complete cassette."""
        self.interactions.append(interaction)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(
            {"version": _VERSION, "interactions": [i.to_json() for i in self.interactions]},
            indent=2,
            ensure_ascii=False,
        )
        fd, scratch = tempfile.mkstemp(prefix=".cassette-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text + "\n")
            # A cassette is test data kept beside the code (secrets are redacted before this),
            # readable as the rest of the tree is; mkstemp's 0600 would make the next strict
            # test run refuse the plugin as unreadable by its worker's uid.
            os.chmod(scratch, 0o644)
            os.replace(scratch, self.path)
        except BaseException:
            Path(scratch).unlink(missing_ok=True)
            raise
