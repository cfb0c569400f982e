"""The shared web core: autoescaped templates over the base layout, static mounts in the order
that lets extras win, flash cookies that survive one round trip, and CSRF tokens bound to one
session."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Response
from starlette.requests import Request
from starlette.routing import Mount

from plugport import _web


def _request(cookie: str = "") -> Request:
    headers = [(b"cookie", cookie.encode())] if cookie else []
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})


def test_pages_extend_the_base_layout_and_everything_is_escaped(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text(
        '{% extends "base.html" %}{% block content %}<h1>{{ title }}</h1>{% endblock %}'
    )
    templates = _web.make_templates(tmp_path, product="Test <Product>")
    html = templates.get_template("page.html").render(
        title="<script>x</script>", flashes=[("error", "<b>no</b>")]
    )
    assert '<html lang="en">' in html
    assert '<a class="skip-link" href="#main">' in html
    assert '<main id="main"' in html
    assert "<h1>&lt;script&gt;x&lt;/script&gt;</h1>" in html
    assert "Test &lt;Product&gt;" in html
    assert 'data-kind="error">&lt;b&gt;no&lt;/b&gt;</p>' in html
    assert (_web.STATIC_DIR / "plugport.css").is_file()


def test_extra_static_directories_are_mounted_before_the_core(tmp_path: Path) -> None:
    app = FastAPI()
    _web.mount_static(app, {"registry": tmp_path})
    mounts = [r.path for r in app.routes if isinstance(r, Mount)]
    assert mounts == ["/static/registry", "/static"]


def test_a_flash_message_is_read_from_its_cookie_once() -> None:
    response = Response()
    _web.set_flash(response, "Saved <ok>", "success")
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    value = cookie.split(";", 1)[0]
    request = _request(value)
    assert _web.pop_flashes(request) == [("success", "Saved <ok>")]
    shown = Response()
    _web.clear_shown_flash(request, shown)
    assert f"{_web.FLASH_COOKIE}=" in shown.headers["set-cookie"]
    assert "Max-Age=0" in shown.headers["set-cookie"]
    assert _web.pop_flashes(_request(f"{_web.FLASH_COOKIE}=garbage")) == []


def test_a_csrf_token_belongs_to_one_session_and_one_secret() -> None:
    token = _web.csrf_token(b"secret", "session-a")
    assert _web.csrf_valid(b"secret", "session-a", token)
    assert not _web.csrf_valid(b"secret", "session-b", token)
    assert not _web.csrf_valid(b"other", "session-a", token)
    assert not _web.csrf_valid(b"secret", "session-a", None)
    assert not _web.csrf_valid(b"secret", "", _web.csrf_token(b"secret", ""))


def test_a_secret_read_is_red_on_every_consent_screen() -> None:
    from plugport._permissions import describe_permissions, is_dangerous
    from plugport.manifest import Permissions

    lines = describe_permissions(
        Permissions.model_validate(
            {"credentials": {"jira": ["api.example.com"]}, "secrets": {"reveal": ["jira"]}}
        )
    )
    assert [is_dangerous(line) for line in lines] == [False, True]
    env = _web.make_templates().env
    html = env.from_string(
        '{% for l in lines %}<li{% if l is dangerous %} class="permission-danger"{% endif %}>'
        "{{ l }}</li>{% endfor %}"
    ).render(lines=lines)
    assert html.count('class="permission-danger"') == 1
    assert 'class="permission-danger">READS THE RAW VALUE of secret &#39;jira&#39;' in html
    # the permission diff (an update's consent) names the same grant, and it is red too
    from plugport._permissions import permissions_beyond

    granted = Permissions.model_validate({"credentials": {"jira": ["api.example.com"]}})
    wanted = Permissions.model_validate(
        {"credentials": {"jira": ["api.example.com"]}, "secrets": {"reveal": ["jira"]}}
    )
    assert [(line, is_dangerous(line)) for line in permissions_beyond(granted, wanted)] == [
        ("secrets.reveal 'jira'", True)
    ]
    assert not is_dangerous("secrets.sign 'jira'")
    root = Path(_web.__file__).parent.parent
    for template in (
        "host/service/templates/install.html",
        "host/service/templates/operation.html",
        "registry/web/templates/plugin.html",
    ):
        assert "is dangerous" in (root / template).read_text(), template
