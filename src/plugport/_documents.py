"""Strict reading of the small signed JSON documents (archive signatures, the signed index): one
value per field, exactly the expected fields, and every fault a :class:`SignatureError` naming
the document, so a signer and a verifier can never read the same bytes differently."""

from __future__ import annotations

from typing import Any

from plugport.errors import SignatureError

__all__ = ["DocumentReader"]


class DocumentReader:
    def __init__(self, part: str, document: str) -> None:
        self.part = part
        self.document = document

    def malformed(self, what: str) -> SignatureError:
        return SignatureError(self.part, f"malformed {self.document}: {what}")

    def no_duplicates(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        """``json.loads(object_pairs_hook=...)``: a field given twice is refused."""
        result: dict[str, Any] = {}
        for name, value in pairs:
            if name in result:
                raise self.malformed(f"field {name!r} appears twice")
            result[name] = value
        return result

    def check_fields(self, obj: object, expected: frozenset[str], where: str) -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise self.malformed(f"{where} is not a JSON object")
        if missing := sorted(expected - obj.keys()):
            raise self.malformed(f"{where} lacks {', '.join(missing)}")
        if extra := sorted(obj.keys() - expected):
            raise self.malformed(f"{where} has unexpected {', '.join(extra)}")
        return obj
