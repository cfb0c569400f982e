"""``/api/v1/plugins/{name}/reviews`` and ``/stats``: ratings by token holders, usage reported
by hosts, and the statistics built from both."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from plugport._identity import check_identity
from plugport.registry.deps import Caller, SessionDep
from plugport.registry.models import Review
from plugport.registry.services import catalog, community, tokens

router = APIRouter(prefix="/api/v1/plugins", tags=["community"])


class ReviewCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stars: int = Field(ge=1, le=5)
    text: str = Field(default="", max_length=5000)


class ReviewPublic(BaseModel):
    identity: str
    stars: int
    text: str
    updated_at: datetime


class UsageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event: Literal["install", "uninstall"]


def _public(review: Review) -> ReviewPublic:
    return ReviewPublic.model_validate(review, from_attributes=True)


@router.get("/{name}/reviews")
def reviews(
    name: str,
    session: SessionDep,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    plugin = catalog.get_plugin(session, name)
    items = community.reviews_of(session, plugin, page=page, per_page=per_page)
    return {
        "rating": catalog.plugin_summary(plugin)["rating"],
        "items": [_public(r).model_dump(mode="json") for r in items],
    }


@router.put("/{name}/reviews")
def put_review(name: str, body: ReviewCreate, session: SessionDep, caller: Caller) -> ReviewPublic:
    """One review per token identity: writing again replaces it."""
    plugin = catalog.get_plugin(session, name)
    return _public(community.upsert_review(session, plugin, caller.identity, body.stars, body.text))


@router.delete("/{name}/reviews")
def delete_review(
    name: str,
    session: SessionDep,
    caller: Caller,
    identity: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, str]:
    """Your own review, or (admin) anyone's with ``?identity=``."""
    if identity is not None:
        identity = check_identity(identity)
    if identity is not None and identity != caller.identity:
        tokens.require(caller, "admin")
    plugin = catalog.get_plugin(session, name)
    community.delete_review(session, plugin, identity or caller.identity)
    return {"deleted": identity or caller.identity}


@router.post("/{name}/versions/{version}/usage", status_code=202)
def report_usage(name: str, version: str, body: UsageCreate, session: SessionDep) -> dict[str, str]:
    """Hosts report installs and uninstalls; anonymous, counted per version per day."""
    plugin = catalog.get_plugin(session, name)
    community.record_usage(session, plugin, version, body.event, today=catalog.today())
    return {"recorded": body.event}


@router.get("/{name}/stats")
def stats(
    name: str, session: SessionDep, days: Annotated[int, Query(ge=1, le=366)] = 30
) -> dict[str, Any]:
    plugin = catalog.get_plugin(session, name)
    return community.stats_of(session, plugin, days=days, today=catalog.today())
