"""``/healthz``: the process answers and its database is reachable and migrated."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from plugport.registry.deps import SessionDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(session: SessionDep) -> dict[str, Any]:
    revision = session.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    return {"status": "ok", "database": session.get_bind().dialect.name, "schema": revision}
