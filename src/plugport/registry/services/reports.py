"""Abuse reports: signed-in users file them (one open report per reporter and target, a
budget per hour), admins list, read and resolve them, and may quarantine the reported
version while resolving. Reporters and review authors are shown by display name or
pseudonym, never by identity. Every step is audited in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from plugport.errors import ConflictError, InvalidInputError, NotFoundError
from plugport.registry._report_rules import (
    DECISIONS,
    REASONS,
    WINDOW,
    ReportInput,
    check_decision,
    report_budget,
    target_key,
)
from plugport.registry.models import AbuseReport, Plugin, PluginVersion, Review, utcnow
from plugport.registry.services import audit, catalog, community, lifecycle, profiles

__all__ = ["ReportView", "file_report", "get_report", "list_reports", "resolve", "view"]

STATUSES = ("open", "resolved", "all")


def _subject(report: AbuseReport, author: str | None) -> str:
    if report.kind == "version":
        return f"{report.plugin_name} {report.version}"
    if report.kind == "review":
        return f"{report.plugin_name} review by {author}"
    return report.plugin_name


def _review_identity(session: Session, plugin: Plugin, author: str, secret: bytes) -> str:
    identities = session.scalars(select(Review.identity).where(Review.plugin_id == plugin.id))
    names = profiles.shown_names(session, identities, secret)
    found = next((i for i, shown in names.items() if shown == author), None)
    if found is None:
        raise NotFoundError("review", f"by {author} on {plugin.name}")
    return found


def file_report(
    session: Session,
    reporter: str,
    data: ReportInput,
    *,
    limit_per_hour: int,
    secret: bytes,
    now: datetime,
) -> AbuseReport:
    """Store ``data`` (checked by :func:`~plugport.registry._report_rules.check_report`) as an
    open report: refused (nothing stored) over the hourly budget, for a target that does not
    exist, or when this reporter has an open report on it already."""
    filed = list(
        session.scalars(
            select(AbuseReport.created_at).where(
                AbuseReport.reporter == reporter, AbuseReport.created_at > now - WINDOW
            )
        )
    )
    if refused := report_budget(filed, limit_per_hour, now=now):
        raise refused
    plugin = catalog.get_plugin(session, data.plugin)
    review_identity = None
    if data.kind == "version" and data.version is not None:
        catalog.get_version(session, plugin, data.version)
    if data.kind == "review" and data.author is not None:
        review_identity = _review_identity(session, plugin, data.author, secret)
    key = target_key(data.kind, plugin.name, data.version, review_identity)
    report = AbuseReport(
        reporter=reporter,
        kind=data.kind,
        plugin_name=plugin.name,
        version=data.version,
        review_identity=review_identity,
        target_key=key,
        reason=data.reason,
        text=data.text,
        status="open",
        created_at=now,
    )
    subject = _subject(report, data.author)
    duplicate = ConflictError(
        "report", subject, "has an open report of yours already; an admin will look at it"
    )
    open_one = select(AbuseReport.id).where(
        AbuseReport.reporter == reporter,
        AbuseReport.target_key == key,
        AbuseReport.status == "open",
    )
    if session.scalar(open_one) is not None:
        raise duplicate
    session.add(report)
    try:
        session.flush()
    except IntegrityError:  # a concurrent twin won: the request's rollback undoes this one
        raise duplicate from None
    audit.record(
        session, reporter, "report.file", subject, report=report.id, kind=data.kind,
        reason=data.reason,
    )  # fmt: skip
    return report


def list_reports(
    session: Session, *, status: str = "open", page: int = 1, per_page: int = 50
) -> tuple[list[AbuseReport], int]:
    """Reports with ``status`` (open, resolved or all), oldest open first (resolved: newest
    first), and how many there are."""
    if status not in STATUSES:
        error = InvalidInputError(f"status: one of {', '.join(STATUSES)}, not {status!r}")
        error.field = "status"  # type: ignore[attr-defined]
        raise error
    query = select(AbuseReport)
    count = select(func.count()).select_from(AbuseReport)
    if status != "all":
        query = query.where(AbuseReport.status == status)
        count = count.where(AbuseReport.status == status)
    order = AbuseReport.id if status == "open" else AbuseReport.id.desc()
    rows = session.scalars(query.order_by(order).offset((page - 1) * per_page).limit(per_page))
    return list(rows), int(session.scalar(count) or 0)


def get_report(session: Session, report_id: int) -> AbuseReport:
    report = session.get(AbuseReport, report_id)
    if report is None:
        raise NotFoundError("report", str(report_id))
    return report


def resolve(
    session: Session,
    report: AbuseReport,
    decision: object,
    note: object,
    *,
    actor: str,
    secret: bytes,
) -> AbuseReport:
    """Close an open report with a decision and a note; ``quarantined`` quarantines the
    reported version first, ``removed`` deletes the reported review first (either refused,
    and nothing changes, when it cannot be done)."""
    chosen, why = check_decision(decision, note, kind=report.kind)
    if report.status != "open":
        raise ConflictError("report", str(report.id), f"is resolved already ({report.decision})")
    author = None
    if report.review_identity is not None:
        author = profiles.shown_names(session, [report.review_identity], secret)[
            report.review_identity
        ]
    if chosen in ("quarantined", "removed"):
        plugin = session.scalar(select(Plugin).where(Plugin.name == report.plugin_name))
        if plugin is None:
            raise NotFoundError("plugin", report.plugin_name)
        if chosen == "quarantined" and report.version is not None:
            lifecycle.set_quarantined(
                session, plugin, report.version, reason=why, actor=actor, report_id=report.id
            )
        if chosen == "removed" and report.review_identity is not None:
            community.delete_review(session, plugin, report.review_identity)
            audit.record(
                session, actor, "review.remove", _subject(report, author), report=report.id,
                reason=why,
            )  # fmt: skip
    report.status, report.decision, report.note = "resolved", chosen, why
    report.resolved_by, report.resolved_at = actor, utcnow()
    audit.record(
        session, actor, "report.resolve", _subject(report, author), report=report.id,
        decision=chosen, note=why,
    )  # fmt: skip
    return report


@dataclass(frozen=True)
class ReportView:
    """A report as admins see it: people by display name or pseudonym only."""

    id: int
    kind: str
    plugin: str
    version: str | None
    review_author: str | None
    reason: str
    reason_label: str
    text: str
    reporter: str
    status: str
    decision: str | None
    decision_label: str | None
    note: str | None
    resolved_by: str | None
    created_at: datetime
    resolved_at: datetime | None
    quarantined: bool
    """Whether the reported version is quarantined now."""

    def public(self) -> dict[str, Any]:
        return {
            name: (value.isoformat() if isinstance(value, datetime) else value)
            for name, value in self.__dict__.items()
        }


def view(session: Session, reports: list[AbuseReport], secret: bytes) -> list[ReportView]:
    people = {r.reporter for r in reports} | {r.resolved_by for r in reports if r.resolved_by}
    people |= {r.review_identity for r in reports if r.review_identity}
    names = profiles.shown_names(session, people, secret)
    quarantined = set()
    versions = {(r.plugin_name, r.version) for r in reports if r.version}
    if versions:
        rows = session.execute(
            select(Plugin.name, PluginVersion.version)
            .join(Plugin, Plugin.id == PluginVersion.plugin_id)
            .where(
                Plugin.name.in_({name for name, _ in versions}),
                PluginVersion.quarantined_reason.is_not(None),
            )
        )
        quarantined = {(str(name), str(version)) for name, version in rows}
    return [
        ReportView(
            id=r.id,
            kind=r.kind,
            plugin=r.plugin_name,
            version=r.version,
            review_author=names[r.review_identity] if r.review_identity else None,
            reason=r.reason,
            reason_label=REASONS.get(r.reason, r.reason),
            text=r.text,
            reporter=names[r.reporter],
            status=r.status,
            decision=r.decision,
            decision_label=DECISIONS.get(r.decision) if r.decision else None,
            note=r.note,
            resolved_by=names[r.resolved_by] if r.resolved_by else None,
            created_at=r.created_at,
            resolved_at=r.resolved_at,
            quarantined=(r.plugin_name, r.version or "") in quarantined,
        )
        for r in reports
    ]
