"""Request and response bodies, named ``XCreate`` / ``XPublic`` by resource."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "KeyCreate",
    "KeyPublic",
    "LibraryPublic",
    "MemberCreate",
    "MemberPublic",
    "NamespaceCreate",
    "NamespacePublic",
    "ProfilePublic",
    "ProfileUpdate",
    "TokenCreate",
    "TokenCreated",
    "TokenPublic",
    "VersionPublic",
    "WheelPublic",
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenCreate(_Body):
    identity: str = Field(min_length=1, max_length=200)
    scopes: list[str] = Field(min_length=1, max_length=50)
    expires_in_days: int | None = Field(default=90, ge=1, le=3650)
    description: str = Field(default="", max_length=200)
    display_name: str | None = None
    """What the public sees for ``identity`` (checked as ``PUT /api/v1/profile`` checks it)."""


class TokenPublic(BaseModel):
    prefix: str
    identity: str
    scopes: list[str]
    description: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class TokenCreated(TokenPublic):
    token: str
    """Shown once; only its hash is kept."""


class NamespaceCreate(_Body):
    name: str = Field(min_length=2, max_length=64)
    owner: str = Field(min_length=1, max_length=200)
    trusted: bool = False


class NamespacePublic(BaseModel):
    name: str
    trusted: bool
    owners: list[str]
    members: list[str]
    """Everyone with a role, owners included (``roles`` tells them apart)."""
    roles: dict[str, str]
    """identity -> ``owner`` or ``member``."""
    created_at: datetime
    verified_domain: str | None = None
    """The domain its owners proved (DNS TXT or HTTPS file), checked again periodically;
    None: not a verified publisher."""
    name_review: str | None = None
    """``held``: the name resembles a verified namespace or popular plugin, so uploads wait
    for review; ``cleared``: a reviewer released it; None: neither."""
    name_review_reason: str | None = None


class DomainCreate(_Body):
    domain: str = Field(min_length=1, max_length=253)


class ChallengePublic(BaseModel):
    """Publish one of the two: the TXT record, or the file at the URL with the body."""

    txt_name: str
    txt_value: str
    https_url: str
    https_body: str


class DomainPublic(BaseModel):
    domain: str
    status: str
    """``pending`` (not proved yet), ``verified``, or ``lost`` (proved once, not any more)."""
    method: str | None
    verified_at: datetime | None
    checked_at: datetime | None
    last_error: str | None
    challenge: ChallengePublic


class MemberCreate(_Body):
    identity: str = Field(min_length=1, max_length=200)
    role: Literal["owner", "member"] = "member"


class MemberPublic(BaseModel):
    identity: str
    role: str
    added_at: datetime | None
    added_by: str | None


class KeyCreate(_Body):
    public_key_pem: str = Field(min_length=40, max_length=4096)


class KeyPublic(BaseModel):
    key_id: str
    public_key_pem: str
    created_at: datetime
    revoked_at: datetime | None


class WheelPublic(BaseModel):
    filename: str
    sha256: str
    size: int
    compiled: bool
    """The upload scan found native code in it (allowed for declared ``[python] platforms``)."""


class LibraryPublic(BaseModel):
    """A Python library the version ships, exactly as its ``plugport.lock`` pins it."""

    name: str
    version: str
    compiled: bool
    wheels: list[WheelPublic]


class VersionPublic(BaseModel):
    name: str
    version: str
    status: str
    sha256: str
    length: int
    key_id: str
    yanked: bool
    yanked_reason: str | None
    withdrawn: bool
    """Signed with a key its publisher revoked: no longer offered (not in the signed index nor
    among the versions hosts resolve from), shown only to say why."""
    withdrawn_reason: str | None
    quarantined: bool = False
    """An admin quarantined it: refused to every host, even pinned (not in the signed index
    nor among the versions hosts resolve from; flagged in its TUF target)."""
    quarantine_reason: str | None = None
    key_revoked_at: datetime | None
    """When the publisher revoked ``key_id``; set exactly when ``withdrawn``."""
    scan: dict[str, Any]
    permissions: dict[str, Any]
    engines: dict[str, str]
    """``plugport`` and host applications -> the PEP 440 range this version works with."""
    dependencies: dict[str, str]
    """Other plugins -> the PEP 440 range this version needs: what a host resolves."""
    python_requires: list[str]
    """The manifest's ``[python] dependencies``: PEP 508 requirements, as the author wrote them."""
    requires_python: str
    """The manifest's ``[python] requires-python`` ("" when any)."""
    python_platforms: list[str]
    """The manifest's ``[python] platforms``: wheel platform tags compiled wheels are locked for."""
    python_dependencies: list[LibraryPublic] | None
    """The libraries the archive ships, from its lock (the wheels a host installs); ``None``
    only for a version uploaded before the registry recorded them."""
    created_at: datetime
    published_at: datetime | None


class ProfileUpdate(_Body):
    display_name: str
    """2 to 40 characters, no e-mail address, not the registry's or a namespace's name."""


class ProfilePublic(BaseModel):
    """An identity's profile, shown only to itself and admins."""

    identity: str
    display_name: str | None
    shown_as: str
    """What the public sees: the display name, else a pseudonym."""
