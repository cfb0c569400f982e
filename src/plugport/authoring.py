"""The author's workflow on real files: validate a plugin, pack it, sign and verify archives.

This is the thin layer of file I/O around the pure pieces (manifest, inspection, archive,
signing) that the CLI and later the registry and host call.
"""

from __future__ import annotations

import ast
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from plugport import _api_usage, _content_rules, archive, inspection, plugin_wheel, signing
from plugport._dirs import created_directory, write_atomic
from plugport._engines import engine_conflicts, raise_engine
from plugport.deps.locker import cached_wheel
from plugport.deps.lockfile import LOCK_FILENAME, WHEELS_DIR, load_lock
from plugport.errors import (
    ArchiveError,
    DependencyError,
    InvalidInputError,
    ManifestError,
    PluginValidationError,
    PlugportError,
    Problem,
    SignatureError,
)
from plugport.manifest import MANIFEST_FILENAME, Manifest, load_manifest, parse_manifest_bytes

__all__ = [
    "PackedPlugin",
    "ValidationReport",
    "archive_facts",
    "default_signature_path",
    "pack_plugin",
    "read_archive_manifest",
    "sign_archive",
    "validate_path",
    "validate_tree",
    "verify_archive",
]


@dataclass
class ValidationReport:
    """Errors block packing and publishing; warnings are what the sandbox will refuse at run
    time or what a reviewer will ask about."""

    path: str
    manifest: Manifest | None = None
    errors: list[Problem] = field(default_factory=list)
    warnings: list[inspection.Finding] = field(default_factory=list)
    # What the code reaches through self.api and receives with @on_event, for the capability
    # checks (plugport.checks) that decide them against the manifest.
    api_uses: list[_api_usage.ApiUse] = field(default_factory=list)
    event_handlers: list[_api_usage.EventHandler] = field(default_factory=list)
    members: list[str] = field(default_factory=list)
    """What the archive holds (or would hold, for a directory), for checks on its files."""

    @property
    def valid(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "valid": self.valid,
            "name": self.manifest.name if self.manifest else None,
            "version": self.manifest.version if self.manifest else None,
            "errors": [
                {"path": p.path, "message": p.message, "value": _jsonable(p.value)}
                for p in self.errors
            ],
            "warnings": [
                {
                    "file": w.file,
                    "line": w.line,
                    "rule": w.rule,
                    "severity": w.severity,
                    "message": w.message,
                }
                for w in self.warnings
            ],
        }


def _jsonable(value: object) -> object:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


def validate_tree(root: Path) -> ValidationReport:
    """Check a plugin directory: its manifest, then that the code matches what it declares."""
    report = ValidationReport(path=str(root))
    try:
        report.manifest = load_manifest(root)
    except ManifestError as exc:
        report.errors.extend(exc.problems)
        return report
    manifest = report.manifest
    text = (root / MANIFEST_FILENAME).read_text(encoding="utf-8")  # load_manifest parsed it
    report.errors.extend(engine_conflicts(tomllib.loads(text)))
    trees = {}
    packed = _packed_files(root, report)
    for relative in packed:
        is_python = relative.endswith(".py")
        with (root / relative).open("rb") as handle:  # each file is read once
            data = handle.read() if is_python else handle.read(_SECRET_SCAN_BYTES)
        secret = inspection.find_private_key(relative, data[:_SECRET_SCAN_BYTES])
        if secret:
            report.errors.append(Problem(relative, secret.message))
        if not is_python:
            continue
        source = data.decode("utf-8", errors="replace")
        tree, problem = inspection.parse_source(relative, source)
        if problem:
            report.errors.append(Problem(problem.file, f"line {problem.line}: {problem.message}"))
        elif tree is not None:
            trees[relative] = tree
            report.warnings.extend(inspection.scan_source(relative, tree))
            report.api_uses.extend(_api_usage.find_api_uses(relative, tree))
            report.event_handlers.extend(_api_usage.find_event_handlers(relative, tree))
    report.errors.extend(_entry_problems(root, manifest, trees, report.warnings))
    report.errors.extend(_lock_problems(root, manifest))
    report.members = list(packed)
    report.errors.extend(_content_problems(root, manifest, packed))
    if packed:  # else what the archive would hold is unknown, and already an error
        report.errors.extend(_view_problems(root, manifest, set(packed)))
    return report


_SECRET_SCAN_BYTES = 64 * 1024


def _content_problems(root: Path, manifest: Manifest, packed: list[str]) -> list[Problem]:
    """The icon, screenshots, README and changelog, checked as the registry checks them at
    publish: a file it would refuse is an error here, before packing."""
    wanted = _content_rules.content_paths(
        manifest.readme, manifest.changelog, manifest.icon, manifest.screenshots, set(packed)
    )
    on_disk = set(packed)

    def read(relative: str) -> bytes | None:
        if relative not in on_disk:
            return None  # missing, or left out by .plugportignore: not in the archive
        with (root / relative).open("rb") as handle:
            return handle.read(_content_rules.MAX_SCREENSHOT_BYTES + 1)

    return _content_rules.check_content(wanted, read)[1]


def _packed_files(root: Path, report: ValidationReport) -> list[str]:
    try:
        return archive.iter_source_files(root)
    except ArchiveError as exc:
        report.errors.append(Problem(getattr(exc, "member", ""), str(exc)))
        return []


def _entry_problems(
    root: Path,
    manifest: Manifest,
    trees: dict[str, ast.Module],
    warnings: list[inspection.Finding],
) -> list[Problem]:
    module, _, class_name = manifest.entry.partition(":")
    candidates = inspection.module_candidates(module)
    found = next((c for c in candidates if (root / c).is_file()), None)
    if found is None:
        return [
            Problem("entry", f"module {module!r} not found: expected {' or '.join(candidates)}")
        ]
    if found not in trees:
        return []  # the syntax error is already reported
    info = inspection.find_class(trees[found], class_name)
    if info is None:
        return [Problem("entry", f"{found} has no top-level class {class_name!r}")]
    if not any(b.rsplit(".", 1)[-1] == "Plugin" for b in info.bases):
        warnings.append(
            inspection.Finding(
                found,
                info.line,
                "entry-base",
                "low",
                f"class {class_name} does not derive from plugport.sdk.Plugin directly",
            )
        )
    problems = []
    for hook, priority in manifest.contributes.hooks.items():
        if hook not in info.hooks:
            problems.append(
                Problem(
                    f"contributes.hooks.{hook}",
                    f"{class_name} has no method decorated with @hook({hook!r})",
                )
            )
        coded = info.hook_priorities.get(hook)
        if coded is not None and coded != priority:
            problems.append(
                Problem(
                    f"contributes.hooks.{hook}",
                    f"priority {priority} here, but @hook({hook!r}, priority={coded}) in "
                    f"{found}; the host orders by the manifest, so make them agree",
                    priority,
                )
            )
    for index, command in enumerate(manifest.contributes.commands):
        if command.id not in info.commands:
            problems.append(
                Problem(
                    f"contributes.commands[{index}]",
                    f"{class_name} has no method decorated with @command({command.id!r})",
                )
            )
    problems += _webhook_problems(found, manifest, info)
    problems += _task_problems(found, manifest, info)
    problems += _ui_problems(found, manifest, info)
    for hook, line in info.hooks.items():
        if hook not in manifest.contributes.hooks:
            warnings.append(
                inspection.Finding(
                    found,
                    line,
                    "undeclared-hook",
                    "low",
                    f"@hook({hook!r}) is not in contributes.hooks, so the host never calls it",
                )
            )
    return problems


def _webhook_problems(found: str, manifest: Manifest, info: inspection.ClassInfo) -> list[Problem]:
    """A ``@webhook`` handler for an endpoint the manifest does not declare never runs."""
    declared = ", ".join(manifest.webhooks) or "none"
    return [
        Problem(
            "webhooks",
            f"@webhook({endpoint!r}) in {found} line {line} has no [webhooks.{endpoint}] table "
            f"(declared: {declared}); declare its verifier and secret there",
            endpoint,
        )
        for endpoint, line in info.webhooks.items()
        if endpoint not in manifest.webhooks
    ]


def _task_problems(found: str, manifest: Manifest, info: inspection.ClassInfo) -> list[Problem]:
    """Both halves of a task type must be there: the host queues only the types the manifest
    declares (with their schemas) and hands each to the handler ``@task`` marks, so a table
    without a handler fills the queue with tasks that die as ``unknown_type``, and a handler
    without a table is never called."""
    problems = [
        Problem(
            f"tasks.{task_type}",
            f"{info.name} has no method decorated with @task({task_type!r}), so every "
            f"{task_type} task would fail; add the handler or remove [tasks.{task_type}]",
            task_type,
        )
        for task_type in manifest.tasks
        if task_type not in info.tasks
    ]
    declared = ", ".join(manifest.tasks) or "none"
    problems += [
        Problem(
            "tasks",
            f"@task({task_type!r}) in {found} line {line} has no [tasks.{task_type}] table "
            f"(declared: {declared}); declare the type there, with its payload and result "
            "schemas, or the host never queues it",
            task_type,
        )
        for task_type, line in info.tasks.items()
        if task_type not in manifest.tasks
    ]
    return problems


_UI_DECORATOR_OF = {
    "widgets": ("widget", "widget"),
    "pages": ("page", "page"),
    "menus": ("menu_item", "menu item"),
    "fields": ("field", "field type"),
    "views": ("view", "custom view"),
}
"""``contributes`` list -> (the decorator of its handlers, what one entry is called)."""


def _ui_problems(found: str, manifest: Manifest, info: inspection.ClassInfo) -> list[Problem]:
    """Both halves of a UI surface must be there, as for task types: the host pulls a
    widget's, page's, menu item's, field type's or view's answers from the handler whose
    decorator names its id, so a contribution without one shows an error where its tree
    should be, and a handler without a contribution is never called. The decorator must be
    the surface's own (``@widget`` for a widget), so the code says what it answers."""
    problems = []
    contributed: dict[str, tuple[str, str]] = {}  # id -> (list, decorator)
    for contribution, (decorator, noun) in _UI_DECORATOR_OF.items():
        for index, item in enumerate(getattr(manifest.contributes, contribution)):
            contributed[item.id] = (contribution, decorator)
            handler = info.ui.get(item.id)
            if handler is not None and handler[0] == decorator:
                continue
            fix = f"add the handler, or remove the {noun}"
            if handler is not None:
                fix = (
                    f"the method in {found} line {handler[1]} is decorated with "
                    f"@{handler[0]}({item.id!r}); a {noun}'s handler is @{decorator}"
                )
            problems.append(
                Problem(
                    f"contributes.{contribution}[{index}]",
                    f"{info.name} has no method decorated with @{decorator}({item.id!r}), so "
                    f"the host has nothing to show for the {noun} {item.id!r}; {fix}",
                    item.id,
                )
            )
    for surface_id, (decorator, line) in info.ui.items():
        declared_as = contributed.get(surface_id)
        if declared_as is not None:
            continue  # a decorator of the wrong kind is reported with its contribution
        contribution = next(c for c, (d, _) in _UI_DECORATOR_OF.items() if d == decorator)
        noun = _UI_DECORATOR_OF[contribution][1]
        declared = ", ".join(i.id for i in getattr(manifest.contributes, contribution)) or "none"
        problems.append(
            Problem(
                f"contributes.{contribution}",
                f"@{decorator}({surface_id!r}) in {found} line {line} names no {noun} in "
                f"contributes.{contribution} (declared: {declared}); declare it there, or the "
                "host never calls it",
                surface_id,
            )
        )
    return problems


def _view_problems(root: Path, manifest: Manifest, packed: set[str]) -> list[Problem]:
    """A custom view's HTML file, and its assets folder when it names one, must be in the
    archive: the host serves the view only from there."""
    problems = []
    for index, view in enumerate(manifest.contributes.views):
        where = f"contributes.views[{index}]"
        if view.file not in packed:
            why = "is not a file in the plugin"
            if (root / view.file).is_file():
                why = "is left out of the archive (.plugportignore or a hidden folder)"
            problems.append(Problem(f"{where}.file", f"{view.file!r} {why}", view.file))
        folder = view.assets.rstrip("/")
        if folder and not any(m.startswith(f"{folder}/") for m in packed):
            problems.append(
                Problem(
                    f"{where}.assets",
                    f"{view.assets!r} is not a folder of the plugin with files in it",
                    view.assets,
                )
            )
    return problems


def _lock_problems(root: Path, manifest: Manifest) -> list[Problem]:
    """The lock must answer the manifest's ``[python]`` table, and ``wheels/`` holds only the
    wheels it names (an unpacked archive has them; a source tree gets them at pack time)."""
    try:
        lock = load_lock(root)
    except DependencyError as exc:
        return [Problem(LOCK_FILENAME, str(exc))]
    if lock is None:
        if manifest.python.dependencies:
            return [
                Problem(
                    LOCK_FILENAME,
                    "missing: [python] dependencies are installed only from a lock; run "
                    "`plugport lock`",
                )
            ]
        return []
    problems = [
        Problem(LOCK_FILENAME, f"out of date: {reason}; run `plugport lock`")
        for reason in lock.stale_reasons(manifest)
    ]
    locked = {wheel.filename for wheel in lock.wheels()}
    wheels_dir = root / WHEELS_DIR
    if wheels_dir.is_dir():
        for path in sorted(wheels_dir.rglob("*")):
            if path.is_file() and path.relative_to(wheels_dir).as_posix() not in locked:
                problems.append(
                    Problem(
                        f"{WHEELS_DIR}/{path.relative_to(wheels_dir).as_posix()}",
                        f"{WHEELS_DIR}/ holds only the wheels {LOCK_FILENAME} names, and it "
                        "does not name this file",
                    )
                )
    return problems


def read_archive_manifest(path: Path, *, shown_as: str | None = None) -> Manifest:
    """The manifest inside an archive, read without unpacking anything; errors name the archive
    ``shown_as`` (default: its path). A ``.whl`` is a plugin wheel: its manifest is the one its
    ``plugport.plugins`` entry point leads to (:mod:`plugport.plugin_wheel`)."""
    where = shown_as or str(path)
    if path.suffix == plugin_wheel.WHEEL_SUFFIX:
        return plugin_wheel.read_plugin_wheel(path, shown_as=where).manifest
    raw = archive.read_member(path, MANIFEST_FILENAME, shown_as=where)
    return parse_manifest_bytes(raw, source=f"{where}!{MANIFEST_FILENAME}")


def validate_path(path: Path) -> ValidationReport:
    """Validate a plugin directory, or an archive (or plugin wheel) by unpacking it safely into
    a scratch dir."""
    if path.is_dir():
        return validate_tree(path)
    with tempfile.TemporaryDirectory(prefix="plugport-validate-") as scratch:
        target = Path(scratch) / "plugin"
        try:
            if path.suffix == plugin_wheel.WHEEL_SUFFIX:
                plugin_wheel.unpack_plugin_wheel(path, target)  # laid out as a host runs it
            else:
                archive.safe_unpack(path, target)
        except PlugportError as exc:
            return ValidationReport(path=str(path), errors=[Problem("", str(exc))])
        report = validate_tree(target)
    report.path = str(path)
    return report


@dataclass(frozen=True)
class PackedPlugin:
    manifest: Manifest
    result: archive.PackResult
    warnings: tuple[inspection.Finding, ...]


def pack_plugin(
    source: Path, out: Path | None = None, *, limits: archive.ArchiveLimits | None = None
) -> PackedPlugin:
    """Validate ``source`` and pack it to ``NAME-VERSION.plugport``.

    ``out`` names a file when it ends in ``.plugport`` and is not an existing directory (its
    directory must exist); anything else names a directory, created with its parents if it is
    missing (``-o dist/``), and the archive goes inside it. The default is the current
    directory. An invalid plugin is never packed, and a failed pack leaves no directory behind.
    """
    report = validate_tree(source)
    if report.manifest is None or not report.valid:
        raise PluginValidationError(report.errors, source=str(source))
    manifest = report.manifest
    limits = limits or archive.ArchiveLimits()
    extra = _packed_extras(source)
    if out is None:
        out = Path.cwd()
    if out.suffix == archive.ARCHIVE_SUFFIX and not out.is_dir():
        if not out.parent.is_dir():
            raise InvalidInputError(f"output directory {out.parent} does not exist")
        result = archive.pack_tree(source, out, limits=limits, extra=extra)
    else:
        with created_directory(out, what="--output") as directory:
            result = archive.pack_tree(
                source, directory / manifest.archive_filename, limits=limits, extra=extra
            )
    return PackedPlugin(manifest, result, tuple(report.warnings))


def _packed_extras(source: Path) -> dict[str, Path | bytes]:
    """What the archive holds beyond the tree: the locked wheels, from the wheel cache and
    checked against their hashes; and the manifest with ``engines.plugport`` raised when it
    uses a table that older Plugports do not read."""
    extra: dict[str, Path | bytes] = {}
    lock = load_lock(source)
    for wheel in lock.wheels() if lock else ():
        extra[wheel.member] = cached_wheel(wheel)
    text = (source / MANIFEST_FILENAME).read_text(encoding="utf-8")
    raised = raise_engine(text, tomllib.loads(text))
    if raised is not None:
        extra[MANIFEST_FILENAME] = raised.encode("utf-8")
    return extra


def archive_facts(path: Path, claimed: signing.ArchiveFacts | None = None) -> signing.ArchiveFacts:
    """Name, version, sha256 and length of an archive file.

    When the manifest cannot be read but a signature ``claimed`` facts, its name and version
    stand in: the sha256 comparison then reports the altered archive precisely.
    """
    digest, length = archive.sha256_file(path)
    try:
        manifest = read_archive_manifest(path)
    except PlugportError:
        if claimed is None or claimed.sha256 == digest:
            raise
        return signing.ArchiveFacts(claimed.name, claimed.version, digest, length)
    return signing.ArchiveFacts(manifest.name, manifest.version, digest, length)


def default_signature_path(path: Path) -> Path:
    return path.with_name(path.name + signing.SIGNATURE_SUFFIX)


def sign_archive(
    path: Path, key_file: Path, *, passphrase: bytes | None = None, out: Path | None = None
) -> tuple[Path, signing.ArchiveFacts, str]:
    """Write ``ARCHIVE.sig``; returns its path, what it binds and the signing key id."""
    key = signing.load_private_key(key_file, passphrase)
    facts = archive_facts(path)
    document = signing.sign(key, facts)
    target = out or default_signature_path(path)
    write_atomic(target, document)
    return target, facts, signing.key_id(key.public_key())


def verify_archive(
    path: Path, public_key_file: Path, signature_file: Path | None = None
) -> signing.VerifiedSignature:
    """Check an archive against its ``.sig`` and a publisher's public key, fail-closed."""
    public_key = signing.load_public_key(public_key_file)
    sig_path = signature_file or default_signature_path(path)
    try:
        document = sig_path.read_bytes()
    except OSError as exc:
        raise SignatureError(
            "signature", f"cannot read signature {sig_path}: {exc.strerror}"
        ) from None
    facts = archive_facts(path, claimed=signing.signed_facts(document))
    return signing.verify(document, public_key, facts)
