"""What a package index's pages mean and which wheel is chosen, decided without I/O; and the
HTTP side (``PackageIndex``) on httpx's in-memory transport: the URL rule at every redirect,
the content types, the caps."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from packaging.tags import Tag

from plugport.errors import (
    ArchiveLimitError,
    InvalidInputError,
    NotFoundError,
    RegistryResponseError,
    SignatureError,
)
from plugport.host._index_rules import (
    JSON_TYPE,
    IndexFile,
    check_url,
    choose_wheel,
    parse_index_requirement,
    parse_project_page,
    project_url,
)
from plugport.host.package_index import PackageIndex

PAGE = "https://pypi.example.com/simple/acme-hello/"
PY3 = Tag("py3", "none", "any")
CP311 = Tag("cp311", "cp311", "manylinux_2_17_x86_64")
TAGS = [CP311, PY3]


def files(*names: str, yanked: dict[str, str] | None = None) -> list[IndexFile]:
    yanked = yanked or {}
    return [IndexFile(n, PAGE + n, None, yanked.get(n)) for n in names]


def choose(candidates: list[IndexFile], text: str, python: str = "3.11.7") -> str:
    chosen = choose_wheel(
        candidates, parse_index_requirement(text), tags=TAGS, python_version=python, page_url=PAGE
    )
    return chosen.filename


# --- URLs and names -------------------------------------------------------------------------


def test_urls_are_https_or_local_http() -> None:
    assert check_url("https://pypi.example.com/simple/", what="x")
    for local in ("http://127.0.0.1:8000/simple/", "http://localhost/simple/", "http://[::1]/"):
        assert check_url(local, what="x") == local
    for refused in ("http://pypi.example.com/simple/", "ftp://x/", "file:///etc/", "https:///x"):
        with pytest.raises(InvalidInputError, match="only https"):
            check_url(refused, what="--index-url")


def test_the_project_page_is_the_normalised_name() -> None:
    assert project_url("https://i.example/simple", "acme.hello") == (
        "https://i.example/simple/acme-hello/"
    )
    assert project_url("https://i.example/simple/", "Acme_Hello") == (
        "https://i.example/simple/acme-hello/"
    )


def test_requirements() -> None:
    plugin = parse_index_requirement("acme.hello==1.0.0")
    assert (plugin.project, str(plugin.specifier), plugin.pinned) == ("acme-hello", "==1.0.0", True)
    assert plugin.plugin_name == "acme.hello"
    project = parse_index_requirement("acme-hello>=1,<2")
    assert (project.plugin_name, project.pinned) == (None, False)
    assert parse_index_requirement("acme.hello==1.*").pinned is False
    for bad in ("acme.hello[x]", "acme.hello; python_version>'3'", "not a name!", "x @ https://y"):
        with pytest.raises(InvalidInputError):
            parse_index_requirement(bad)


# --- pages ------------------------------------------------------------------------------------


def test_a_pep_691_page() -> None:
    document = {
        "meta": {"api-version": "1.1"},
        "name": "acme-hello",
        "files": [
            {
                "filename": "acme_hello-1.0.0-py3-none-any.whl",
                "url": "../../files/acme_hello-1.0.0-py3-none-any.whl",
                "hashes": {"sha256": "A" * 64},
                "requires-python": ">=3.11",
                "yanked": "broken",
            },
            {"filename": "b.whl", "url": "https://cdn.example/b.whl", "hashes": {}, "yanked": True},
            {"filename": "c.whl", "url": "c.whl", "yanked": False},
            {"filename": "no-url.whl"},
        ],
    }
    parsed = parse_project_page(json.dumps(document).encode(), JSON_TYPE, PAGE)
    assert parsed == [
        IndexFile(
            "acme_hello-1.0.0-py3-none-any.whl",
            "https://pypi.example.com/files/acme_hello-1.0.0-py3-none-any.whl",
            "a" * 64,
            "broken",
            ">=3.11",
        ),
        IndexFile("b.whl", "https://cdn.example/b.whl", None, ""),
        IndexFile("c.whl", PAGE + "c.whl", None, None),
    ]
    with pytest.raises(InvalidInputError, match=re.escape("api-version '2.0'")):
        parse_project_page(b'{"meta": {"api-version": "2.0"}, "files": []}', JSON_TYPE, PAGE)


def test_a_pep_503_page() -> None:
    html = (
        "<html><body>"
        '<a href="../../files/acme_hello-1.0.0-py3-none-any.whl#sha256=' + "b" * 64 + '" '
        'data-requires-python="&gt;=3.11" data-yanked="">acme_hello-1.0.0-py3-none-any.whl</a>'
        '<a href="https://cdn.example/x/acme%5Fhello-1.1.0-py3-none-any.whl#md5=00">x</a>'
        "<a>no href</a></body></html>"
    )
    parsed = parse_project_page(html.encode(), "text/html; charset=utf-8", PAGE)
    assert parsed == [
        IndexFile(
            "acme_hello-1.0.0-py3-none-any.whl",
            "https://pypi.example.com/files/acme_hello-1.0.0-py3-none-any.whl",
            "b" * 64,
            "",
            ">=3.11",
        ),
        IndexFile(
            "acme_hello-1.1.0-py3-none-any.whl",
            "https://cdn.example/x/acme%5Fhello-1.1.0-py3-none-any.whl",
            None,
            None,
            None,
        ),
    ]


def test_neither_json_nor_html_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="neither a PEP 691 JSON nor a PEP 503 HTML"):
        parse_project_page(b"{}", "application/json", PAGE)


# --- choosing ---------------------------------------------------------------------------------


def test_the_highest_admitted_version_with_the_best_tag() -> None:
    page = files(
        "acme_hello-1.0.0-py3-none-any.whl",
        "acme_hello-1.1.0-py3-none-any.whl",
        "acme_hello-1.1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
        "acme_hello-2.0.0-cp27-cp27mu-manylinux1_x86_64.whl",
        "acme_hello-2.1.0.tar.gz",
        "other_project-9.0.0-py3-none-any.whl",
        "acme_hello-3.0.0rc1-py3-none-any.whl",
    )
    assert choose(page, "acme.hello") == "acme_hello-1.1.0-cp311-cp311-manylinux_2_17_x86_64.whl"
    assert choose(page, "acme.hello<1.1") == "acme_hello-1.0.0-py3-none-any.whl"
    assert choose(page, "acme.hello>=3.0.0rc1") == "acme_hello-3.0.0rc1-py3-none-any.whl"


def test_yanked_only_when_pinned() -> None:
    page = files(
        "acme_hello-1.0.0-py3-none-any.whl",
        "acme_hello-1.1.0-py3-none-any.whl",
        yanked={"acme_hello-1.1.0-py3-none-any.whl": ""},
    )
    assert choose(page, "acme.hello") == "acme_hello-1.0.0-py3-none-any.whl"
    assert choose(page, "acme.hello==1.1.0") == "acme_hello-1.1.0-py3-none-any.whl"
    with pytest.raises(NotFoundError, match=r"1.1.0: yanked: pin it with ==1.1.0"):
        choose(page, "acme.hello>1.0")


def test_requires_python_is_respected() -> None:
    page = [
        IndexFile("acme_hello-1.0.0-py3-none-any.whl", PAGE, None, None, ">=3.8"),
        IndexFile("acme_hello-1.1.0-py3-none-any.whl", PAGE, None, None, ">=3.13"),
    ]
    assert choose(page, "acme.hello") == "acme_hello-1.0.0-py3-none-any.whl"
    with pytest.raises(NotFoundError, match=re.escape("requires Python >=3.13")):
        choose(page, "acme.hello==1.1.0")


def test_what_is_missing_is_named() -> None:
    page = files("acme_hello-1.0.0-py3-none-any.whl", "acme_hello-1.2.0-py3-none-any.whl")
    with pytest.raises(NotFoundError, match=r"has 1.2.0, 1.0.0"):
        choose(page, "acme.hello==2.0")
    with pytest.raises(NotFoundError, match=r"has no wheel of acme-hello \(it lists only x.tar"):
        choose(files("x.tar.gz"), "acme.hello")
    with pytest.raises(NotFoundError, match="most specific tag is cp311-cp311-manylinux"):
        choose(files("acme_hello-1.0.0-cp27-none-win32.whl"), "acme.hello")


# --- HTTP -------------------------------------------------------------------------------------


def index(handler: httpx.MockTransport, url: str = "https://pypi.example.com/simple/") -> Any:
    return PackageIndex(url, transport=handler)


def test_json_is_asked_for_and_redirects_are_checked() -> None:
    seen: list[tuple[str, str]] = []

    def serve(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("Accept", "")))
        if request.url.path == "/simple/acme-hello/":
            return httpx.Response(301, headers={"Location": "https://mirror.example.com/p/"})
        if request.url.host == "mirror.example.com":
            page = {"meta": {"api-version": "1.0"}, "files": [{"filename": "a.whl", "url": "a"}]}
            return httpx.Response(200, json=page, headers={"Content-Type": JSON_TYPE})
        return httpx.Response(404)

    with index(httpx.MockTransport(serve)) as client:
        page, found = client.project("acme.hello")
        assert page == "https://mirror.example.com/p/"
        assert found == [IndexFile("a.whl", "https://mirror.example.com/p/a", None, None)]
        client.project("acme.hello")  # asked once per operation
    assert len(seen) == 2
    assert seen[0][1].startswith(JSON_TYPE)
    assert "text/html;q=0.1" in seen[0][1]


def test_a_redirect_to_plain_http_elsewhere_is_refused() -> None:
    def serve(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "http://evil.example.com/simple/x/"})

    with (
        index(httpx.MockTransport(serve)) as client,
        pytest.raises(InvalidInputError, match=re.escape("'http://evil.example.com/simple/x/'")),
    ):
        client.project("x")


def test_downloads_are_capped_and_hash_checked(tmp_path: Path) -> None:
    def serve(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"x" * 100)

    with index(httpx.MockTransport(serve)) as client:
        file = IndexFile("a.whl", "https://pypi.example.com/a.whl", None, None)
        assert client.download(file, tmp_path / "a", max_bytes=100)[1] == 100
        with pytest.raises(ArchiveLimitError):
            client.download(file, tmp_path / "b", max_bytes=99)
        wrong = IndexFile("a.whl", file.url, "0" * 64, None)
        with pytest.raises(
            SignatureError, match=re.escape("the package index lists a.whl with sha256")
        ):
            client.download(wrong, tmp_path / "c", max_bytes=1000)
        assert client.optional(file.url + ".sig", max_bytes=1000) == b"x" * 100


def test_a_missing_signature_is_none_and_a_missing_project_is_named() -> None:
    def serve(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404)

    with index(httpx.MockTransport(serve)) as client:
        assert client.optional("https://pypi.example.com/a.whl.sig", max_bytes=10) is None
        with pytest.raises(
            NotFoundError, match=re.escape("has no page https://pypi.example.com/simple/x/")
        ):
            client.project("x")


def test_an_unreachable_index_is_named() -> None:
    def serve(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with (
        index(httpx.MockTransport(serve)) as client,
        pytest.raises(RegistryResponseError) as caught,
    ):
        client.project("x")
    assert caught.value.status == 0
    assert "cannot reach the package index at https://pypi.example.com/simple/" in str(caught.value)
