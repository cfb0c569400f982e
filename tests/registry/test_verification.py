"""The domain check against an in-memory resolver and a real local HTTPS server: what proves
a domain, and every way an HTTPS answer is refused (the shared SSRF rules on each hop)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from plugport.registry._verification_rules import WELL_KNOWN_PATH, txt_value
from plugport.registry.verification import CheckOptions, DomainChecker, MemoryResolver
from tests.registry._https_site import Answer, Site, https_site

DOMAIN = "northwind.example"
TOKEN = "A" * 16 + "b-_" + "c" * 13


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with https_site(tmp_path, [DOMAIN, f"*.{DOMAIN}"]) as served:
        yield served


def checker(site: Site, resolver: MemoryResolver | None = None, **options: object) -> DomainChecker:
    """Checks reaching ``site`` for the domain and www.: named exactly, loopback, test CA."""
    loopback = {DOMAIN: site.endpoint(), f"www.{DOMAIN}": site.endpoint()}
    settings = {"ca_file": site.ca_file, "loopback": loopback, "timeout_s": 2.0} | options
    return DomainChecker(resolver or MemoryResolver(), CheckOptions(**settings))  # type: ignore[arg-type]


def test_a_txt_record_proves_the_domain_without_any_https_request(site: Site) -> None:
    resolver = MemoryResolver({f"_plugport.{DOMAIN}": ["v=spf1 -all", txt_value(TOKEN)]})
    result = checker(site, resolver).check(DOMAIN, TOKEN)
    assert (result.proved_by, result.dns) == ("dns", "proved")
    assert site.seen == []


def test_the_https_file_proves_it_when_dns_does_not(site: Site) -> None:
    site.answers[(DOMAIN, WELL_KNOWN_PATH)] = Answer(body=f"{TOKEN}\n".encode())
    result = checker(site).check(DOMAIN, TOKEN)
    assert result.proved_by == "https"
    assert result.dns == f"no TXT record at _plugport.{DOMAIN}"
    assert site.seen == [(DOMAIN, WELL_KNOWN_PATH)]


def test_a_redirect_to_a_subdomain_is_followed_and_checked(site: Site) -> None:
    site.answers[(DOMAIN, WELL_KNOWN_PATH)] = Answer(
        301, headers={"location": f"https://www.{DOMAIN}{WELL_KNOWN_PATH}"}
    )
    site.answers[(f"www.{DOMAIN}", WELL_KNOWN_PATH)] = Answer(body=TOKEN.encode())
    assert checker(site).check(DOMAIN, TOKEN).proved_by == "https"


def test_a_wrong_token_proves_nothing(site: Site) -> None:
    other = "Z" * 32
    resolver = MemoryResolver({f"_plugport.{DOMAIN}": [txt_value(other)]})
    site.answers[(DOMAIN, WELL_KNOWN_PATH)] = Answer(body=other.encode())
    result = checker(site, resolver).check(DOMAIN, TOKEN)
    assert not result.proved
    assert result.dns == f"no TXT record at _plugport.{DOMAIN} is {txt_value(TOKEN)!r}"
    assert result.https == f"https://{DOMAIN}{WELL_KNOWN_PATH} does not hold the token"


def test_a_missing_record_and_file_prove_nothing(site: Site) -> None:
    result = checker(site).check(DOMAIN, TOKEN)
    assert not result.proved
    assert "no TXT record" in result.dns
    assert result.https == f"https://{DOMAIN}{WELL_KNOWN_PATH} answered HTTP 404"


def test_a_dns_failure_is_reported_and_https_still_tried(site: Site) -> None:
    site.answers[(DOMAIN, WELL_KNOWN_PATH)] = Answer(body=TOKEN.encode())
    resolver = MemoryResolver(failing=[f"_plugport.{DOMAIN}"])
    result = checker(site, resolver).check(DOMAIN, TOKEN)
    assert result.proved_by == "https"
    assert result.dns.startswith(f"could not read TXT _plugport.{DOMAIN}")


@pytest.mark.parametrize(
    ("location", "addresses", "refusal"),
    [
        (f"https://internal.{DOMAIN}/t", ["10.1.2.3"], "private (10.0.0.0/8)"),
        (f"https://meta.{DOMAIN}/t", ["169.254.169.254"], "cloud metadata"),
        (f"https://mixed.{DOMAIN}/t", ["93.184.216.34", "127.0.0.1"], "loopback"),
        ("https://127.0.0.1/t", [], "is an IP address"),
        ("https://evil.example/t", [], "not in the plugin's network grants"),
        (f"http://{DOMAIN}/t", [], "only https URLs may be fetched, not 'http'"),
    ],
)
def test_a_redirect_to_a_private_or_foreign_target_is_refused(
    site: Site, location: str, addresses: list[str], refusal: str
) -> None:
    site.answers[(DOMAIN, WELL_KNOWN_PATH)] = Answer(302, headers={"location": location})
    host = location.split("/")[2]
    resolver = MemoryResolver(addresses={host: addresses} if addresses else {})
    result = checker(site, resolver).check(DOMAIN, TOKEN)
    assert not result.proved
    assert result.https.startswith("refused: ")
    assert refusal in result.https
    assert site.seen == [(DOMAIN, WELL_KNOWN_PATH)]  # the redirect target was never asked


def test_loopback_is_refused_unless_named_exactly(site: Site) -> None:
    """The domain resolving to 127.0.0.1 is refused by default; only ``loopback`` reaches a
    local server, and only for the name it lists."""
    site.answers[(DOMAIN, WELL_KNOWN_PATH)] = Answer(body=TOKEN.encode())
    resolver = MemoryResolver(addresses={DOMAIN: ["127.0.0.1"]})
    plain = DomainChecker(resolver, CheckOptions(ca_file=site.ca_file, timeout_s=2.0))
    result = plain.check(DOMAIN, TOKEN)
    assert not result.proved
    assert "loopback (127.0.0.0/8)" in result.https
    assert site.seen == []


def test_a_loopback_entry_must_be_a_loopback_address() -> None:
    with pytest.raises(ValueError, match="a local service is a loopback address"):
        DomainChecker(MemoryResolver(), CheckOptions(loopback={DOMAIN: "10.0.0.1:443"}))


def test_the_certificate_is_verified_even_for_the_local_server(site: Site) -> None:
    site.answers[(DOMAIN, WELL_KNOWN_PATH)] = Answer(body=TOKEN.encode())
    untrusting = DomainChecker(
        MemoryResolver(), CheckOptions(loopback={DOMAIN: site.endpoint()}, timeout_s=2.0)
    )
    result = untrusting.check(DOMAIN, TOKEN)
    assert not result.proved
    assert "CERTIFICATE_VERIFY_FAILED" in result.https


def test_an_oversized_answer_is_not_read(site: Site) -> None:
    site.answers[(DOMAIN, WELL_KNOWN_PATH)] = Answer(body=TOKEN.encode() + b" " * 5000)
    result = checker(site, max_body_bytes=1024).check(DOMAIN, TOKEN)
    assert not result.proved
    assert "larger than 1024 bytes" in result.https


def test_a_slow_server_times_out(site: Site) -> None:
    site.answers[(DOMAIN, WELL_KNOWN_PATH)] = Answer(body=TOKEN.encode(), delay_s=1.5)
    result = checker(site, timeout_s=0.3).check(DOMAIN, TOKEN)
    assert not result.proved
    assert "no complete answer within 0.3 s" in result.https


def test_too_many_redirects_stop(site: Site) -> None:
    site.answers[(DOMAIN, WELL_KNOWN_PATH)] = Answer(
        302, headers={"location": f"https://{DOMAIN}{WELL_KNOWN_PATH}"}
    )
    result = checker(site, max_redirects=2).check(DOMAIN, TOKEN)
    assert result.https == "more than 2 redirects"
    assert len(site.seen) == 3
