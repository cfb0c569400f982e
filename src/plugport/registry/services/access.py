"""Who may act on a namespace: the token's scope *and* the identity's role, never one of them
alone. A token of an owner's identity that lacks ``publish:<namespace>`` (a ``review`` token,
say) cannot touch the namespace's keys or members; a ``publish:<namespace>`` token of
someone who is neither owner nor member cannot publish. ``admin`` may do everything.

Pure decisions: the caller passes the principal and the identity's role, looked up by
:func:`plugport.registry.services.namespaces.role_of`."""

from __future__ import annotations

from typing import Literal

from plugport.errors import AuthorizationError
from plugport.registry.services import tokens
from plugport.registry.services.tokens import Principal

__all__ = ["ROLES", "Need", "Role", "require"]

Role = Literal["owner", "member"]
ROLES: tuple[Role, ...] = ("owner", "member")
Need = Literal["publish", "manage"]
"""``publish``: upload, yank, deprecate, unlist (owners and members); ``manage``: keys and
members (owners)."""

_ALLOWED: dict[Need, frozenset[str]] = {
    "publish": frozenset({"owner", "member"}),
    "manage": frozenset({"owner"}),
}


def require(caller: Principal, namespace: str, role: str | None, need: Need) -> None:
    """Return if ``caller`` (whose identity has ``role`` in ``namespace``, or none) may do
    what ``need`` names; raise :class:`AuthorizationError` (403) saying what is missing."""
    if "admin" in caller.scopes:
        return
    scope = f"publish:{namespace}"
    tokens.require(caller, scope)
    if role not in _ALLOWED[need]:
        wanted = "an owner" if need == "manage" else "an owner or a member"
        raise AuthorizationError(
            scope,
            f"{caller.identity!r} is not {wanted} of namespace {namespace!r}"
            + (f" (is {role})" if role else ""),
        )
