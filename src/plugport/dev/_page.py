"""The local page of ``plugport dev``: a JSON API under ``/api`` and one HTML page (plain JS,
nothing from a CDN) on 127.0.0.1, served by uvicorn inside dev's own event loop, so every
request talks to the running session directly.

FastAPI and uvicorn come with the ``server`` extra; :func:`page_available` says whether they
are importable, and dev runs without the page when they are not."""

# No ``from __future__ import annotations``: FastAPI reads the route signatures at run time,
# and their types come from the imports inside create_app.
import asyncio
import contextlib
import importlib.util
import json
import socket
from collections.abc import Iterator
from importlib import resources
from typing import TYPE_CHECKING, Annotated, Any

from plugport.components import ComponentError
from plugport.errors import InvalidInputError, NotFoundError, PluginCallError, PlugportError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from plugport.dev._session import DevSession

__all__ = ["PageServer", "create_app", "page_available"]

MISSING_HINT = "the page needs FastAPI and uvicorn: pip install 'plugport[server]'"


def page_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("fastapi", "uvicorn"))


def create_app(session: "DevSession") -> "FastAPI":
    from fastapi import Body, FastAPI, Path, Query, Request
    from fastapi.responses import HTMLResponse, JSONResponse
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    app = FastAPI(title="plugport dev", docs_url=None, redoc_url=None, openapi_url=None)
    # Another site open in the author's browser must not read or drive the plugin: a request
    # whose Host is not this machine's loopback name (DNS rebinding) is refused, and the API
    # takes only JSON bodies, which a cross-site form cannot send without a CORS preflight.
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost", "[::1]"])
    html = resources.files("plugport.dev").joinpath("page.html").read_text(encoding="utf-8")

    @app.exception_handler(InvalidInputError)
    async def invalid(request: Request, exc: InvalidInputError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        return html

    @app.get("/api/plugin")
    async def plugin() -> dict[str, Any]:
        return session.info()

    @app.post("/api/call")
    async def call(
        target: Annotated[str, Body(min_length=1, max_length=200)],
        args: Annotated[dict[str, Any] | None, Body()] = None,
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            kind, value = await session.call(target, args or {})
        except InvalidInputError:
            raise
        except PlugportError as exc:  # the plugin's failure is the answer, not the API's
            return {
                "ok": False,
                "target": target,
                "error": {
                    "type": getattr(exc, "type", type(exc).__name__),
                    "message": str(exc),
                    "traceback": exc.traceback if isinstance(exc, PluginCallError) else "",
                },
                "duration_ms": round((loop.time() - started) * 1000, 3),
            }
        return {
            "ok": True,
            "target": target,
            "kind": kind,
            "value": value,
            "duration_ms": round((loop.time() - started) * 1000, 3),
        }

    @app.get("/api/audit")
    async def audit(limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
        return session.audit(limit)

    @app.get("/api/storage")
    async def storage() -> dict[str, Any]:
        return session.storage()

    @app.get("/api/settings")
    async def settings() -> dict[str, Any]:
        return session.current_settings()

    @app.get("/api/widgets")
    async def widgets() -> list[dict[str, Any]]:
        """Each contributed widget: id, title and version (how often the plugin invalidated
        it, so the page knows when to render it again)."""
        return session.widgets()

    @app.get("/api/widgets/{widget_id}")
    async def widget(
        widget_id: Annotated[str, Path(max_length=100)],
        config: Annotated[str | None, Query(max_length=20_000)] = None,
    ) -> Any:
        """The widget rendered through its ``@widget`` handler and checked as the host checks
        it: ``{"tree": ...}``, or an error naming the field (``config``: its settings, a JSON
        object over the schema's defaults)."""
        return await _rendered(widget_id, config=_settings(config))

    @app.post("/api/widgets/{widget_id}")
    async def widget_action(
        widget_id: Annotated[str, Path(max_length=100)],
        action: Annotated[str, Body(min_length=1, max_length=100)],
        payload: Annotated[dict[str, Any] | None, Body()] = None,
        values: Annotated[dict[str, Any] | None, Body()] = None,
        config: Annotated[dict[str, Any] | None, Body()] = None,
    ) -> Any:
        """What the tile's button or form sends: the handler's answer to ``action``."""
        return await _rendered(
            widget_id, config=config, action=action, payload=payload, values=values
        )

    async def _rendered(widget_id: str, **asked: Any) -> Any:
        try:
            return await session.render_widget(widget_id, **asked)
        except NotFoundError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=404)
        except ComponentError as exc:  # the plugin's answer broke the schema
            return JSONResponse(
                {"detail": str(exc), "field": exc.field, "reason": exc.reason},
                status_code=422 if exc.surface != "config" else 400,
            )
        except InvalidInputError:
            raise
        except PlugportError as exc:  # the handler failed or was refused: its answer is that
            return JSONResponse(
                {
                    "detail": str(exc),
                    "error": {
                        "type": getattr(exc, "type", type(exc).__name__),
                        "message": str(exc),
                        "traceback": exc.traceback if isinstance(exc, PluginCallError) else "",
                    },
                },
                status_code=502,
            )

    def _settings(raw: str | None) -> dict[str, Any] | None:
        if raw is None:
            return None
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise InvalidInputError(f"config is not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise InvalidInputError("config must be a JSON object of the widget's settings")
        return value

    @app.get("/api/activity")
    async def activity(since: Annotated[int, Query(ge=0)] = 0) -> list[dict[str, Any]]:
        return session.activity_since(since)

    return app


@contextlib.contextmanager
def _bound(port: int) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(64)
        sock.set_inheritable(False)
        yield sock
    except BaseException:
        sock.close()
        raise


class PageServer:
    """uvicorn on a socket bound here (so port 0 becomes a known free port before it starts),
    run as a task of the caller's loop; it never touches signal handlers (dev owns them)."""

    def __init__(self, session: "DevSession", port: int) -> None:
        import uvicorn

        class _Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield

        with _bound(port) as sock:
            self._sock = sock
        config = uvicorn.Config(
            create_app(session),
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
            lifespan="off",
        )
        self._server = _Server(config)
        self.port: int = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises why it stopped
                raise OSError(f"the page server on port {self.port} stopped at once")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
        self._sock.close()
