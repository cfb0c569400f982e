"""Consent (what an install asks for beyond what was granted, and when to ask) and sources
(what the text an operator typed names), both decided without I/O."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugport.errors import InvalidInputError
from plugport.host.consent import ConsentRequest, accept_all, needs_consent, refuse_growth
from plugport.host.resolver import Requirement
from plugport.host.sources import ARCHIVE_SUFFIX, Source, parse_source
from plugport.manifest import EventPermissions, Permissions

EVERYTHING = Permissions(
    network=["api.example.com", "hooks.example.com:8443"],
    storage=2048,
    events=EventPermissions(publish=["audit.log"], subscribe=["orders.created"]),
    ui=["messages", "commands"],
    config=True,
)
BEFORE = Permissions(
    network=["api.example.com"],
    storage=1024,
    events=EventPermissions(subscribe=["orders.**"]),
    ui=["messages"],
)


def request(requested: Permissions, before: Permissions | None) -> ConsentRequest:
    previous = None if before is None else "1.0.0"
    return ConsentRequest("acme.hello", "2.0.0", previous, requested, before)


# --- consent ----------------------------------------------------------------------------------


def test_a_new_install_asks_for_everything_it_requests() -> None:
    asked = request(EVERYTHING, None)
    assert asked.added == [
        "network 'api.example.com'",
        "network 'hooks.example.com:8443'",
        "storage 2048 > 0 bytes",
        "events.publish 'audit.log'",
        "events.subscribe 'orders.created'",
        "ui 'messages'",
        "ui 'commands'",
        "config",
    ]
    assert needs_consent(asked, None) is True


def test_an_update_asks_only_for_what_grows() -> None:
    asked = request(EVERYTHING, BEFORE)
    # orders.created is covered by the orders.** granted before
    assert asked.added == [
        "network 'hooks.example.com:8443'",
        "storage 2048 > 1024 bytes",
        "events.publish 'audit.log'",
        "ui 'commands'",
        "config",
    ]
    assert needs_consent(asked, None) is True


@pytest.mark.parametrize(
    ("requested", "grown"),
    [
        (Permissions(network=["new.example.com"]), ["network 'new.example.com'"]),
        (Permissions(storage=1025), ["storage 1025 > 1024 bytes"]),
        (
            Permissions(events=EventPermissions(publish=["orders.created"])),
            ["events.publish 'orders.created'"],
        ),
        (
            Permissions(events=EventPermissions(subscribe=["billing.paid"])),
            ["events.subscribe 'billing.paid'"],
        ),
        (Permissions(ui=["widgets"]), ["ui 'widgets'"]),
        (Permissions(config=True), ["config"]),
    ],
    ids=["network", "storage", "publish", "subscribe", "ui", "config"],
)
def test_each_kind_of_growth_needs_consent(requested: Permissions, grown: list[str]) -> None:
    asked = request(requested, BEFORE)
    assert asked.added == grown
    assert needs_consent(asked, None) is True
    assert needs_consent(asked, Permissions()) is True


def test_an_update_that_asks_for_no_more_needs_no_consent() -> None:
    smaller = Permissions(
        network=["api.example.com"],
        storage=512,
        events=EventPermissions(subscribe=["orders.created"]),
    )
    for requested in (smaller, BEFORE, Permissions()):
        asked = request(requested, BEFORE)
        assert asked.added == []
        assert needs_consent(asked, None) is False
        assert needs_consent(asked, Permissions()) is False


def test_a_plugin_that_asks_for_nothing_needs_no_consent() -> None:
    asked = request(Permissions(), None)
    assert asked.added == []
    assert needs_consent(asked, None) is False


def test_growth_within_the_preapproved_policy_needs_no_consent() -> None:
    asked = request(EVERYTHING, BEFORE)
    assert needs_consent(asked, EVERYTHING) is False
    wider = Permissions(
        network=["api.example.com", "hooks.example.com:8443", "other.example.com"],
        storage=1024**2,
        events=EventPermissions(publish=["audit.**"], subscribe=["**"]),
        ui=["messages", "commands", "widgets"],
        config=True,
    )
    assert needs_consent(asked, wider) is False


def test_growth_beyond_the_preapproved_policy_needs_consent() -> None:
    asked = request(EVERYTHING, BEFORE)
    almost = EVERYTHING.model_copy(update={"storage": 2047})
    assert needs_consent(asked, almost) is True
    assert needs_consent(asked, Permissions(storage=4096)) is True


def test_the_request_is_shown_in_plain_words() -> None:
    assert request(EVERYTHING, BEFORE).lines == [
        "Connect to: api.example.com, hooks.example.com:8443",
        "Store up to 2 KiB of its own data",
        "Publish events: audit.log",
        "Receive events: orders.created",
        "User interface: show messages, add commands",
        "Read its own settings",
    ]
    assert request(Permissions(), None).lines == [
        "No permissions: it can only compute on what it is given"
    ]


def test_the_stock_consent_answers() -> None:
    asked = request(EVERYTHING, None)
    assert accept_all(asked) is True
    assert refuse_growth(asked) is False


# --- sources ----------------------------------------------------------------------------------


def parse(text: str, *, is_file: bool = False, is_dir: bool = False) -> Source:
    return parse_source(text, is_file=is_file, is_dir=is_dir)


@pytest.mark.parametrize(
    ("text", "name", "specifier"),
    [
        ("acme.hello", "acme.hello", "*"),
        ("  acme.hello  ", "acme.hello", "*"),
        ("acme.hello==1.2.0", "acme.hello", "==1.2.0"),
        ("acme.hello>=1,<2", "acme.hello", "<2,>=1"),
    ],
)
def test_a_name_or_specifier_is_a_registry_requirement(
    text: str, name: str, specifier: str
) -> None:
    source = parse(text)
    assert source == Source("registry", text.strip(), requirement=Requirement(name, specifier))


def test_text_that_is_not_a_requirement_is_refused() -> None:
    with pytest.raises(InvalidInputError, match=r"^'Acme Hello' is not a requirement"):
        parse("Acme Hello")


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/acme.hello-1.0.0.plugport",
        "https://example.com/dl/acme.hello-1.0.0.plugport?token=abc",
        "http://127.0.0.1:8000/acme.hello-1.0.0.plugport",
        "http://localhost/acme.hello-1.0.0.plugport",
        "http://[::1]:8080/acme.hello-1.0.0.plugport",
    ],
)
def test_an_https_or_loopback_http_url_of_an_archive_is_accepted(url: str) -> None:
    assert parse(f" {url} ") == Source("url", url)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/acme.hello-1.0.0.plugport",
        "http://127.0.0.2/acme.hello-1.0.0.plugport",
        "ftp://example.com/acme.hello-1.0.0.plugport",
        "file:///tmp/acme.hello-1.0.0.plugport",
    ],
)
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse(url)
    assert str(caught.value) == (
        f"{url!r}: only https URLs are installed from (http only on this machine)"
    )


@pytest.mark.parametrize(
    "url", ["https://example.com/acme.hello-1.0.0.zip", "https://example.com/", "https://x.y"]
)
def test_a_url_must_name_an_archive(url: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse(url)
    assert str(caught.value) == f"{url!r}: a URL must name a .plugport archive"


def test_an_existing_archive_file_is_a_file_source(tmp_path: Path) -> None:
    archive = tmp_path / f"acme.hello-1.0.0{ARCHIVE_SUFFIX}"
    archive.write_bytes(b"zip")
    text = str(archive)
    assert parse(text, is_file=archive.is_file(), is_dir=archive.is_dir()) == Source(
        "file", text, path=archive
    )
    # a file is a file whatever its name says
    assert parse("downloaded.bin", is_file=True) == Source(
        "file", "downloaded.bin", path=Path("downloaded.bin")
    )


def test_a_directory_is_a_development_source(tmp_path: Path) -> None:
    text = str(tmp_path)
    assert parse(text, is_file=tmp_path.is_file(), is_dir=tmp_path.is_dir()) == Source(
        "dev", text, path=tmp_path
    )


def test_a_missing_archive_file_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "gone" / "acme.hello-1.0.0.plugport"
    with pytest.raises(InvalidInputError) as caught:
        parse(str(missing), is_file=missing.is_file(), is_dir=missing.is_dir())
    assert str(caught.value) == f"{missing}: no such archive"


@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_empty_text_is_refused(text: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse(text)
    assert str(caught.value) == "an empty plugin to install; give a name, a URL or a path"


def test_a_plugin_named_like_an_archive_is_a_registry_name() -> None:
    """'acme.plugport' is a valid plugin name: without such a file, it means the plugin."""
    source = parse("acme.plugport", is_file=False, is_dir=False)
    assert source.kind == "registry"
    assert source.requirement is not None
    assert source.requirement.name == "acme.plugport"
    with pytest.raises(InvalidInputError, match=r"^Not-A-Name\.plugport: no such archive$"):
        parse("Not-A-Name.plugport", is_file=False, is_dir=False)
