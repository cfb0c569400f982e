"""``/healthz``: the process answers and its database is reachable and migrated (else an
error, so a load balancer stops sending it requests). Redis is reported but does not fail the
check: a node that lost it keeps serving, counting rate limits on its own."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import text

from plugport.registry.deps import SessionDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(request: Request, session: SessionDep) -> dict[str, Any]:
    revision = session.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    limits: dict[str, str] = request.app.state.limiter.health()
    status = "ok" if limits.get("redis", "ok") == "ok" else "degraded"
    return {
        "status": status,
        "database": session.get_bind().dialect.name,
        "schema": revision,
        **limits,
    }
