"""Every error the API returns has one JSON shape, ``{"error": {"code", "message",
"details"}}``, and the status that tells a client what to do next."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from plugport import errors

__all__ = ["error_body", "install_error_handlers", "status_for"]

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


def status_for(error: errors.PlugportError) -> tuple[int, str]:
    for cls, status, code in _STATUS:
        if isinstance(error, cls):
            return status, code
    return 500, "internal"


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _details(error: errors.PlugportError) -> dict[str, Any]:
    found: dict[str, Any] = {
        k: v for k, v in vars(error).items() if isinstance(v, str | int | float | bool)
    }
    problems = getattr(error, "problems", None)
    if problems:
        found["problems"] = [{"path": p.path, "message": p.message} for p in problems]
    return found


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(errors.PlugportError)
    async def plugport_error(request: Request, exc: errors.PlugportError) -> JSONResponse:
        status, code = status_for(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(error_body(code, str(exc), _details(exc)), status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"path": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        summary = "; ".join(f"{p['path']}: {p['message']}" for p in problems)
        return JSONResponse(
            error_body("invalid_request", summary, {"problems": problems}), status_code=422
        )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = {
            400: "invalid_request",
            404: "not_found",
            405: "method_not_allowed",
            413: "too_large",
        }.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=exc.headers)
