"""FastAPI dependencies as ``Annotated`` aliases: the session, the settings, the caller."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from plugport.registry.models import utcnow
from plugport.registry.orphans import InFlight
from plugport.registry.services import tokens
from plugport.registry.settings import RegistrySettings
from plugport.registry.verification import DomainChecker

__all__ = [
    "Caller",
    "CheckerDep",
    "MaybeCaller",
    "PseudonymSecret",
    "SessionDep",
    "SettingsDep",
    "UploadDep",
]


def _session(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the route returns, rolled back on any
    error, so a refused request leaves no row behind."""
    with request.app.state.sessions.begin() as session:
        yield session


def _upload(request: Request) -> Iterator[InFlight]:
    """An upload in flight until the request's transaction has committed: declared before
    the session in a route, its end runs after the session's commit."""
    with request.app.state.uploads.in_flight() as upload:
        yield upload


def _settings(request: Request) -> RegistrySettings:
    settings: RegistrySettings = request.app.state.settings
    return settings


def _domain_checker(request: Request) -> DomainChecker:
    checker: DomainChecker = request.app.state.domain_checker
    return checker


def _pseudonym_secret(request: Request) -> bytes:
    secret: bytes = request.app.state.pseudonym_secret
    return secret


# scope="function": commit before the response leaves, so a client that got 201 can rely on
# the row being there (the default, "request", commits after the response is sent).
SessionDep = Annotated[Session, Depends(_session, scope="function")]
SettingsDep = Annotated[RegistrySettings, Depends(_settings)]
UploadDep = Annotated[InFlight, Depends(_upload, scope="function")]
CheckerDep = Annotated[DomainChecker, Depends(_domain_checker)]
PseudonymSecret = Annotated[bytes, Depends(_pseudonym_secret)]
"""The key of the pseudonyms shown for identities without a display name."""


def _caller(
    session: SessionDep, authorization: Annotated[str | None, Header()] = None
) -> tokens.Principal:
    return tokens.authenticate(session, authorization, now=utcnow())


def _maybe_caller(
    session: SessionDep, authorization: Annotated[str | None, Header()] = None
) -> tokens.Principal | None:
    return (
        None if authorization is None else tokens.authenticate(session, authorization, now=utcnow())
    )


Caller = Annotated[tokens.Principal, Depends(_caller)]
MaybeCaller = Annotated[tokens.Principal | None, Depends(_maybe_caller)]
