"""Every error a Plugport HTTP API returns has one JSON shape, ``{"error": {"code", "message",
"details"}}``, and the status that tells a client what to do next. One first-match table,
:data:`RULES`, decides both for the registry and the host service (server code only: it needs
the ``server`` extra). Error bodies never show the server's own paths (:class:`PathMask`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from plugport import errors

__all__ = [
    "RULES",
    "BadJsonError",
    "BodyTooLargeError",
    "ErrorRule",
    "PathMask",
    "RateLimitedError",
    "describe_error",
    "error_body",
    "error_details",
    "http_error_response",
    "install_error_handlers",
    "plugport_error_response",
    "status_for",
    "validation_error_response",
]


class BodyTooLargeError(errors.InvalidInputError):
    def __init__(self, limit: int) -> None:
        self.limit_bytes = limit
        super().__init__(f"the request body is more than {limit} bytes (the limit)")


class BadJsonError(errors.InvalidInputError):
    """The request body is not JSON at all."""


class RateLimitedError(errors.PlugportError):
    """A per-identity budget is spent (abuse reports per hour, say): ``limit`` names the
    setting, ``maximum`` its value, ``retry_after_s`` when the next one is allowed."""

    def __init__(self, limit: str, maximum: int, retry_after_s: int, detail: str) -> None:
        self.limit = limit
        self.maximum = maximum
        self.retry_after_s = retry_after_s
        super().__init__(f"{detail} (limit {limit} = {maximum}); retry in {retry_after_s} s")


@dataclass(frozen=True)
class ErrorRule:
    """Errors of class ``error`` answer ``status`` with ``code``; ``details`` and ``message``,
    when given, replace the error's attributes and its text in the body."""

    error: type[errors.PlugportError]
    status: int
    code: str
    details: Callable[[Any], dict[str, Any]] | None = None
    message: Callable[[Any], str] | None = None


def _consent_message(error: errors.ConsentError) -> str:
    # The host's own message speaks to a terminal (--yes, the policy file); an API client
    # grants by naming the permissions.
    return (
        f"{error.plugin} needs consent for: {'; '.join(error.added)}; "
        "send exactly these in 'consent' to grant them"
    )


RULES: tuple[ErrorRule, ...] = (
    # Most specific first: the first class an error is an instance of decides.
    ErrorRule(errors.WebhookRefusedError, 401, "webhook_refused"),
    ErrorRule(errors.AuthenticationError, 401, "unauthenticated"),
    ErrorRule(errors.AuthorizationError, 403, "forbidden"),
    ErrorRule(errors.SignatureError, 422, "bad_signature"),
    ErrorRule(BodyTooLargeError, 413, "too_large"),
    ErrorRule(BadJsonError, 400, "invalid_json"),
    ErrorRule(RateLimitedError, 429, "rate_limited"),
    ErrorRule(errors.ArchiveLimitError, 413, "too_large"),
    ErrorRule(errors.NotFoundError, 404, "not_found"),
    ErrorRule(errors.ConflictError, 409, "conflict"),
    ErrorRule(errors.PluginValidationError, 422, "invalid_plugin"),
    ErrorRule(errors.InvalidInputError, 400, "invalid_input"),
    ErrorRule(errors.TrustError, 422, "untrusted"),
    # What a host raises (the registry does not): the host service answers with these.
    ErrorRule(
        errors.ConsentError,
        409,
        "consent_required",
        details=lambda e: {"plugin": e.plugin, "added": list(e.added)},
        message=_consent_message,
    ),
    ErrorRule(
        errors.ResolutionError,
        422,
        "unresolvable",
        details=lambda e: error_details(e) | {"conflicts": list(e.conflicts)},
    ),
    ErrorRule(errors.OfflineError, 503, "offline"),
    ErrorRule(errors.IndexKeyMismatchError, 503, "index_key_mismatch"),
    ErrorRule(
        errors.TufKeyMismatchError, 503, "tuf_key_mismatch", details=lambda e: {"role": e.role}
    ),
    ErrorRule(errors.SecretBackendError, 503, "secrets_backend_unavailable"),
    ErrorRule(
        errors.RegistryResponseError,
        502,
        "registry_error",
        details=lambda e: {"status": e.status, "code": e.code, "details": e.details},
    ),
    ErrorRule(errors.PluginQuarantinedError, 409, "quarantined"),
    ErrorRule(errors.SandboxUnavailableError, 503, "sandbox_unavailable"),
    ErrorRule(errors.PluginCallError, 422, "plugin_error"),
    ErrorRule(errors.PluginRuntimeError, 422, "plugin_failed"),
)
_INTERNAL = ErrorRule(errors.PlugportError, 500, "internal")

_HTTP_CODES = {
    400: "invalid_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
}


def _rule(error: errors.PlugportError) -> ErrorRule:
    return next((rule for rule in RULES if isinstance(error, rule.error)), _INTERNAL)


def status_for(error: errors.PlugportError) -> tuple[int, str]:
    rule = _rule(error)
    return rule.status, rule.code


def describe_error(error: errors.PlugportError) -> tuple[int, dict[str, Any]]:
    """``(status, {"code", "message", "details"})`` for ``error``, as :data:`RULES` says."""
    rule = _rule(error)
    details = rule.details(error) if rule.details else error_details(error)
    message = rule.message(error) if rule.message else str(error)
    return rule.status, {"code": rule.code, "message": message, "details": details}


# After a root: not more of a name ("/tmpfoo" is not under "/tmp"), then anything up to a space,
# a quote or the punctuation messages put after a path ("x.plugport: ...", "x!plugport.toml").
_UNDER = r"(?![\w.-])[^\s'\"!:,;()\[\]{}<>]*"


class PathMask:
    """Hides the server's own directories (its data directory, the temporary directory) and
    everything under them in what an error body says: where a server keeps things is none of a
    client's business, and a path an error message forgot to leave out must not reach one."""

    HIDDEN = "<server path>"

    def __init__(self, roots: Iterable[Path | str] = ()) -> None:
        found: set[str] = set()
        for root in roots:
            for form in (Path(root), Path(root).resolve()):
                text = str(form).rstrip("/")
                if form.is_absolute() and text:  # never "/" (it would hide every path)
                    found.add(text)
        ordered = sorted(found, key=len, reverse=True)  # the longest root first
        self._pattern = (
            re.compile("|".join(re.escape(r) + _UNDER for r in ordered)) if ordered else None
        )

    def hide(self, value: Any) -> Any:
        """``value`` (text, or lists and dicts of them) with every hidden path replaced."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self._pattern.sub(self.HIDDEN, value)
        if isinstance(value, dict):
            return {key: self.hide(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.hide(item) for item in value]
        return value


_NO_MASK = PathMask()


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_details(error: errors.PlugportError) -> dict[str, Any]:
    """The error's plain attributes (``kind``, ``name``, ``limit`` …) and its problems."""
    found: dict[str, Any] = {
        k: v for k, v in vars(error).items() if isinstance(v, str | int | float | bool)
    }
    problems = getattr(error, "problems", None)
    if problems:
        found["problems"] = [{"path": p.path, "message": p.message} for p in problems]
    return found


def plugport_error_response(
    error: errors.PlugportError,
    status: int | None = None,
    code: str | None = None,
    *,
    mask: PathMask = _NO_MASK,
) -> JSONResponse:
    """``status``/``code`` override the table (an API with errors the table does not know)."""
    found_status, body = describe_error(error)
    status, code = status or found_status, code or body["code"]
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if isinstance(error, RateLimitedError):
        headers = {"Retry-After": str(error.retry_after_s)}
    content = mask.hide(error_body(code, body["message"], body["details"]))
    return JSONResponse(content, status, headers=headers)


def validation_error_response(exc: RequestValidationError) -> JSONResponse:
    problems = [
        {"path": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
        for e in exc.errors()
    ]
    summary = "; ".join(f"{p['path']}: {p['message']}" for p in problems)
    return JSONResponse(
        error_body("invalid_request", summary, {"problems": problems}), status_code=422
    )


def http_error_response(exc: HTTPException) -> JSONResponse:
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=exc.headers)


def install_error_handlers(app: FastAPI, *, private_paths: Iterable[Path | str] = ()) -> None:
    """``private_paths``: the server's directories, which no error body may show."""
    mask = PathMask(private_paths)

    @app.exception_handler(errors.PlugportError)
    async def plugport_error(request: Request, exc: errors.PlugportError) -> JSONResponse:
        return plugport_error_response(exc, mask=mask)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_error_response(exc)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return http_error_response(exc)
