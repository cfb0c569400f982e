"""Every error a Plugport HTTP API returns has one JSON shape, ``{"error": {"code", "message",
"details"}}``, and the status that tells a client what to do next. Shared by the registry and
the host service (server code only: it needs the ``server`` extra)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from plugport import errors

__all__ = [
    "error_body",
    "error_details",
    "http_error_response",
    "install_error_handlers",
    "plugport_error_response",
    "status_for",
    "validation_error_response",
]

# Most specific first: the first class an error is an instance of decides.
_STATUS: list[tuple[type[errors.PlugportError], int, str]] = [
    (errors.AuthenticationError, 401, "unauthenticated"),
    (errors.AuthorizationError, 403, "forbidden"),
    (errors.SignatureError, 422, "bad_signature"),
    (errors.ArchiveLimitError, 413, "too_large"),
    (errors.NotFoundError, 404, "not_found"),
    (errors.ConflictError, 409, "conflict"),
    (errors.PluginValidationError, 422, "invalid_plugin"),
    (errors.InvalidInputError, 400, "invalid_input"),
    (errors.TrustError, 422, "untrusted"),
]

_HTTP_CODES = {
    400: "invalid_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
}


def status_for(error: errors.PlugportError) -> tuple[int, str]:
    for cls, status, code in _STATUS:
        if isinstance(error, cls):
            return status, code
    return 500, "internal"


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
    error: errors.PlugportError, status: int | None = None, code: str | None = None
) -> JSONResponse:
    """``status``/``code`` override the table (an API with errors the table does not know)."""
    found_status, found_code = status_for(error)
    status, code = status or found_status, code or found_code
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(error_body(code, str(error), error_details(error)), status, headers=headers)


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


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(errors.PlugportError)
    async def plugport_error(request: Request, exc: errors.PlugportError) -> JSONResponse:
        return plugport_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_error_response(exc)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return http_error_response(exc)
