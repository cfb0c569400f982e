"""``/api/v1/reports``: any signed-in token reports a plugin, a version or a review (a
closed set of reasons, a bounded text, a budget per hour, one open report per target);
admins list, read and resolve reports, quarantining the reported version if need be."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from plugport.registry._report_rules import check_report
from plugport.registry.deps import Caller, PseudonymSecret, SessionDep, SettingsDep
from plugport.registry.models import utcnow
from plugport.registry.services import reports, tokens

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])


class ReportCreate(BaseModel):
    """What is reported and why. ``kind`` plugin needs ``plugin``; version also ``version``;
    review also ``author``, the review's author as the reviews list shows it."""

    model_config = ConfigDict(extra="forbid")
    kind: str = Field(max_length=16)
    plugin: str = Field(max_length=130)
    version: str | None = Field(default=None, max_length=64)
    author: str | None = Field(default=None, max_length=200)
    reason: str = Field(max_length=32)
    """malware, impersonation, spam, offensive, broken or other."""
    text: str = Field(default="", max_length=20_000)
    """Up to 2000 characters once trimmed (checked by the service, which names the field);
    needed when the reason is ``other``."""


class Resolution(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: str = Field(max_length=32)
    """dismissed, actioned, quarantined (a version report: the version is quarantined) or
    removed (a review report: the review is deleted)."""
    note: str = Field(max_length=20_000)


@router.post("", status_code=201)
def file_report(
    body: ReportCreate,
    session: SessionDep,
    caller: Caller,
    settings: SettingsDep,
    secret: PseudonymSecret,
) -> dict[str, Any]:
    """Report a plugin, a version or a review. 400 names the field at fault; 404 when the
    target does not exist; 409 when you have an open report on it already; 429 past
    ``report_limit_per_hour`` (the error names it and when to retry). Nothing is stored on a
    refusal; a filed report is audited."""
    data = check_report(body.kind, body.plugin, body.version, body.author, body.reason, body.text)
    report = reports.file_report(
        session,
        caller.identity,
        data,
        limit_per_hour=settings.report_limit_per_hour,
        secret=secret,
        now=utcnow(),
    )
    return reports.view(session, [report], secret)[0].public()


@router.get("")
def list_reports(
    *,
    session: SessionDep,
    caller: Caller,
    secret: PseudonymSecret,
    status: Annotated[Literal["open", "resolved", "all"], Query()] = "open",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Admins: the queue (open reports, oldest first), or the resolved ones. Reporters and
    review authors appear by display name or pseudonym."""
    tokens.require(caller, "admin")
    rows, total = reports.list_reports(session, status=status, page=page, per_page=per_page)
    return {"total": total, "items": [v.public() for v in reports.view(session, rows, secret)]}


@router.get("/{report_id}")
def show_report(
    report_id: int, session: SessionDep, caller: Caller, secret: PseudonymSecret
) -> dict[str, Any]:
    """Admins: one report."""
    tokens.require(caller, "admin")
    report = reports.get_report(session, report_id)
    return reports.view(session, [report], secret)[0].public()


@router.post("/{report_id}/resolve")
def resolve_report(
    report_id: int,
    body: Resolution,
    session: SessionDep,
    caller: Caller,
    secret: PseudonymSecret,
) -> dict[str, Any]:
    """Admins: close an open report with a decision and a note. ``quarantined`` quarantines
    the reported version (a version report only), ``removed`` deletes the reported review (a
    review report only), in the same transaction. Audited; 409 when the report is resolved
    already or the version is quarantined already."""
    tokens.require(caller, "admin")
    report = reports.get_report(session, report_id)
    reports.resolve(session, report, body.decision, body.note, actor=caller.identity, secret=secret)
    return reports.view(session, [report], secret)[0].public()
