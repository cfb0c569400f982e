"""Content from the archive, end to end on the real registry: an icon, screenshots, README and
changelog are checked at publish, stored as content-addressed blobs, served with immutable
caching and a safe type, shown on the plugin's page and cards and linked from the JSON API;
a file that fails its check refuses the upload and stores nothing."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from plugport import scaffold
from plugport.archive import pack_tree
from tests.host._plugins import approve
from tests.registry.conftest import Registry
from tests.registry.test_publish import Publisher, nothing_stored, stored_blobs
from tests.test_content_rules import SVG, png

README = """# Hello

Says **hello**.

<script>alert("readme")</script>
<img src=x onerror=alert(1)>
[click](javascript:alert(2)) and [docs](https://example.com/docs)
"""
CHANGELOG = "## 1.0.0\n\n- First release.\n"


def _with_content(
    icon: tuple[str, bytes] | None = ("assets/icon.svg", SVG),
    screenshots: tuple[tuple[str, bytes], ...] = (("assets/shot.png", png(320, 200)),),
    readme: str | None = README,
) -> object:
    def edit(source: Path) -> None:
        manifest = source / "plugport.toml"
        lines = manifest.read_text().splitlines()
        at = next(i for i, line in enumerate(lines) if line.startswith("version")) + 1
        added = []
        for path, data in ([icon] if icon else []) + list(screenshots):
            (source / path).parent.mkdir(parents=True, exist_ok=True)
            (source / path).write_bytes(data)
        if icon:
            added.append(f'icon = "{icon[0]}"')
        if screenshots:
            added.append("screenshots = [" + ", ".join(f'"{p}"' for p, _ in screenshots) + "]")
        manifest.write_text("\n".join([*lines[:at], *added, *lines[at:]]) + "\n")
        if readme is not None:
            (source / "README.md").write_text(readme)
        (source / "CHANGELOG.md").write_text(CHANGELOG)

    return edit


def _publish(registry: Registry, publisher: Publisher, edit: object) -> None:
    archive = publisher.build(edit=edit)  # type: ignore[arg-type]
    response = publisher.upload(archive)
    assert response.status_code == 201, response.text
    if response.json()["status"] != "published":
        approve(registry, "acme.hello", response.json()["version"])


def test_published_content_is_served_immutable_shown_and_linked(
    registry: Registry, tmp_path: Path
) -> None:
    publisher = Publisher(registry, tmp_path)
    _publish(registry, publisher, _with_content())
    assert registry.count("version_content") == 4  # icon, screenshot, README, changelog

    with registry.client() as client:
        body = client.get("/api/v1/plugins/acme.hello").json()
        content = body["content"]
        icon_digest = hashlib.sha256(SVG).hexdigest()
        assert content["icon"] == f"/api/v1/plugins/acme.hello/content/{icon_digest}"
        assert content["icon_type"] == "image/svg+xml"
        assert [(s["width"], s["height"]) for s in content["screenshots"]] == [(320, 200)]

        icon = client.get(content["icon"])
        assert icon.status_code == 200
        assert icon.content == SVG
        assert icon.headers["content-type"] == "image/svg+xml"
        assert icon.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert icon.headers["x-content-type-options"] == "nosniff"
        assert icon.headers["content-security-policy"].startswith(
            "default-src 'none'; style-src 'unsafe-inline'"
        )
        assert (
            client.get(content["icon"], headers={"If-None-Match": f'"{icon_digest}"'}).status_code
            == 304
        )
        shot = client.get(content["screenshots"][0]["url"])
        assert shot.headers["content-type"] == "image/png"

        readme = client.get(content["readme"]["html_url"])
        assert readme.headers["content-type"] == "text/html; charset=utf-8"
        html = readme.text
        assert "<strong>hello</strong>" in html
        assert "<script" not in html
        assert "<img" not in html
        assert 'href="javascript:' not in html
        # Raw HTML is shown as text, never passed through:
        assert "&lt;script&gt;" in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html
        assert 'href="https://example.com/docs"' in html
        assert client.get(content["changelog"]["url"]).text == CHANGELOG

        # Only files of published versions, and only through their own plugin:
        archive_digest = client.get("/api/v1/plugins/acme.hello/versions").json()[0]["sha256"]
        assert client.get(f"/api/v1/plugins/acme.hello/content/{archive_digest}").status_code == 404
        assert client.get("/api/v1/plugins/acme.hello/content/../../x").status_code == 404
        assert client.get(f"{content['icon']}/html").status_code == 404

        page = client.get("/plugins/acme.hello").text
        assert f'src="{content["icon"]}"' in page
        assert 'data-testid="screenshot"' in page
        assert 'width="320" height="200"' in page
        for tab in (
            'href="#readme"',
            'href="#changelog"',
            'href="#versions-title"',
            'href="#reviews"',
        ):
            assert tab in page
        readme_part = page.split('id="readme-text"', 1)[1].split("</section>", 1)[0]
        assert "<strong>hello</strong>" in readme_part
        assert "<script" not in readme_part
        assert "<img" not in readme_part
        assert "&lt;script&gt;" in readme_part
        assert "First release." in page.split('id="changelog-text"', 1)[1]

        card = client.get("/search?q=hello").text
        assert f'src="{content["icon"]}"' in card


def test_a_plugin_without_content_shows_a_placeholder_and_says_so(
    registry: Registry, tmp_path: Path
) -> None:
    publisher = Publisher(registry, tmp_path)
    _publish(registry, publisher, _with_content(icon=None, screenshots=(), readme=None))
    with registry.client() as client:
        content = client.get("/api/v1/plugins/acme.hello").json()["content"]
        assert content["icon"] is None
        assert content["screenshots"] == []
        page = client.get("/plugins/acme.hello").text
        assert 'data-testid="plugin-icon-placeholder"' in page
        assert 'id="screenshots"' not in page
        assert 'data-testid="plugin-icon-placeholder"' in client.get("/search?q=hello").text


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (
            _with_content(icon=("assets/icon.svg", SVG.replace(b"<circle", b"<script/><circle"))),
            "icon: assets/icon.svg has a <script> element",
        ),
        (
            _with_content(screenshots=(("assets/big.png", png(4000, 10)),)),
            "screenshots: assets/big.png is 4000x10 pixels",
        ),
    ],
)
def test_a_file_that_fails_its_check_refuses_the_upload_storing_nothing(
    registry: Registry, tmp_path: Path, edit: object, said: str
) -> None:
    publisher = Publisher(registry, tmp_path)
    source = tmp_path / "pkg"
    scaffold.create_plugin("acme.hello", "basic", source)
    edit(source)  # type: ignore[operator]
    # Packed as it is (pack_plugin would refuse it first, as validate does): a hand-made upload.
    archive = tmp_path / "acme.hello-0.1.0.plugport"
    pack_tree(source, archive)
    response = publisher.upload(archive)
    assert response.status_code == 422, response.text
    assert said in response.text
    nothing_stored(registry, tmp_path)
    assert registry.count("version_content") == 0


def test_deleting_the_plugin_removes_its_content_blobs(registry: Registry, tmp_path: Path) -> None:
    publisher = Publisher(registry, tmp_path)
    _publish(registry, publisher, _with_content())
    blobs = tmp_path / "data" / "blobs"
    assert len(stored_blobs(blobs)) == 5  # the archive and four files
    with registry.client(registry.admin) as admin:
        assert admin.delete("/api/v1/plugins/acme.hello").status_code == 200
    assert registry.count("version_content") == 0
    deadline = time.monotonic() + 5  # removed by a background task once the response is sent
    while stored_blobs(blobs) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stored_blobs(blobs) == []
