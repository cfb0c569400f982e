"""DNS TXT queries in the wire format (RFC 1035), built and read without I/O, so the registry
can check a ``_plugport`` TXT record with the standard library alone.

The reader trusts nothing in an answer: every length is bounds-checked, compression pointers
may only point backwards (so they cannot loop), the answer must carry the query's id and
question, and only TXT records of the asked name (or of a name it is a CNAME of, within the
same answer) count. Anything else is :class:`ValueError`.
"""

from __future__ import annotations

import struct

__all__ = ["TXT", "NameNotFoundError", "build_query", "parse_txt_response"]

TXT = 16
_CNAME = 5
_IN = 1
_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")
_MAX_POINTERS = 64


class NameNotFoundError(ValueError):
    """The server says the name does not exist (NXDOMAIN)."""


def _encode_name(name: str) -> bytes:
    out = bytearray()
    for label in name.rstrip(".").split("."):
        raw = label.encode("ascii")
        if not 0 < len(raw) < 64:
            raise ValueError(f"{name!r}: a DNS label is 1-63 characters")
        out += bytes([len(raw)]) + raw
    if len(out) > 254:
        raise ValueError(f"{name!r} is longer than a DNS name may be")
    return bytes(out) + b"\0"


def build_query(query_id: int, name: str, qtype: int = TXT) -> bytes:
    """A recursive query for ``name``'s records of ``qtype``."""
    header = _HEADER.pack(query_id & 0xFFFF, 0x0100, 1, 0, 0, 0)
    return header + _encode_name(name) + struct.pack("!HH", qtype, _IN)


def _read_name(data: bytes, offset: int) -> tuple[str, int]:
    """The name at ``offset`` and the offset just after it (after the first pointer)."""
    labels: list[str] = []
    end: int | None = None
    pointers = 0
    position = offset
    while True:
        if position >= len(data):
            raise ValueError("DNS answer: a name runs past the end")
        length = data[position]
        if length & 0xC0 == 0xC0:
            if position + 1 >= len(data):
                raise ValueError("DNS answer: a cut-off compression pointer")
            target = ((length & 0x3F) << 8) | data[position + 1]
            if target >= position or pointers >= _MAX_POINTERS:
                raise ValueError("DNS answer: a compression pointer that does not go back")
            pointers += 1
            if end is None:
                end = position + 2
            position = target
            continue
        if length & 0xC0:
            raise ValueError("DNS answer: an unknown label type")
        position += 1
        if length == 0:
            break
        if position + length > len(data):
            raise ValueError("DNS answer: a label runs past the end")
        labels.append(data[position : position + length].decode("ascii", "replace").lower())
        position += length
    return ".".join(labels), end if end is not None else position


def parse_txt_response(data: bytes, query_id: int, name: str) -> tuple[list[str], bool]:
    """The TXT records for ``name`` in the answer ``data`` to query ``query_id``, each one's
    strings joined (as RFC 7208 reads them), and whether the answer was truncated (then ask
    again over TCP). :class:`NameNotFoundError` for NXDOMAIN; ValueError for anything that is
    not a sound answer to that question."""
    if len(data) < _HEADER.size:
        raise ValueError("DNS answer: shorter than a header")
    answer_id, flags, questions, answers, _, _ = _HEADER.unpack_from(data)
    if answer_id != query_id or not flags & 0x8000:
        raise ValueError("DNS answer: not the answer to this query")
    truncated = bool(flags & 0x0200)
    rcode = flags & 0x000F
    if rcode == 3:
        raise NameNotFoundError(f"{name} does not exist (NXDOMAIN)")
    if rcode != 0:
        raise ValueError(f"DNS answer: the server failed (rcode {rcode})")
    if questions != 1:
        raise ValueError("DNS answer: not the one question asked")
    asked = name.rstrip(".").lower()
    offset = _HEADER.size
    qname, offset = _read_name(data, offset)
    if qname != asked or offset + 4 > len(data):
        raise ValueError("DNS answer: to another question")
    offset += 4
    return _answers(data, offset, answers, asked, truncated=truncated), truncated


def _answers(data: bytes, offset: int, count: int, asked: str, *, truncated: bool) -> list[str]:
    """The TXT records among ``count`` answers from ``offset``, for ``asked`` or the names it
    is a CNAME of. A truncated answer keeps what arrived whole."""
    owners = {asked}
    found: list[tuple[str, str]] = []
    for _ in range(count):
        owner, offset = _read_name(data, offset)
        rdata_start = offset + _RR.size
        if rdata_start > len(data):
            if truncated:
                break
            raise ValueError("DNS answer: a record runs past the end")
        rtype, rclass, _ttl, length = _RR.unpack_from(data, offset)
        offset = rdata_start + length
        if offset > len(data):
            if truncated:
                break
            raise ValueError("DNS answer: a record's data runs past the end")
        if rclass == _IN and rtype == _CNAME and owner in owners:
            owners.add(_read_name(data, rdata_start)[0])
        elif rclass == _IN and rtype == TXT:
            found.append((owner, _txt_strings(data[rdata_start:offset])))
    return [text for owner, text in found if owner in owners]


def _txt_strings(rdata: bytes) -> str:
    parts: list[bytes] = []
    position = 0
    while position < len(rdata):
        length = rdata[position]
        position += 1
        if position + length > len(rdata):
            raise ValueError("DNS answer: a TXT string runs past its record")
        parts.append(rdata[position : position + length])
        position += length
    return b"".join(parts).decode("utf-8", "replace")
