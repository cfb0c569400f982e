"""The pure rules of domain verification, DNS TXT answers read from the wire, and confusable
names, each with hostile input."""

from __future__ import annotations

import struct

import pytest

from plugport.registry._confusable_rules import (
    Protected,
    edit_distance,
    max_distance,
    resemblances,
    skeleton,
)
from plugport.registry._dns_wire import NameNotFoundError, build_query, parse_txt_response
from plugport.registry._verification_rules import (
    Outcome,
    after_check,
    check_domain,
    check_token,
    file_proves,
    txt_proves,
    txt_value,
)

TOKEN = "0123456789abcdefghijABCDEFGHIJ_-"  # noqa: S105 - a made-up challenge token


# --- tokens, domains, proofs ----------------------------------------------------------------


def test_a_token_is_32_url_safe_characters() -> None:
    assert check_token(TOKEN) == TOKEN
    for bad in ("", TOKEN[:-1], TOKEN + "x", TOKEN[:-1] + "=", TOKEN[:-1] + "\n"):
        with pytest.raises(ValueError, match="32 URL-safe characters"):
            check_token(bad)


@pytest.mark.parametrize(
    ("text", "stored"),
    [("Northwind.COM.", "northwind.com"), (" a.b.example ", "a.b.example"),
     ("bücher.example", "xn--bcher-kva.example")],
)  # fmt: skip
def test_a_domain_is_stored_in_one_form(text: str, stored: str) -> None:
    assert check_domain(text) == stored


@pytest.mark.parametrize(
    ("text", "why"),
    [("", "give a domain"), ("https://northwind.com", "not a bare domain"),
     ("northwind.com/x", "not a bare domain"), ("northwind.com:443", "not a bare domain"),
     ("user@northwind.com", "not a bare domain"), ("127.0.0.1", "IP address"),
     ("northwind", "not a public domain"), ("intranet.local", "not a public domain"),
     ("localhost", "not a public domain"), ("box.internal", "not a public domain"),
     ("-bad.com", "not a valid domain"), ("a..com", "not a valid"),
     ("x" * 64 + ".com", "not a valid"), ("exa mple.com", "not a valid domain")],
)  # fmt: skip
def test_a_domain_that_cannot_be_proved_is_refused(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        check_domain(text)


def test_a_txt_record_must_be_exactly_the_value() -> None:
    assert txt_proves(["v=spf1 -all", f"  {txt_value(TOKEN)} "], TOKEN)
    assert not txt_proves([], TOKEN)
    assert not txt_proves([TOKEN], TOKEN)  # the bare token is not the record
    assert not txt_proves([txt_value(TOKEN) + "x"], TOKEN)
    assert not txt_proves(["x" + txt_value(TOKEN)], TOKEN)
    assert not txt_proves([f"{txt_value(TOKEN)} {txt_value('B' * 32)}"], TOKEN)
    assert not txt_proves([txt_value(TOKEN.upper())], TOKEN)


def test_the_file_holds_the_token_alone() -> None:
    assert file_proves(TOKEN.encode(), TOKEN)
    assert file_proves(b"\xef\xbb\xbf" + TOKEN.encode() + b"\r\n", TOKEN)
    assert file_proves(txt_value(TOKEN).encode(), TOKEN)
    assert not file_proves(b"", TOKEN)
    assert not file_proves(b"<html>" + TOKEN.encode() + b"</html>", TOKEN)  # an echo page
    assert not file_proves(TOKEN.encode() * 2, TOKEN)
    assert not file_proves(b"\xff" + TOKEN.encode(), TOKEN)


def test_a_verified_domain_survives_allowed_failures_then_is_lost() -> None:
    assert after_check("pending", 0, True, allowed_failures=1) == Outcome(
        "verified", 0, "domain.verify"
    )
    assert after_check("pending", 2, False, allowed_failures=1) == Outcome("pending", 3, None)
    assert after_check("verified", 0, True, allowed_failures=1) == Outcome("verified", 0, None)
    assert after_check("verified", 0, False, allowed_failures=1) == Outcome("verified", 1, None)
    assert after_check("verified", 1, False, allowed_failures=1) == Outcome(
        "lost", 2, "domain.lost"
    )
    assert after_check("verified", 0, False, allowed_failures=0) == Outcome(
        "lost", 1, "domain.lost"
    )
    assert after_check("lost", 2, True, allowed_failures=1) == Outcome(
        "verified", 0, "domain.verify"
    )


# --- DNS answers from the wire ----------------------------------------------------------------

NAME = "_plugport.northwind.example"


def _name(text: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in text.split(".")) + b"\0"


def _answer(
    query_id: int = 7,
    records: list[tuple[bytes, int, bytes]] | None = None,
    *,
    flags: int = 0x8180,
    question: str = NAME,
) -> bytes:
    records = records or []
    header = struct.pack("!HHHHHH", query_id, flags, 1, len(records), 0, 0)
    body = _name(question) + struct.pack("!HH", 16, 1)
    for owner, rtype, rdata in records:
        body += owner + struct.pack("!HHIH", rtype, 1, 60, len(rdata)) + rdata
    return header + body


def _txt(*strings: bytes) -> bytes:
    return b"".join(bytes([len(s)]) + s for s in strings)


POINTER = b"\xc0\x0c"  # the question's name


def test_a_query_asks_for_txt_recursively() -> None:
    query = build_query(0xBEEF, NAME)
    assert query[:4] == b"\xbe\xef\x01\x00"
    assert query[12:] == _name(NAME) + b"\x00\x10\x00\x01"


def test_txt_records_are_read_with_their_strings_joined() -> None:
    value = txt_value(TOKEN).encode()
    data = _answer(records=[(POINTER, 16, _txt(value[:10], value[10:])), (POINTER, 16, _txt(b"x"))])
    assert parse_txt_response(data, 7, NAME) == ([txt_value(TOKEN), "x"], False)


def test_records_of_another_name_do_not_count_unless_a_cname_leads_there() -> None:
    other = _name("evil.example")
    assert parse_txt_response(_answer(records=[(other, 16, _txt(b"x"))]), 7, NAME) == ([], False)
    cname = (POINTER, 5, _name("proof.example"))
    led = _answer(records=[cname, (_name("proof.example"), 16, _txt(b"y"))])
    assert parse_txt_response(led, 7, NAME) == (["y"], False)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\x00" * 5, "shorter than a header"),
        (_answer(query_id=8), "not the answer to this query"),
        (_answer(flags=0x0100), "not the answer to this query"),  # a query, not an answer
        (_answer(flags=0x8182), "the server failed"),
        (_answer(question="other.example"), "to another question"),
        (_answer(records=[(b"\xc0\x40", 16, b"")]), "does not go back"),  # forward pointer
        (_answer(records=[(b"\xc0\x2d", 16, b"")]), "does not go back"),  # itself
        (_answer(records=[(POINTER, 16, b"\x09abc")]), "runs past its record"),
        (_answer(records=[(POINTER, 16, b"abc")])[:-2], "runs past the end"),
        (_answer(records=[(b"\x80x\x00", 16, b"")]), "unknown label type"),
    ],
)
def test_a_malformed_or_foreign_answer_is_refused(data: bytes, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_txt_response(data, 7, NAME)


def test_nxdomain_and_truncation_are_told_apart() -> None:
    with pytest.raises(NameNotFoundError):
        parse_txt_response(_answer(flags=0x8183), 7, NAME)
    cut = _answer(records=[(POINTER, 16, _txt(b"a")), (POINTER, 16, _txt(b"bcdef"))], flags=0x8380)
    assert parse_txt_response(cut[:-3], 7, NAME) == (["a"], True)


# --- confusable names -------------------------------------------------------------------------

VERIFIED = Protected("northwind", "the verified namespace 'northwind' (northwind.com)")


@pytest.mark.parametrize(
    "hostile",
    [
        "n\u043erthwind",  # Cyrillic o
        "northwin\u0501",  # Cyrillic komi de
        "n\u03bfrthwind",  # Greek omicron
        "n0rthwind",  # digit zero
        "northw1nd",  # digit one, 1 edit from northwind's skeleton
        "north-wind",
        "north_wind",
        "NORTHWIND",
        "\uff4e\uff4f\uff52\uff54\uff48\uff57\uff49\uff4e\uff44",  # full-width, folded by NFKC
        "nortwhind",  # swapped neighbours: one typo
        "northwinds",
        "northwnd",
        "n\u00f6rthwind",  # a diaeresis over the o
    ],
)
def test_hostile_lookalikes_of_a_verified_namespace_are_caught(hostile: str) -> None:
    [found] = resemblances(hostile, [VERIFIED])
    assert found.protected == VERIFIED
    assert "resembles the verified namespace 'northwind' (northwind.com)" in found.message


def test_skeletons_read_lookalikes_as_letters() -> None:
    assert skeleton("rnicrosoft") == skeleton("microsoft")
    assert skeleton("paypa1") == skeleton("paypal")
    assert skeleton("\u0440\u0430\u0443\u0440\u0430l") == "paypal"  # Cyrillic er, a, u, er, a
    assert skeleton("g00gle") == "google"


@pytest.mark.parametrize(
    "unrelated", ["northwind", "southwind", "nw", "acme", "windnorth", "northwindtools2"]
)
def test_different_names_and_the_name_itself_are_not_held(unrelated: str) -> None:
    assert resemblances(unrelated, [VERIFIED]) == []


def test_short_names_need_a_skeleton_match_longer_ones_allow_more_edits() -> None:
    assert [max_distance(n) for n in (2, 3, 4, 9, 10, 30)] == [0, 0, 1, 1, 2, 2]
    short = Protected("abc", "abc")
    assert resemblances("abd", [short]) == []  # one edit makes another ordinary word
    assert [r.distance for r in resemblances("a8c", [Protected("abc", "x")])] == []
    assert [r.distance for r in resemblances("ab", [Protected("abc", "x")])] == []
    assert [r.distance for r in resemblances("acmf", [Protected("acme", "x")])] == [1]
    assert resemblances("acnf", [Protected("acme", "x")]) == []  # two edits for four letters
    assert [
        r.distance for r in resemblances("northwindlabz", [Protected("northwind-labs", "x")])
    ] == [1]


def test_edit_distance_counts_a_swap_as_one_and_stops_at_the_limit() -> None:
    assert edit_distance("abcd", "abdc") == 1
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3
    assert edit_distance("a" * 50, "b" * 50, limit=2) == 3
    assert edit_distance("abc", "abcdefgh", limit=2) == 3
