"""The routes' shared dependencies, bound to one service: who calls (a bearer token) and
whether it may reach the workspace in the path."""

# No ``from __future__ import annotations``: FastAPI must see the aliases as objects.
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Header

from plugport.host.service.store import Principal, authorize, check_workspace_name, parse_bearer

if TYPE_CHECKING:
    from plugport.host.service.service import HostService

__all__ = ["workspace_member"]


def workspace_member(service: "HostService") -> Callable[..., Principal]:
    """The dependency of ``Member = Annotated[Principal, Depends(workspace_member(service))]``:
    a token for the path's ``ws`` (or an admin's), for a workspace that exists, as every
    workspace route of the JSON API asks."""

    def caller(authorization: Annotated[str | None, Header()] = None) -> Principal:
        return service.store.authenticate(parse_bearer(authorization))

    def member(ws: str, principal: Annotated[Principal, Depends(caller)]) -> Principal:
        check_workspace_name(ws)
        authorize(principal, ws)
        service.workspace(ws)
        return principal

    return member
