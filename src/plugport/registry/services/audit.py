"""The registry's audit trail: who changed what, and why. Written in the same transaction as
the change, so there is never a change without its record."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugport.registry.models import AuditRecord

__all__ = ["recent", "record"]


def record(session: Session, actor: str, action: str, subject: str, **detail: Any) -> None:
    session.add(AuditRecord(actor=actor, action=action, subject=subject, detail=detail))


def recent(session: Session, *, subject: str | None = None, limit: int = 100) -> list[AuditRecord]:
    query = select(AuditRecord).order_by(AuditRecord.id.desc()).limit(limit)
    if subject is not None:
        query = query.where(AuditRecord.subject == subject)
    return list(session.scalars(query))
