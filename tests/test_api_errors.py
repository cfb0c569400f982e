"""One table from error to HTTP status for the registry and the host service, and the mask that
keeps a server's own paths out of every error body."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plugport import errors
from plugport._api_errors import (
    RULES,
    BadJsonError,
    BodyTooLargeError,
    PathMask,
    describe_error,
    plugport_error_response,
    status_for,
)
from plugport.host.consent import ConsentRequest
from plugport.host.service.operations import describe
from plugport.manifest import Permissions

# --- the table --------------------------------------------------------------------------------


def test_no_row_is_shadowed_by_an_earlier_one() -> None:
    """First match decides, so a row below a row for one of its base classes is never used."""
    for later, rule in enumerate(RULES):
        for earlier in RULES[:later]:
            assert not issubclass(rule.error, earlier.error), (rule.error, earlier.error)


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (errors.AuthenticationError("no token"), 401, "unauthenticated"),
        (errors.AuthorizationError("admin", "needs admin"), 403, "forbidden"),
        (errors.SignatureError("key", "unknown key"), 422, "bad_signature"),
        (errors.ArchiveLimitError("max_ratio", 1e3, 100, "expands"), 413, "too_large"),
        (errors.UnsafeArchiveError("../x", "'..'"), 400, "invalid_input"),
        (errors.NotFoundError("plugin", "acme.x"), 404, "not_found"),
        (errors.ConflictError("version", "acme.x 1.0", "exists"), 409, "conflict"),
        (errors.ManifestError([errors.Problem("version", "bad")]), 422, "invalid_plugin"),
        (errors.InvalidInputError("bad"), 400, "invalid_input"),
        (errors.TrustError("who?"), 422, "untrusted"),
        (BodyTooLargeError(10), 413, "too_large"),
        (BadJsonError("not JSON"), 400, "invalid_json"),
        (errors.ConsentError("acme.x", ["net: a.example"], "--yes"), 409, "consent_required"),
        (errors.ResolutionError("no way", ["acme.x needs y"]), 422, "unresolvable"),
        (errors.OfflineError("acme.x", "cache"), 503, "offline"),
        (errors.RegistryResponseError(429, "rate_limited", "slow down"), 502, "registry_error"),
        (errors.PluginQuarantinedError("acme.x", "crashed"), 409, "quarantined"),
        (errors.SandboxUnavailableError("landlock", "old kernel"), 503, "sandbox_unavailable"),
        (errors.PluginCallError("acme.x", "KeyError", "'k'"), 422, "plugin_error"),
        (errors.PluginCrashedError("acme.x", "SIGKILL"), 422, "plugin_failed"),
        (errors.PermissionDeniedError("acme.x", "net", "no"), 422, "plugin_failed"),
        (errors.PlugportError("a bug"), 500, "internal"),
    ],
)
def test_both_apis_answer_each_error_alike(
    error: errors.PlugportError, status: int, code: str
) -> None:
    assert status_for(error) == (status, code)
    assert describe_error(error)[0] == status
    assert describe(error)[0] == status  # the host service
    registry = plugport_error_response(error)  # the registry
    assert registry.status_code == status
    assert json.loads(bytes(registry.body))["error"] == describe(error)[1] | {"code": code}


def test_host_rows_shape_their_details() -> None:
    consent = errors.ConsentError("acme.x", ["network: a.example"], "run with --yes")
    status, body = describe(consent)
    assert (status, body["code"]) == (409, "consent_required")
    assert body["details"] == {"plugin": "acme.x", "added": ["network: a.example"]}
    assert "send exactly these in 'consent'" in body["message"]
    asked = ConsentRequest("acme.x", "1.0.0", None, Permissions(network=["a.example"]), None)
    _, refused = describe(consent, asked)
    assert refused["details"] == {
        "plugin": "acme.x",
        "added": ["network: a.example"],
        "name": asked.name,
        "version": asked.version,
        "lines": asked.lines,
        "verified_domain": None,
    }
    registry = errors.RegistryResponseError(404, "not_found", "no plugin", {"kind": "plugin"})
    assert describe(registry)[1]["details"] == {
        "status": 404,
        "code": "not_found",
        "details": {"kind": "plugin"},
    }
    resolution = errors.ResolutionError("no set", ["a needs b<1", "c needs b>=2"])
    assert describe(resolution)[1]["details"]["conflicts"] == ["a needs b<1", "c needs b>=2"]


# --- the path mask -------------------------------------------------------------------------------


def test_the_mask_hides_a_root_and_everything_under_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    mask = PathMask([data, "/var/tmp"])
    hidden = mask.hide(f"cannot open {data}/blobs/ab/x: denied")
    assert hidden == "cannot open <server path>: denied"
    assert mask.hide(f"{data}") == "<server path>"
    assert mask.hide(f"'{data}/up.plugport'!plugport.toml") == "'<server path>'!plugport.toml"
    assert mask.hide({"a": [f"{data}/x", 3, None], "b": "/var/tmp/y z"}) == {
        "a": ["<server path>", 3, None],
        "b": "<server path> z",
    }


def test_the_mask_leaves_look_alikes_and_other_paths(tmp_path: Path) -> None:
    mask = PathMask([tmp_path / "data"])
    for text in (f"{tmp_path}/database", f"{tmp_path}/data.bak", "/api/v1/plugins", "data"):
        assert mask.hide(text) == text


def test_the_mask_never_hides_everything() -> None:
    mask = PathMask(["/", "relative/dir", ""])
    assert mask.hide("/api/v1/plugins relative/dir/x") == "/api/v1/plugins relative/dir/x"


def test_the_mask_hides_the_real_path_behind_a_link(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    mask = PathMask([tmp_path / "link"])
    assert mask.hide(f"{tmp_path}/real/x and {tmp_path}/link/y") == (
        "<server path> and <server path>"
    )


def test_an_error_response_is_masked(tmp_path: Path) -> None:
    error = errors.ArchiveError(f"{tmp_path}/u.plugport is damaged", path=f"{tmp_path}/u.plugport")
    body = json.loads(bytes(plugport_error_response(error, mask=PathMask([tmp_path])).body))
    assert body["error"]["message"] == "<server path> is damaged"
    assert body["error"]["details"] == {"path": "<server path>"}
