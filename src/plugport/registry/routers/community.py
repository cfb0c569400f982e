"""``/api/v1/plugins/{name}/reviews`` and ``/stats``: ratings by token holders, usage reported
by hosts, and the statistics built from both."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from plugport._identity import check_identity
from plugport.registry.deps import Caller, PseudonymSecret, SessionDep
from plugport.registry.models import Review
from plugport.registry.services import catalog, community, profiles, tokens

router = APIRouter(prefix="/api/v1/plugins", tags=["community"])


class ReviewCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stars: int = Field(ge=1, le=5)
    text: str = Field(default="", max_length=5000)


class ReviewPublic(BaseModel):
    author: str
    """The author's display name, else a pseudonym: never the identity (often an e-mail)."""
    stars: int
    text: str
    updated_at: datetime


class UsageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event: Literal["install", "uninstall"]


def _public(review: Review, names: dict[str, str]) -> ReviewPublic:
    return ReviewPublic(
        author=names[review.identity],
        stars=review.stars,
        text=review.text,
        updated_at=review.updated_at,
    )


@router.get("/{name}/reviews")
def reviews(
    name: str,
    session: SessionDep,
    secret: PseudonymSecret,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    plugin = catalog.get_plugin(session, name)
    items = community.reviews_of(session, plugin, page=page, per_page=per_page)
    names = profiles.shown_names(session, (r.identity for r in items), secret)
    return {
        "rating": catalog.plugin_summary(plugin)["rating"],
        "items": [_public(r, names).model_dump(mode="json") for r in items],
    }


@router.put("/{name}/reviews")
def put_review(
    name: str, body: ReviewCreate, session: SessionDep, caller: Caller, secret: PseudonymSecret
) -> ReviewPublic:
    """One review per token identity: writing again replaces it."""
    plugin = catalog.get_plugin(session, name)
    review = community.upsert_review(session, plugin, caller.identity, body.stars, body.text)
    return _public(review, profiles.shown_names(session, [caller.identity], secret))


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
