"""``plugport check``: everything a reviewer would object to, found before publishing.

Each check is a pure decision over facts about one plugin (its validation report, the registry's
security scan of its archive, the members and the manifest table, what a test run recorded);
:func:`gather` is the thin layer that collects those facts from a directory or an archive, packing
a directory with the real packer so that the scan sees exactly what the registry would. The rule
for capabilities is the runtime's own (:func:`plugport._permissions.refusal`, which the broker
applies, and ``check_url`` for a literal URL): a use the broker would refuse is an error here
too.
"""

from __future__ import annotations

import inspect
import json
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from plugport import archive
from plugport._api_usage import ApiUse, EventHandler
from plugport._content_rules import content_paths
from plugport._permissions import RULES, refusal
from plugport.authoring import ValidationReport, validate_path, validate_tree
from plugport.deps.lockfile import WHEELS_DIR
from plugport.errors import InvalidInputError, PermissionDeniedError, PlugportError
from plugport.inspection import Finding
from plugport.manifest import (
    LIMIT_BOUNDS,
    MANIFEST_FILENAME,
    UI_CONTRIBUTIONS,
    UI_PERMISSIONS,
    Manifest,
    Permissions,
    match_topic,
    pattern_covers,
)
from plugport.registry.scanner import ScanReport, scan_members
from plugport.sdk._api import CAPABILITIES, Api
from plugport.versions import canonical_version, parse_version

__all__ = [
    "CheckItem",
    "CheckReport",
    "PluginFacts",
    "RecordedCall",
    "Recording",
    "assess",
    "capability_items",
    "check_path",
    "gather",
    "load_recorded",
    "parse_recorded",
    "surface_items",
    "undeclared_use_warnings",
    "version_items",
]

Level = Literal["error", "warning", "info"]
RECORDED_WHERE = "test run"
_STORAGE_SUGGESTION = '"64 KiB"'
# Scan findings the validation report already gives as errors, for the same file.
_VALIDATION_RULES = {"private-key", "syntax-error"}


@dataclass(frozen=True, slots=True)
class CheckItem:
    """One objection: how serious, which check, where (``file:line`` or ``plugport.toml: field``)
    and what to do about it."""

    level: Level
    check: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message

    def to_json(self) -> dict[str, str]:
        return {
            "level": self.level,
            "check": self.check,
            "where": self.where,
            "message": self.message,
        }


@dataclass
class CheckReport:
    """Errors fail the check (exit 1); warnings are what a reviewer would ask about."""

    path: str
    manifest: Manifest | None
    items: list[CheckItem] = field(default_factory=list)

    @property
    def errors(self) -> list[CheckItem]:
        return [i for i in self.items if i.level == "error"]

    @property
    def warnings(self) -> list[CheckItem]:
        return [i for i in self.items if i.level == "warning"]

    @property
    def passed(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "name": self.manifest.name if self.manifest else None,
            "version": self.manifest.version if self.manifest else None,
            "passed": self.passed,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "items": [i.to_json() for i in self.items],
        }


@dataclass(frozen=True, slots=True)
class RecordedCall:
    """A capability call a test run made (written by the ``plugport.testing`` pytest plugin)."""

    capability: str
    method: str
    verdict: Literal["granted", "denied"]
    reason: str = ""


@dataclass(frozen=True)
class PluginFacts:
    """What the checks decide on, gathered once from a directory or an archive."""

    path: str
    validation: ValidationReport
    scan: ScanReport | None  # None when the archive could not be built or read
    archive_problem: str  # why not, else ""
    members: tuple[str, ...]
    manifest_table: dict[str, Any] | None  # the TOML as written, before defaults apply
    recorded: tuple[RecordedCall, ...] = ()


# --- the I/O layer -------------------------------------------------------------------------------


def gather(path: Path, recorded: Sequence[RecordedCall] = ()) -> PluginFacts:
    """Validate ``path`` (a plugin directory or a ``.plugport`` archive) and scan the archive the
    registry would receive; a directory is packed into a scratch file for that, never in place."""
    if path.is_dir():
        validation = validate_tree(path)
        with tempfile.TemporaryDirectory(prefix="plugport-check-") as scratch:
            packed = Path(scratch) / "plugin.plugport"
            try:
                archive.pack_tree(path, packed)
            except PlugportError as exc:
                table = _manifest_table((path / MANIFEST_FILENAME).read_bytes, validation)
                return PluginFacts(str(path), validation, None, str(exc), (), table, (*recorded,))
            return _scanned(packed, str(path), validation, recorded)
    return _scanned(path, str(path), validate_path(path), recorded)


def _scanned(
    file: Path, shown_as: str, validation: ValidationReport, recorded: Sequence[RecordedCall]
) -> PluginFacts:
    members: list[str] = []
    manifest_bytes: list[bytes] = []

    def tapped(pairs: Iterable[tuple[str, bytes]]) -> Iterator[tuple[str, bytes]]:
        for name, data in pairs:
            members.append(name)
            if name == MANIFEST_FILENAME:
                manifest_bytes.append(data)
            yield name, data

    try:
        # What scan_archive does, with the names and the manifest noted on the way.
        platforms = validation.manifest.python.platforms if validation.manifest else []
        scan: ScanReport | None = scan_members(
            tapped(archive.iter_members(file, shown_as=shown_as)), platforms=platforms
        )
        problem = ""
    except PlugportError as exc:
        scan, problem = None, str(exc)
    table = _manifest_table(lambda: manifest_bytes[0], validation) if manifest_bytes else None
    return PluginFacts(shown_as, validation, scan, problem, tuple(members), table, (*recorded,))


def _manifest_table(read: Any, validation: ValidationReport) -> dict[str, Any] | None:
    if validation.manifest is None:
        return None
    try:
        table: dict[str, Any] = tomllib.loads(read().decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    return table


def check_path(path: Path, recorded: Sequence[RecordedCall] = ()) -> CheckReport:
    """Every static check on ``path``; the registry's version round trip is the caller's."""
    return assess(gather(path, recorded))


@dataclass(frozen=True)
class Recording:
    """What one test run of ``plugin`` recorded."""

    plugin: str
    calls: tuple[RecordedCall, ...]


def load_recorded(path: Path) -> Recording:
    """The calls a test run recorded, from the JSON file the pytest plugin writes."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInputError(f"--recorded {path}: cannot read it ({exc.strerror})") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"--recorded {path}: not JSON ({exc})") from None
    return parse_recorded(data, source=str(path))


def parse_recorded(data: Any, *, source: str) -> Recording:
    """``{"plugin": NAME, "calls": [{"capability", "method", "verdict", "reason"}]}``."""
    where = f"--recorded {source}"
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("plugin"), str)
        or not isinstance(data.get("calls"), list)
    ):
        raise InvalidInputError(f'{where}: expected {{"plugin": NAME, "calls": [...]}}')
    calls = []
    for index, call in enumerate(data["calls"]):
        ok = (
            isinstance(call, dict)
            and isinstance(call.get("capability"), str)
            and isinstance(call.get("method"), str)
            and call.get("verdict") in ("granted", "denied")
            and isinstance(call.get("reason", ""), str)
        )
        if not ok:
            raise InvalidInputError(
                f"{where}: calls[{index}] needs string 'capability' and 'method', and "
                f"'verdict' 'granted' or 'denied'; found {call!r}"
            )
        reason = call.get("reason", "")
        calls.append(RecordedCall(call["capability"], call["method"], call["verdict"], reason))
    return Recording(data["plugin"], tuple(calls))


# --- the decisions -------------------------------------------------------------------------------


def assess(facts: PluginFacts) -> CheckReport:
    """Every static check, in the order a reviewer reads them."""
    validation = facts.validation
    report = CheckReport(facts.path, validation.manifest)
    report.items += _validation_items(validation, facts.scan)
    report.items += _scan_items(facts, validation)
    manifest = validation.manifest
    if manifest is None:
        return report
    report.items += capability_items(
        manifest, validation.api_uses, validation.event_handlers, facts.recorded
    )
    report.items += surface_items(manifest, validation.api_uses)
    report.items += _ungranted_widget_items(manifest)
    if facts.manifest_table is not None:
        report.items += _limits_items(facts.manifest_table)
    report.items += _presentation_items(manifest, facts.members)
    return report


def _validation_items(validation: ValidationReport, scan: ScanReport | None) -> list[CheckItem]:
    items = [
        CheckItem("error", "manifest", _problem_where(p.path), p.message) for p in validation.errors
    ]
    scanned = {(f.file, f.line, f.rule) for f in scan.findings} if scan else set()
    for finding in validation.warnings:
        if (finding.file, finding.line, finding.rule) not in scanned:
            items.append(
                CheckItem("warning", "code", f"{finding.file}:{finding.line}", _said(finding))
            )
    return items


def _problem_where(path: str) -> str:
    if "/" in path or path.endswith(".py"):
        return path  # a file of the plugin
    return f"{MANIFEST_FILENAME}: {path}" if path else MANIFEST_FILENAME


def _said(finding: Finding) -> str:
    return f"[{finding.rule}] {finding.message}"


def _scan_items(facts: PluginFacts, validation: ValidationReport) -> list[CheckItem]:
    if facts.scan is None:
        if validation.errors:
            return []  # the same archive problem is already reported by validation
        return [CheckItem("error", "scan", facts.path, f"cannot scan: {facts.archive_problem}")]
    invalid_files = {p.path for p in validation.errors}
    items = []
    for finding in facts.scan.findings:
        if finding.rule in _VALIDATION_RULES and finding.file in invalid_files:
            continue
        if finding.severity == "high" and _in_library_code(finding):
            # In a locked library's code: not the author's to fix, so not an error that stops
            # `plugport publish`; the registry still holds the upload for a reviewer.
            items.append(
                CheckItem(
                    "warning",
                    "scan",
                    f"{finding.file}:{finding.line}",
                    f"{_said(finding)} (high, in a library: the registry holds the upload for "
                    "review; tell the reviewer why the plugin needs it, or lock another version)",
                )
            )
        elif finding.severity == "high":
            items.append(
                CheckItem(
                    "error",
                    "scan",
                    f"{finding.file}:{finding.line}",
                    f"{_said(finding)} (high: the registry holds the upload for review, even "
                    "in a trusted namespace)",
                )
            )
        else:
            items.append(
                CheckItem(
                    "warning",
                    "scan",
                    f"{finding.file}:{finding.line}",
                    f"{_said(finding)} ({finding.severity}: a reviewer will ask about it)",
                )
            )
    return items


def _in_library_code(finding: Finding) -> bool:
    """A finding about what a locked library's Python code does, as opposed to how its wheel
    is built (unsafe members, native code for undeclared platforms): the author can fix those."""
    return finding.file.startswith(f"{WHEELS_DIR}/") and not finding.rule.startswith(
        ("wheel-", "native-", "compiled-")
    )


def _limits_items(table: dict[str, Any]) -> list[CheckItem]:
    if "limits" in table:
        return []
    defaults = ", ".join(f"{name} = {bounds[0]}" for name, bounds in LIMIT_BOUNDS.items())
    return [
        CheckItem(
            "warning",
            "limits",
            f"{MANIFEST_FILENAME}: limits",
            f"no [limits] table, so the defaults apply ({defaults}); declare what the plugin "
            "needs, so that reviewers and operators see it",
        )
    ]


def _missing_presentation(manifest: Manifest, members: Sequence[str]) -> list[tuple[str, str, str]]:
    """What the marketplace page would lack, as (rule, where, advice): no icon, README or
    changelog. Warnings only: a plugin works without them."""
    missing = []
    if not members:
        return [] if manifest.icon else [_NO_ICON]
    shown = {
        kind
        for kind, _ in content_paths(manifest.readme, manifest.changelog, None, [], set(members))
    }
    if "readme" not in shown:
        missing.append(
            (
                "readme",
                "README.md",
                "no README at the top of the plugin: add README.md saying what it does, its "
                "settings and why it needs each permission (the marketplace shows it)",
            )
        )
    if "changelog" not in shown:
        missing.append(
            (
                "changelog",
                "CHANGELOG.md",
                "no changelog: add CHANGELOG.md listing what changed in each version (the "
                'marketplace shows it), or name another file with changelog = "..."',
            )
        )
    if manifest.icon is None:
        missing.append(_NO_ICON)
    return missing


_NO_ICON = (
    "icon",
    f"{MANIFEST_FILENAME}: icon",
    'no icon: add a PNG or SVG to the plugin and name it, e.g. icon = "assets/icon.svg" (the '
    "marketplace shows a placeholder)",
)


def _presentation_items(manifest: Manifest, members: Sequence[str]) -> list[CheckItem]:
    return [
        CheckItem("warning", rule, where, advice)
        for rule, where, advice in _missing_presentation(manifest, members)
    ]


def presentation_warnings(validation: ValidationReport) -> list[Finding]:
    """For ``plugport validate``: the same warnings ``plugport check`` gives when the plugin
    has no icon, README or changelog."""
    if validation.manifest is None:
        return []
    return [
        Finding(where.split(":")[0], 0, f"no-{rule}", "low", advice)
        for rule, where, advice in _missing_presentation(validation.manifest, validation.members)
    ]


def version_items(manifest: Manifest, published: Sequence[str], registry: str) -> list[CheckItem]:
    """A version the registry has already (in any spelling PEP 440 treats as equal) is refused on
    upload: versions are immutable."""
    where = f"{MANIFEST_FILENAME}: version"
    mine = canonical_version(manifest.version)
    taken = next((v for v in published if canonical_version(v) == mine), None)
    if taken is not None:
        return [
            CheckItem(
                "error",
                "version",
                where,
                f"bump `version` in {MANIFEST_FILENAME} (registry has {taken}): {registry} "
                "refuses a version it has, even a yanked one",
            )
        ]
    newer = [v for v in published if parse_version(v) > parse_version(manifest.version)]
    if newer:
        latest = max(newer, key=parse_version)
        return [
            CheckItem(
                "warning",
                "version",
                where,
                f"{manifest.version} is lower than {latest} on {registry}: hosts install the "
                "highest version, so this one only where it is pinned",
            )
        ]
    return []


# --- capabilities --------------------------------------------------------------------------------


def capability_items(
    manifest: Manifest,
    uses: Sequence[ApiUse],
    handlers: Sequence[EventHandler] = (),
    recorded: Sequence[RecordedCall] = (),
) -> list[CheckItem]:
    """Used but not declared (errors, naming the manifest line to add) and declared but never
    used (warnings: least privilege), from the code and from what a test run recorded."""
    items = _undeclared(manifest, uses, recorded)
    items += _unsubscribed(manifest, handlers)
    run_uses = [ApiUse(RECORDED_WHERE, 0, c.capability, c.method) for c in recorded]
    items += _unused(manifest, [*uses, *run_uses], handlers)
    return items


def undeclared_use_warnings(validation: ValidationReport) -> list[Finding]:
    """For ``plugport validate``: each ``self.api`` use the manifest does not grant, and each
    UI surface the code invalidates that the manifest does not contribute."""
    manifest = validation.manifest
    if manifest is None:
        return []
    found = []
    for use in validation.api_uses:
        reason = _refusal(manifest.permissions, use)
        if reason:
            found.append(
                Finding(
                    use.file,
                    use.line,
                    "undeclared-capability",
                    "medium",
                    f"{use.call}: {reason}{_fix_text(manifest.permissions, use)}",
                )
            )
        elif _surface_refusal(manifest, use):
            found.append(
                Finding(
                    use.file,
                    use.line,
                    "uncontributed-surface",
                    "medium",
                    f"{use.call}: {_surface_refusal(manifest, use)}",
                )
            )
    return found


_SURFACE_METHODS = ("invalidate", "update_widget")


def surface_items(manifest: Manifest, uses: Sequence[ApiUse]) -> list[CheckItem]:
    """``ui.invalidate(ID)`` with an ID the code spells out, held to the manifest as the
    runtime holds it (a plugin signals only the surfaces its users saw at install, so any
    other ID is refused at run time: an error here); ``ui.update_widget`` is the push of
    before 0.4, whose data the host now ignores: a warning naming its replacement."""
    items = []
    for use in uses:
        if use.capability != "ui" or use.method not in _SURFACE_METHODS:
            continue
        reason = _surface_refusal(manifest, use)
        if reason:
            message = f"{use.call} is refused at run time: {reason}"
            items.append(CheckItem("error", "ui", use.where, message))
        if use.method == "update_widget":
            surface = repr(use.argument) if use.argument is not None else "WIDGET_ID"
            items.append(
                CheckItem(
                    "warning",
                    "ui",
                    use.where,
                    f"{use.call}: ui.update_widget is deprecated since 0.4; the host asks the "
                    f"@widget handler for the tree and drops the data sent here; call "
                    f"self.api.ui.invalidate({surface}) instead",
                )
            )
    return items


def _ungranted_widget_items(manifest: Manifest) -> list[CheckItem]:
    """Widgets predate their permission, so a manifest may contribute them without
    ``ui = ["widgets"]`` (every other UI contribution needs its value to validate); the host
    then never calls their handlers, so no dashboard offers them."""
    if not manifest.contributes.widgets or "widgets" in manifest.permissions.ui:
        return []
    line = f"ui = {json.dumps([*manifest.permissions.ui, 'widgets'])}"
    return [
        CheckItem(
            "warning",
            "ui",
            f"{MANIFEST_FILENAME}: contributes.widgets",
            "the host shows no widget of a plugin without 'widgets' in permissions.ui; add to "
            f"{MANIFEST_FILENAME}: [permissions] {line}",
        )
    ]


def _surface_refusal(manifest: Manifest, use: ApiUse) -> str:
    """Why the UI registry would refuse the surface ``use`` names (``""``: it would not, or
    the code does not spell the surface out)."""
    if use.capability != "ui" or use.method not in _SURFACE_METHODS or use.argument is None:
        return ""
    surfaces = [s.id for s in manifest.contributes.ui_surfaces()]
    if use.argument in surfaces:
        return ""
    return (
        f"{use.argument!r} is not a widget, page, menu item, field type or view the manifest "
        f"contributes (it contributes: {', '.join(surfaces) or 'none'}); add it under "
        f"[contributes] in {MANIFEST_FILENAME} with its handler, or name one of those"
    )


def _undeclared(
    manifest: Manifest, uses: Sequence[ApiUse], recorded: Sequence[RecordedCall]
) -> list[CheckItem]:
    permissions = manifest.permissions
    groups: dict[str, list[tuple[ApiUse, str]]] = {}
    for use in uses:
        reason = _refusal(permissions, use)
        if reason:
            groups.setdefault(_fix_text(permissions, use) or reason, []).append((use, reason))
    items = []
    for found in groups.values():
        use, reason = found[0]
        also = f" (also at {', '.join(u.where for u, _ in found[1:])})" if found[1:] else ""
        message = f"{use.call} is refused at run time: {reason}{_fix_text(permissions, use)}"
        items.append(CheckItem("error", "capabilities", use.where, message + also))
    for call in recorded:
        if call.verdict != "denied":
            continue
        use = ApiUse(RECORDED_WHERE, 0, call.capability, call.method)
        missing = _refusal(permissions, use)
        said = f"the test run was denied {call.capability}.{call.method}: {call.reason}"
        if missing:
            items.append(
                CheckItem(
                    "error", "capabilities", RECORDED_WHERE, said + _fix_text(permissions, use)
                )
            )
        else:
            items.append(
                CheckItem(
                    "warning",
                    "capabilities",
                    RECORDED_WHERE,
                    f"{said} (fine if the test meant it to be refused)",
                )
            )
    return items


def _unsubscribed(manifest: Manifest, handlers: Sequence[EventHandler]) -> list[CheckItem]:
    subscribed = manifest.permissions.events.subscribe
    items = []
    for handler in handlers:
        if not any(_overlap(pattern, handler.topic) for pattern in subscribed):
            patterns = json.dumps([*subscribed, handler.topic])
            items.append(
                CheckItem(
                    "error",
                    "capabilities",
                    f"{handler.file}:{handler.line}",
                    f"@on_event({handler.topic!r}) never receives anything: "
                    f"permissions.events.subscribe does not cover it; add to "
                    f"{MANIFEST_FILENAME}: [permissions] events.subscribe = {patterns}",
                )
            )
    return items


def _unused(
    manifest: Manifest, uses: Sequence[ApiUse], handlers: Sequence[EventHandler]
) -> list[CheckItem]:
    granted = manifest.permissions
    pieces: list[tuple[str, str, Permissions]] = []
    if granted.storage:
        pieces.append(("storage", "self.api.storage call", Permissions(storage=granted.storage)))
    if granted.config:
        pieces.append(("config", "self.api.config call", Permissions(config=True)))
    pieces += [
        (f"network {p!r}", "self.api.net.fetch to it", Permissions(network=[p]))
        for p in granted.network
    ]
    pieces += [
        (
            f"events.publish {p!r}",
            "self.api.events.publish to it",
            Permissions.model_validate({"events": {"publish": [p]}}),
        )
        for p in granted.events.publish
    ]
    pieces += [
        (
            f"tasks.submit {t!r}",
            "self.api.tasks.submit of that type",
            Permissions.model_validate({"tasks": {"submit": [t]}}),
        )
        for t in granted.tasks.submit
    ]
    # A UI surface the manifest contributes to (widgets, pages ...) is used by the host
    # itself, which calls the plugin's handlers only while that value is granted.
    contributed = {
        surface
        for contribution, surface in UI_CONTRIBUTIONS.items()
        if getattr(manifest.contributes, contribution)
    }
    pieces += [
        (f"ui {s!r}", f"self.api.ui call that needs {s!r}", Permissions(ui=[s]))
        for s in granted.ui
        if s not in contributed
    ]
    # A call no grant is needed for (tasks.progress on the plugin's own task) uses none.
    needing = [use for use in uses if _refusal(Permissions(), use)]
    items = []
    for label, wanted, piece in pieces:
        if not any(_refusal(piece, use) == "" for use in needing):
            items.append(_unused_item(label, f"no {wanted} in the code or the test run"))
    for pattern in granted.events.subscribe:
        if not any(_overlap(pattern, h.topic) for h in handlers):
            items.append(_unused_item(f"events.subscribe {pattern!r}", "no @on_event receives it"))
    return items


def _unused_item(label: str, why: str) -> CheckItem:
    field_name = label.split(" ", 1)[0]
    return CheckItem(
        "warning",
        "capabilities",
        f"{MANIFEST_FILENAME}: permissions.{field_name}",
        f"{label} is requested but never used ({why}): remove it; users are asked to consent "
        "to every permission, so ask only for what the plugin uses",
    )


def _overlap(a: str, b: str) -> bool:
    """Whether topic patterns ``a`` and ``b`` can match a common topic (conservatively: one
    covers the other, or they are the same literal topic)."""
    return pattern_covers(a, b) or pattern_covers(b, a) or match_topic(a, b) or match_topic(b, a)


@cache
def _offered() -> frozenset[tuple[str, str]]:
    """The ``(capability, method)`` pairs the broker serves, read from the SDK's typed proxies
    (tests/runtime/test_capabilities.py holds them equal to the broker's handlers), so checking
    a plugin does not load the host's runtime."""
    api = Api(transport=None)  # type: ignore[arg-type]  # proxies are only inspected here
    return frozenset(
        (name, method)
        for name in CAPABILITIES
        for method, member in vars(type(getattr(api, name))).items()
        if not method.startswith("_") and inspect.iscoroutinefunction(member)
    )


def _events_refusal(permissions: Permissions, use: ApiUse) -> str:
    """The events rule decides on the topic; an unspelled topic needs some publish grant."""
    if use.argument is None:
        publish = permissions.events.publish
        return "" if publish else "permissions.events.publish grants no topics"
    return refusal(permissions, "events", use.method, {"topic": use.argument})


def _secrets_refusal(permissions: Permissions, use: ApiUse) -> str:
    """The secrets rule decides on the secret's name; a name the code does not spell out
    passes when some secret the method could use is declared."""
    if use.argument is not None:
        return refusal(permissions, "secrets", use.method, {"name": use.argument})
    named = {*permissions.credentials, *permissions.secrets.sign}
    if use.method == "reveal":
        named = set(permissions.secrets.reveal)
    return "" if named else f"no secret is declared that secrets.{use.method} could use"


def _tasks_refusal(permissions: Permissions, use: ApiUse) -> str:
    """The tasks rule decides ``submit`` on the task type; a type the code does not spell out
    needs some ``tasks.submit`` grant. ``progress`` reports on the plugin's own task: no grant."""
    if use.method != "submit":
        return refusal(permissions, "tasks", use.method, {})
    if use.argument is None:
        return "" if permissions.tasks.submit else "permissions.tasks.submit grants no task types"
    return refusal(permissions, "tasks", use.method, {"task_type": use.argument})


_NAMED_RULES: dict[str, Callable[[Permissions, ApiUse], str]] = {
    "events": _events_refusal,
    "secrets": _secrets_refusal,
    "tasks": _tasks_refusal,
}


def _refusal(permissions: Permissions, use: ApiUse) -> str:
    """Why the broker would refuse ``use`` under ``permissions`` (``""``: granted). An argument
    the code does not spell out counts as needing the permission at all."""
    if (use.capability, use.method) not in _offered():
        offered = ", ".join(sorted(f"{c}.{m}" for c, m in _offered()))
        return f"the host offers no {use.capability}.{use.method} (it offers {offered})"
    named = _NAMED_RULES.get(use.capability)
    if named is not None:
        return named(permissions, use)
    try:
        reason = refusal(permissions, use.capability, use.method, {})
    except InvalidInputError:
        # A rule that decides on the call's arguments (mail.send's recipients) and cannot
        # without them: what the code does not spell out needs the permission at all.
        declared = RULES[use.capability].declared(permissions)
        reason = "" if declared else f"permissions grant no {use.capability}"
    if reason or use.capability != "net" or use.argument is None:
        return reason
    # The network broker's own URL rule, loaded only for a literal URL (it brings httpx).
    from plugport._fetch_rules import FetchPolicy, check_url

    try:
        check_url(use.argument, FetchPolicy(allowed=tuple(permissions.network)))
    except PermissionDeniedError as exc:
        return exc.reason
    return ""


def _fix_text(permissions: Permissions, use: ApiUse) -> str:
    line = _fix_line(permissions, use)
    return f"; add to {MANIFEST_FILENAME}: [permissions] {line}" if line else ""


def _fix_line(permissions: Permissions, use: ApiUse) -> str | None:
    """The ``[permissions]`` line that grants ``use``, keeping what is granted already."""
    if (use.capability, use.method) not in _offered():
        return None
    if use.capability == "ui":
        surface = next(
            s
            # the first surfaces first: a widget's fix is "widgets", not "custom_view"
            for s in sorted(
                UI_PERMISSIONS, key=lambda s: s not in ("messages", "commands", "widgets")
            )
            if not refusal(Permissions.model_validate({"ui": [s]}), "ui", use.method, {})
        )
        return f"ui = {json.dumps([*permissions.ui, surface])}"
    if use.capability == "events":
        topics = [*permissions.events.publish, use.argument or "TOPIC"]
        return f"events.publish = {json.dumps(topics)}"
    if use.capability == "tasks":
        types = [*permissions.tasks.submit, use.argument or "TASK_TYPE"]
        return f"tasks.submit = {json.dumps(types)}"
    if use.capability == "net":
        host = _host_pattern(use.argument) if use.argument else None
        return f"network = {json.dumps([*permissions.network, host or 'HOST'])}"
    return {"storage": f"storage = {_STORAGE_SUGGESTION}", "config": "config = true"}.get(
        use.capability
    )


def _host_pattern(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.hostname if port in (None, 80, 443) else f"{parts.hostname}:{port}"
