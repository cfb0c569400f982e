"""Abuse reports in the marketplace: a signed-in user's report form for a plugin (the plugin,
one of its versions, or one of its reviews), and the admins' queue, where a report is read and
resolved, the reported version quarantined or released. The same services as
``/api/v1/reports``; people appear by display name or pseudonym only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from sqlalchemy import select
from starlette.exceptions import HTTPException

from plugport.errors import InvalidInputError
from plugport.registry._report_rules import (
    DECISIONS,
    MAX_NOTE_CHARS,
    MAX_TEXT_CHARS,
    REASONS,
    check_report,
)
from plugport.registry.deps import SessionDep, SettingsDep
from plugport.registry.models import Plugin, utcnow
from plugport.registry.services import catalog, community, lifecycle, profiles, reports, tokens
from plugport.registry.services.tokens import Principal
from plugport.registry.web._common import (
    HtmlRoute,
    User,
    check_csrf,
    pseudonym_secret,
    redirect,
    render,
)

router = APIRouter(route_class=HtmlRoute, include_in_schema=False)

_Field = Annotated[str | None, Form()]


def _signed_in(request: Request, user: Principal | None, what: str) -> Principal | Response:
    if user is None:
        return redirect(
            request, f"/signin?next={request.url.path}", flash=f"Sign in to {what}.", kind="info"
        )
    return user


def _admin(request: Request, user: Principal | None) -> Principal | Response:
    found = _signed_in(request, user, "handle reports")
    if isinstance(found, Principal):
        tokens.require(found, "admin")
    return found


def _form_page(
    request: Request,
    session: SessionDep,
    name: str,
    *,
    values: dict[str, str] | None = None,
    error: InvalidInputError | None = None,
) -> Response:
    plugin = catalog.get_plugin(session, name)
    reviews = community.reviews_of(session, plugin, page=1, per_page=100)
    authors = profiles.shown_names(
        session, (r.identity for r in reviews), pseudonym_secret(request)
    )
    context = {
        "plugin": plugin,
        "versions": [v.version for v in catalog.published(session, plugin)],
        "authors": sorted(authors.values()),
        "reasons": REASONS,
        "max_text": MAX_TEXT_CHARS,
        "values": values or {},
        "error": str(error) if error else None,
        "error_field": getattr(error, "field", None),
    }
    return render(request, "report_form.html", context, status_code=400 if error else 200)


@router.get("/plugins/{name}/report", name="web_report_form")
def report_form(
    name: str, request: Request, session: SessionDep, user: User, version: str | None = None
) -> Response:
    found = _signed_in(request, user, "report a plugin")
    if isinstance(found, Response):
        return found
    values = {"kind": "version", "version": version} if version else {}
    return _form_page(request, session, name, values=values)


@router.post("/plugins/{name}/report", name="web_report_file")
def file_report(
    name: str,
    *,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: User,
    kind: _Field = None,
    version: _Field = None,
    author: _Field = None,
    reason: _Field = None,
    text: _Field = None,
    csrf: _Field = None,
) -> Response:
    check_csrf(request, csrf)
    found = _signed_in(request, user, "report a plugin")
    if isinstance(found, Response):
        return found
    # The form sends every control; only the chosen target's one counts.
    values = {"kind": kind or "", "version": version or "", "author": author or ""}
    values |= {"reason": reason or "", "text": text or ""}
    try:
        data = check_report(
            kind,
            name,
            version if kind == "version" else None,
            author if kind == "review" else None,
            reason,
            text,
        )
    except InvalidInputError as exc:
        return _form_page(request, session, name, values=values, error=exc)
    reports.file_report(
        session,
        found.identity,
        data,
        limit_per_hour=settings.report_limit_per_hour,
        secret=pseudonym_secret(request),
        now=utcnow(),
    )
    return redirect(
        request,
        f"/plugins/{name}",
        flash="Thank you: your report is queued for the registry's admins.",
    )


@router.get("/admin/reports", name="web_report_queue")
def queue(request: Request, session: SessionDep, user: User, status: str = "open") -> Response:
    admin = _admin(request, user)
    if isinstance(admin, Response):
        return admin
    rows, total = reports.list_reports(session, status=status, per_page=200)
    items = reports.view(session, rows, pseudonym_secret(request))
    return render(request, "report_queue.html", {"items": items, "total": total, "status": status})


def _item_page(
    request: Request, session: SessionDep, report_id: int, *, error: str | None = None
) -> Response:
    report = reports.get_report(session, report_id)
    item = reports.view(session, [report], pseudonym_secret(request))[0]
    context = {"item": item, "decisions": DECISIONS, "max_note": MAX_NOTE_CHARS, "error": error}
    return render(request, "report_item.html", context, status_code=400 if error else 200)


@router.get("/admin/reports/{report_id}", name="web_report_item")
def item(report_id: int, request: Request, session: SessionDep, user: User) -> Response:
    admin = _admin(request, user)
    if isinstance(admin, Response):
        return admin
    return _item_page(request, session, report_id)


@router.post("/admin/reports/{report_id}", name="web_report_resolve")
def resolve(
    report_id: int,
    *,
    request: Request,
    session: SessionDep,
    user: User,
    decision: _Field = None,
    note: _Field = None,
    csrf: _Field = None,
) -> Response:
    check_csrf(request, csrf)
    admin = _admin(request, user)
    if isinstance(admin, Response):
        return admin
    report = reports.get_report(session, report_id)
    try:
        reports.resolve(
            session,
            report,
            decision,
            note,
            actor=admin.identity,
            secret=pseudonym_secret(request),
        )
    except InvalidInputError as exc:
        return _item_page(request, session, report_id, error=str(exc))
    return redirect(request, "/admin/reports", flash=f"Report {report_id} resolved ({decision}).")


@router.post("/admin/reports/{report_id}/release", name="web_report_release")
def release(
    report_id: int, request: Request, session: SessionDep, user: User, csrf: _Field = None
) -> Response:
    """End the quarantine of the version a report names (audited as a release)."""
    check_csrf(request, csrf)
    admin = _admin(request, user)
    if isinstance(admin, Response):
        return admin
    report = reports.get_report(session, report_id)
    plugin = session.scalar(select(Plugin).where(Plugin.name == report.plugin_name))
    if plugin is None or report.version is None:
        raise HTTPException(400, "this report names no version")
    lifecycle.set_quarantined(session, plugin, report.version, reason=None, actor=admin.identity)
    return redirect(
        request,
        f"/admin/reports/{report_id}",
        flash=f"{report.plugin_name} {report.version} is released from quarantine.",
    )
