"""The registry's authorisation table: every API endpoint that changes something or looks at
the caller's token, against every kind of token, with the exact status each must answer.

``TABLE`` is the table, written once; ``test_every_guarded_route_is_in_the_table`` reads the
app's routes, so a new endpoint that is not in it fails the suite. Each cell runs against a
target of its own (a fresh plugin, key, member, token...), so the cells do not depend on each
other; a refused cell must leave every table exactly as it was.

The token states: ``none``, ``malformed``, ``unknown`` (well formed, never issued),
``expired`` and ``revoked`` (the owner's, with the right scope), ``wrong scope`` (someone
without a role, with a scope of the wrong kind), ``other namespace`` (beta's owner with
``publish:beta``), ``owner, no scope`` (acme's owner with a scope of the wrong kind: the
``review`` token that could add signing keys before), ``scope, no role`` (the right scope,
held by someone with no role in acme), ``member`` (acme's member with ``publish:acme``),
``right scope`` (acme's owner with the right scope) and ``admin``.
"""

from __future__ import annotations

import itertools
import secrets
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts
from sqlalchemy import text

from plugport.authoring import archive_facts, pack_plugin
from plugport.registry import deps
from plugport.registry.app import create_app
from plugport.registry.db import make_sessions
from plugport.registry.models import (
    AbuseReport,
    Namespace,
    Plugin,
    PluginVersion,
    Review,
    utcnow,
)
from plugport.registry.services import domains, namespaces, tokens
from plugport.registry.settings import RegistrySettings
from plugport.registry.verification import CheckResult, DomainChecker, MemoryResolver
from plugport.signing import generate_private_key, public_key_pem, sign
from tests.host._plugins import write
from tests.registry.conftest import Registry, engine_for, running
from tests.registry.test_access import error_of

STATES = (
    "none",
    "malformed",
    "unknown",
    "expired",
    "revoked",
    "wrong scope",
    "other namespace",
    "owner, no scope",
    "scope, no role",
    "member",
    "right scope",
    "admin",
)
RIGHT_SCOPE = {  # what a row needs -> the scope its "right scope" token carries
    "any": "review",  # any valid token will do; the route decides by identity
    "review": "review",
    "admin": "admin",
    "publish": "publish:acme",  # and a role in acme: owner or member
    "manage": "publish:acme",  # and acme's owner
}
TABLES = (  # compared before and after each refused cell
    "namespaces",
    "namespace_members",
    "domain_verifications",
    "publisher_keys",
    "api_tokens",
    "plugins",
    "plugin_versions",
    "reviews",
    "profiles",
    "daily_stats",
    "audit_records",
    "abuse_reports",
)


@dataclass
class World:
    """A running registry with namespace acme (owner ada, member mel, a publisher key) and
    namespace beta (owner bob)."""

    registry: Registry
    key: Ed25519PrivateKey
    root: Path
    ids: Iterator[int] = field(default_factory=itertools.count)

    def session(self) -> Any:
        return make_sessions(self.registry.engine).begin()

    def plugin(
        self, *, status: str = "published", yanked: bool = False, quarantined: bool = False
    ) -> str:
        """A new plugin in acme with version 1.0.0 (rows only: no archive is downloaded)."""
        name = f"acme.p{next(self.ids)}"
        manifest = {"name": name, "version": "1.0.0", "display_name": name, "description": "x"}
        with self.session() as session:
            namespace = namespaces.get_namespace(session, "acme")
            plugin = Plugin(name=name, namespace_id=namespace.id, display_name=name)
            session.add(plugin)
            session.flush()
            published = status == "published"
            session.add(
                PluginVersion(
                    plugin_id=plugin.id,
                    version="1.0.0",
                    status=status,
                    sha256="0" * 64,
                    length=1,
                    key_id="k",
                    manifest=manifest,
                    scan={},
                    yanked_reason="broken" if yanked else None,
                    quarantined_reason="malware" if quarantined else None,
                    published_at=utcnow() if published else None,
                )
            )
            plugin.latest_version = "1.0.0" if published and not yanked else None
        return name

    def report(self) -> int:
        """A new open report (by someone else) of a new plugin's version 1.0.0."""
        name = self.plugin()
        with self.session() as session:
            row = AbuseReport(
                reporter="carl", kind="version", plugin_name=name, version="1.0.0",
                target_key=f"version:{name}==1.0.0", reason="malware", text="", status="open",
            )  # fmt: skip
            session.add(row)
            session.flush()
            return int(row.id)

    def snapshot(self) -> dict[str, list[tuple[str, ...]]]:
        with self.registry.engine.connect() as connection:
            return {
                table: sorted(
                    tuple(map(repr, row))
                    for row in connection.execute(text(f"SELECT * FROM {table}"))  # noqa: S608 names from this module
                )
                for table in TABLES
            }


# --- what each row sends: (path, httpx options), given a world with a fresh target ---------

Prepare = Callable[[World], tuple[str, dict[str, Any]]]


def _json(path: str, body: Any = None) -> Prepare:
    return lambda w: (path, {} if body is None else {"json": body})


def _new_token(w: World) -> tuple[str, dict[str, Any]]:
    return "/api/v1/tokens", {"json": {"identity": f"t{next(w.ids)}", "scopes": ["review"]}}


def _new_display_name(w: World) -> tuple[str, dict[str, Any]]:
    return "/api/v1/profile", {"json": {"display_name": f"Person {next(w.ids)}"}}


def _owner_token(w: World) -> tuple[str, dict[str, Any]]:
    """A token of ada's, for its owner (or an admin) to revoke."""
    return f"/api/v1/tokens/{w.registry.token('ada', 'review').split('_')[1]}", {}


def _new_namespace(w: World) -> tuple[str, dict[str, Any]]:
    return "/api/v1/namespaces", {"json": {"name": f"n{next(w.ids)}", "owner": "x"}}


def _new_member(w: World) -> tuple[str, dict[str, Any]]:
    return "/api/v1/namespaces/acme/members", {"json": {"identity": f"m{next(w.ids)}"}}


def _old_member(w: World) -> tuple[str, dict[str, Any]]:
    identity = f"m{next(w.ids)}"
    with w.session() as session:
        acme = namespaces.get_namespace(session, "acme")
        namespaces.add_member(session, acme, identity, "member", actor="setup")
    return "/api/v1/namespaces/acme/members", {"params": {"identity": identity}}


def _pem() -> str:
    return public_key_pem(generate_private_key().public_key())


def _new_key(w: World) -> tuple[str, dict[str, Any]]:
    return "/api/v1/namespaces/acme/keys", {"json": {"public_key_pem": _pem()}}


def _old_key(w: World) -> tuple[str, dict[str, Any]]:
    with w.session() as session:
        key = namespaces.add_key(session, "acme", _pem(), actor="setup")
        keyid = key.key_id
    return f"/api/v1/namespaces/acme/keys/{keyid}", {}


def _new_domain(w: World) -> tuple[str, dict[str, Any]]:
    return "/api/v1/namespaces/acme/domains", {"json": {"domain": f"d{next(w.ids)}.example"}}


def _pending_domain(w: World) -> tuple[str, dict[str, Any]]:
    domain = f"d{next(w.ids)}.example"
    with w.session() as session:
        acme = namespaces.get_namespace(session, "acme")
        domains.request_challenge(session, acme, domain, actor="setup")
    return f"/api/v1/namespaces/acme/domains/{domain}/check", {}


def _held_namespace(w: World) -> tuple[str, dict[str, Any]]:
    name = f"h{next(w.ids)}"
    with w.session() as session:
        session.add(Namespace(name=name, name_review="held", name_review_reason="looks like x"))
    return f"/api/v1/review/namespaces/{name}/clear", {"json": REASON}


class _AlwaysProved(DomainChecker):
    """Every domain proves itself: the table is about who may ask, not about DNS."""

    def check(self, domain: str, token: str) -> CheckResult:
        return CheckResult("dns", "proved", "not needed")


def _upload(w: World) -> tuple[str, dict[str, Any]]:
    version = f"1.0.{next(w.ids)}"
    archive = pack_plugin(write(w.root, "acme.up", version), w.root / "dist").result.path
    files = {
        "archive": ("a.plugport", archive.read_bytes()),
        "signature": ("a.sig", sign(w.key, archive_facts(archive))),
    }
    return "/api/v1/plugins/acme.up/versions", {"files": files}


def _on_plugin(suffix: str, body: Any = None, **made: Any) -> Prepare:
    def prepare(w: World) -> tuple[str, dict[str, Any]]:
        path = f"/api/v1/plugins/{w.plugin(**made)}{suffix}"
        return path, {} if body is None else {"json": body}

    return prepare


def _pending(suffix: str, body: Any = None) -> Prepare:
    def prepare(w: World) -> tuple[str, dict[str, Any]]:
        path = f"/api/v1/review/{w.plugin(status='pending_review')}/1.0.0{suffix}"
        return path, {} if body is None else {"json": body}

    return prepare


def _adas_review(w: World) -> tuple[str, dict[str, Any]]:
    name = w.plugin()
    with w.session() as session:
        plugin_id = session.scalar(text("SELECT id FROM plugins WHERE name = :n"), {"n": name})
        session.add(Review(plugin_id=plugin_id, identity="ada", stars=4, text=""))
    return f"/api/v1/plugins/{name}/reviews", {"params": {"identity": "ada"}}


def _new_report(w: World) -> tuple[str, dict[str, Any]]:
    return "/api/v1/reports", {"json": {"kind": "plugin", "plugin": w.plugin(), "reason": "spam"}}


def _on_report(suffix: str, body: Any = None) -> Prepare:
    def prepare(w: World) -> tuple[str, dict[str, Any]]:
        path = f"/api/v1/reports/{w.report()}{suffix}"
        return path, {} if body is None else {"json": body}

    return prepare


REASON = {"reason": "because"}

# --- the table: what a row needs, how to make its target, and the status for each state ----
#                     none/malformed/unknown/expired/revoked | wrong scope, other namespace,
#                     owner no scope, scope no role, member, right scope, admin
ADMIN_ONLY = "401 401 401 401 401  403 403 403 201 403 201 201"
ANYONE = "401 401 401 401 401  200 200 200 200 200 200 200"
OWN_OR_ADMIN = "401 401 401 401 401  403 403 200 403 403 200 200"
OWNERS = "401 401 401 401 401  403 403 403 403 403 {0} {0}"
PUBLISHERS = "401 401 401 401 401  403 403 403 403 {0} {0} {0}"
REVIEWERS = "401 401 401 401 401  403 403 403 200 403 200 200"
TABLE: dict[tuple[str, str], tuple[str, Prepare, str]] = {
    # tokens: admins issue; anyone lists their own; a token's identity or an admin revokes it
    ("POST", "/api/v1/tokens"): ("admin", _new_token, ADMIN_ONLY),
    ("GET", "/api/v1/tokens"): ("any", _json("/api/v1/tokens"), ANYONE),
    ("DELETE", "/api/v1/tokens/{prefix}"): ("any", _owner_token, OWN_OR_ADMIN),
    # profiles: anyone reads and sets their own display name (another's: admins, tested apart)
    ("GET", "/api/v1/profile"): ("any", _json("/api/v1/profile"), ANYONE),
    ("PUT", "/api/v1/profile"): ("any", _new_display_name, ANYONE),
    ("DELETE", "/api/v1/profile"): ("any", _json("/api/v1/profile"), ANYONE),
    # namespaces: admins create them; acme's owner, with publish:acme, manages keys and members
    ("POST", "/api/v1/namespaces"): ("admin", _new_namespace, ADMIN_ONLY),
    ("POST", "/api/v1/namespaces/{name}/members"): ("manage", _new_member, OWNERS.format(201)),
    ("DELETE", "/api/v1/namespaces/{name}/members"): (
        "manage", _old_member, OWNERS.format(200),
    ),
    ("POST", "/api/v1/namespaces/{name}/keys"): ("manage", _new_key, OWNERS.format(201)),
    ("DELETE", "/api/v1/namespaces/{name}/keys/{key_id}"): (
        "manage", _old_key, OWNERS.format(200),
    ),
    # verified publishers: acme's owner claims and checks domains (the badge itself is public)
    ("GET", "/api/v1/namespaces/{name}/domains"): (
        "manage", _json("/api/v1/namespaces/acme/domains"), OWNERS.format(200),
    ),
    ("POST", "/api/v1/namespaces/{name}/domains"): ("manage", _new_domain, OWNERS.format(201)),
    ("POST", "/api/v1/namespaces/{name}/domains/{domain}/check"): (
        "manage", _pending_domain, OWNERS.format(200),
    ),
    # publishing and managing a plugin: publish:acme and a role in acme (owner or member)
    ("POST", "/api/v1/plugins/{name}/versions"): ("publish", _upload, PUBLISHERS.format(201)),
    ("POST", "/api/v1/plugins/{name}/versions/{version}/yank"): (
        "publish", _on_plugin("/versions/1.0.0/yank", REASON), PUBLISHERS.format(200),
    ),
    ("POST", "/api/v1/plugins/{name}/versions/{version}/unyank"): (
        "publish", _on_plugin("/versions/1.0.0/unyank", yanked=True), PUBLISHERS.format(200),
    ),
    ("POST", "/api/v1/plugins/{name}/deprecate"): (
        "publish", _on_plugin("/deprecate", REASON), PUBLISHERS.format(200),
    ),
    ("DELETE", "/api/v1/plugins/{name}/deprecate"): (
        "publish", _on_plugin("/deprecate"), PUBLISHERS.format(200),
    ),
    ("POST", "/api/v1/plugins/{name}/unlist"): (
        "publish", _on_plugin("/unlist"), PUBLISHERS.format(200),
    ),
    ("POST", "/api/v1/plugins/{name}/list"): (
        "publish", _on_plugin("/list"), PUBLISHERS.format(200),
    ),
    # suspension and deletion: admins only
    ("POST", "/api/v1/plugins/{name}/suspend"): (
        "admin", _on_plugin("/suspend", REASON), ADMIN_ONLY.replace("201", "200"),
    ),
    ("POST", "/api/v1/plugins/{name}/unsuspend"): (
        "admin", _on_plugin("/unsuspend"), ADMIN_ONLY.replace("201", "200"),
    ),
    ("DELETE", "/api/v1/plugins/{name}"): (
        "admin", _on_plugin(""), ADMIN_ONLY.replace("201", "200"),
    ),
    # quarantine (refused to every host, even pinned) and its release: admins only
    ("POST", "/api/v1/plugins/{name}/versions/{version}/quarantine"): (
        "admin", _on_plugin("/versions/1.0.0/quarantine", REASON), ADMIN_ONLY.replace("201", "200"),
    ),
    ("POST", "/api/v1/plugins/{name}/versions/{version}/release"): (
        "admin", _on_plugin("/versions/1.0.0/release", quarantined=True),
        ADMIN_ONLY.replace("201", "200"),
    ),
    # abuse reports: any token files one; admins read and resolve them
    ("POST", "/api/v1/reports"): ("any", _new_report, ANYONE.replace("200", "201")),
    ("GET", "/api/v1/reports"): (
        "admin", _json("/api/v1/reports"), ADMIN_ONLY.replace("201", "200"),
    ),
    ("GET", "/api/v1/reports/{report_id}"): (
        "admin", _on_report(""), ADMIN_ONLY.replace("201", "200"),
    ),
    ("POST", "/api/v1/reports/{report_id}/resolve"): (
        "admin", _on_report("/resolve", {"decision": "quarantined", "note": "confirmed"}),
        ADMIN_ONLY.replace("201", "200"),
    ),
    # ratings: any token rates under its identity; removing another's (?identity=) is admin's
    ("PUT", "/api/v1/plugins/{name}/reviews"): (
        "any", _on_plugin("/reviews", {"stars": 4}), ANYONE,
    ),
    ("DELETE", "/api/v1/plugins/{name}/reviews"): ("any", _adas_review, OWN_OR_ADMIN),
    # usage reports from hosts are anonymous: a token, good or bad, is not even read
    ("POST", "/api/v1/plugins/{name}/versions/{version}/usage"): (
        "none", _on_plugin("/versions/1.0.0/usage", {"event": "install"}), " ".join(["202"] * 12),
    ),
    # the review queue: the review scope; a reviewer needs no role in any namespace
    ("GET", "/api/v1/review/queue"): ("review", _json("/api/v1/review/queue"), REVIEWERS),
    ("GET", "/api/v1/review/namespaces"): (
        "review", _json("/api/v1/review/namespaces"), REVIEWERS,
    ),
    ("POST", "/api/v1/review/namespaces/{name}/clear"): ("review", _held_namespace, REVIEWERS),
    ("GET", "/api/v1/review/{name}/{version}"): ("review", _pending(""), REVIEWERS),
    ("POST", "/api/v1/review/{name}/{version}/approve"): (
        "review", _pending("/approve", REASON), REVIEWERS,
    ),
    ("POST", "/api/v1/review/{name}/{version}/reject"): (
        "review", _pending("/reject", REASON), REVIEWERS,
    ),
}  # fmt: skip


def token_for(w: World, state: str, need: str) -> str | None:
    """The token a request in ``state`` carries, for a row that needs ``need``."""
    right = RIGHT_SCOPE.get(need, "review")
    wrong = "publish:acme" if need == "review" else "review"
    made: dict[str, Callable[[], str | None]] = {
        "none": lambda: None,
        "malformed": lambda: "not-a-token",
        "unknown": lambda: f"ppt_{secrets.token_hex(4)}_{secrets.token_urlsafe(32)}",
        "expired": lambda: w.registry.token("ada", right, expires_in=timedelta(seconds=-1)),
        "revoked": lambda: _revoked(w, w.registry.token("ada", right)),
        "wrong scope": lambda: w.registry.token("rex", wrong),
        "other namespace": lambda: w.registry.token("bob", "publish:beta"),
        "owner, no scope": lambda: w.registry.token("ada", wrong),
        "scope, no role": lambda: w.registry.token("oscar", right),
        "member": lambda: w.registry.token("mel", "publish:acme"),
        "right scope": lambda: w.registry.token("ada", right),
        "admin": lambda: w.registry.admin,
    }
    return made[state]()


def _revoked(w: World, token: str) -> str:
    with w.session() as session:
        tokens.revoke_token(session, token.split("_")[1])
    return token


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    root = tmp_path_factory.mktemp("authz")
    with (
        engine_for(request.param, root) as engine,
        running(
            engine,
            root / "data",
            rate_limit_per_minute=1_000_000,
            report_limit_per_hour=1000,
            domain_checker=_AlwaysProved(MemoryResolver()),
        ) as registry,
    ):
        key = generate_private_key()
        with registry.client(registry.admin) as admin:
            for name, owner in (("acme", "ada"), ("beta", "bob")):
                admin.post(
                    "/api/v1/namespaces", json={"name": name, "owner": owner}
                ).raise_for_status()
            admin.post(
                "/api/v1/namespaces/acme/members", json={"identity": "mel", "role": "member"}
            ).raise_for_status()
            admin.post(
                "/api/v1/namespaces/acme/keys",
                json={"public_key_pem": public_key_pem(key.public_key())},
            ).raise_for_status()
        yield World(registry, key, root)


@pytest.mark.parametrize("route", sorted(TABLE), ids=" ".join)
def test_the_authorisation_table(world: World, route: tuple[str, str]) -> None:
    method = route[0]
    need, prepare, row = TABLE[route]
    expected = dict(zip(STATES, map(int, row.split()), strict=True))
    answered: dict[str, int] = {}
    for state in STATES:
        token = token_for(world, state, need)
        url, options = prepare(world)
        before = world.snapshot()
        with world.registry.client(token) as client:
            response = client.request(method, url, **options)
        answered[state] = response.status_code
        if response.status_code >= 400:
            assert world.snapshot() == before, f"{state}: refused, but something changed"
            error = error_of(response)
            if response.status_code == 401:
                assert response.headers["www-authenticate"] == "Bearer"
                assert error["code"] == "unauthenticated"
            if response.status_code == 403:
                assert error["code"] == "forbidden"
                assert error["details"]["scope"], error
    assert answered == expected


def _reads_the_token(dependant: Dependant, callers: set[Any]) -> bool:
    return dependant.call in callers or any(
        _reads_the_token(d, callers) for d in dependant.dependencies
    )


def _routes(app: Any) -> Iterator[tuple[str, str, Dependant | None]]:
    """(method, path, dependant) of every route the app serves, included routers too."""
    for route in iter_route_contexts(app.routes):
        for method in route.methods or ():
            yield method, str(route.path_format), getattr(route, "dependant", None)


def guarded_api_routes(app: Any) -> set[tuple[str, str]]:
    """Every API (method, path) that changes something or depends on the caller's token."""
    callers = {typing.get_args(alias)[1].dependency for alias in (deps.Caller, deps.MaybeCaller)}
    return {
        (method, path)
        for method, path, dependant in _routes(app)
        if path.startswith("/api/")
        and (
            method not in {"GET", "HEAD"}
            or (dependant is not None and _reads_the_token(dependant, callers))
        )
    }


# The pages take the token from a cookie, never from the Authorization header, and check a
# CSRF token on every form; test_web.py covers who may post each of these.
WEB_FORMS = {
    ("POST", "/signin"),
    ("POST", "/signout"),
    ("POST", "/plugins/{name}/review"),
    ("POST", "/plugins/{name}/review/delete"),
    ("POST", "/review/{name}/{version}"),
    ("POST", "/plugins/{name}/report"),
    ("POST", "/admin/reports/{report_id}"),
    ("POST", "/admin/reports/{report_id}/release"),
}


def test_every_guarded_route_is_in_the_table(tmp_path: Path) -> None:
    app = create_app(RegistrySettings(data_dir=tmp_path))
    assert guarded_api_routes(app) == set(TABLE)
    forms = {
        (method, path)
        for method, path, _ in _routes(app)
        if not path.startswith("/api/") and method not in {"GET", "HEAD"}
    }
    assert forms == WEB_FORMS


def markdown_table() -> str:
    """The table for people: ``python -c 'from tests.registry.test_authz_table import
    markdown_table; print(markdown_table())'``."""
    lines = ["| endpoint | needs | " + " | ".join(STATES) + " |"]
    lines.append("|---" * (len(STATES) + 2) + "|")
    for (method, path), (need, _, row) in TABLE.items():
        lines.append(f"| `{method} {path}` | {need} | " + " | ".join(row.split()) + " |")
    return "\n".join(lines)
