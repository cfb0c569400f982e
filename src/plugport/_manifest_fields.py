"""The manifest's scalar rules: one validator per kind of value (plugin names, versions, host and
topic patterns, sizes, activation events, settings schemas), each raising ``ValueError`` with
the value found and what is allowed, plus the pure pattern matchers the broker uses."""

from __future__ import annotations

import ipaddress
import re
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from pydantic import AfterValidator

from plugport.versions import normalize_specifier, parse_version

__all__ = [
    "ACTIVATION_KINDS",
    "HOST_DISTRIBUTIONS",
    "SIZE_JSON_PATTERN",
    "ActivationEvent",
    "ArchivePath",
    "Category",
    "CommandId",
    "CredentialTarget",
    "DataSchema",
    "HostAppName",
    "HostPattern",
    "IconPath",
    "Identifier",
    "JsonSchema",
    "PlatformTag",
    "PluginName",
    "PngPath",
    "PythonRequirement",
    "PythonRequirements",
    "RequiresPython",
    "SettingsSchema",
    "SpecifierText",
    "Tag",
    "TaskPattern",
    "TaskType",
    "TopicPattern",
    "Unique",
    "Url",
    "VersionText",
    "WebhookTarget",
    "byte_size",
    "check_entry",
    "check_plugin_name",
    "known_runtime",
    "match_credential_target",
    "match_host",
    "match_task_type",
    "match_topic",
    "pattern_covers",
    "supported_runtime",
    "task_pattern_covers",
]

ACTIVATION_KINDS = ("on_command:<id>", "on_event:<topic>", "on_hook:<name>", "on_startup")

_NAME_PART = r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])"
_PLUGIN_NAME_RE = re.compile(rf"^{_NAME_PART}\.{_NAME_PART}$")
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENTRY_RE = re.compile(
    r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
)
_COMMAND_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*(?:\.[a-z0-9][a-z0-9_-]*)*$")
_TAG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
_HOST_APP_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_TOPIC_SEGMENT_RE = re.compile(r"^[a-z0-9_-]+$")
_DNS_LABEL_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_SIZE_RE = re.compile(r"^\s*(\d+)\s*([kmg]i?b|b)?\s*$", re.IGNORECASE)
SIZE_JSON_PATTERN = r"^\s*\d+\s*([kKmMgG][iI]?[bB]|[bB])?\s*$"  # JSON Schema has no flags
_SIZE_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
}


def check_plugin_name(value: str) -> str:
    """Return ``value`` if it is a valid plugin name, else raise ``ValueError`` saying why."""
    if not _PLUGIN_NAME_RE.match(value):
        raise ValueError(
            f"{value!r} is not a plugin name; write 'namespace.plugin': two parts of 2-64 "
            "lowercase letters, digits or '-' (not at either end), joined by one '.'"
        )
    return value


def _version(value: str) -> str:
    return str(parse_version(value))


def _specifier(value: str) -> str:
    return normalize_specifier(value)


def _identifier(value: str) -> str:
    if not _IDENT_RE.match(value):
        raise ValueError(f"{value!r} is not a name; use letters, digits and '_', not first a digit")
    return value


def _command_id(value: str) -> str:
    if not _COMMAND_ID_RE.match(value):
        raise ValueError(
            f"{value!r} is not a command or widget id; use lowercase dot-separated words "
            "of letters, digits, '_' and '-', e.g. 'hello.greet'"
        )
    return value


def check_entry(value: str) -> str:
    if not _ENTRY_RE.match(value):
        raise ValueError(f"{value!r} is not an entry point; write 'package.module:ClassName'")
    return value


def _tag(value: str) -> str:
    if not _TAG_RE.match(value):
        raise ValueError(f"{value!r} is not a tag; use 1-32 lowercase letters, digits or '-'")
    return value


def _url(value: str) -> str:
    if not re.match(r"^https?://[^\s/?#]+\.[^\s/?#]+(?:[/?#]\S*)?$", value):
        raise ValueError(f"{value!r} is not a web address; write 'https://example.com/...'")
    return value


def _archive_path(value: str) -> str:
    path = PurePosixPath(value)
    if not value or "\\" in value or path.is_absolute() or ".." in path.parts:
        raise ValueError(
            f"{value!r} is not a path inside the plugin; write a relative path such as "
            "'assets/icon.png' with '/' separators and no '..'"
        )
    return str(path)


def _suffixed(value: str, suffixes: tuple[str, ...], what: str) -> str:
    path = _archive_path(value)
    if not path.lower().endswith(suffixes):
        raise ValueError(f"{value!r} is not {what}; name a file ending in {' or '.join(suffixes)}")
    return path


def _icon_path(value: str) -> str:
    return _suffixed(value, (".png", ".svg"), "a PNG or SVG image")


def _png_path(value: str) -> str:
    return _suffixed(value, (".png",), "a PNG image")


def _python_requirement(value: str) -> str:
    """A PEP 508 requirement on a package from an index, normalised (``Markdown >= 3.5`` ->
    ``markdown>=3.5``); a direct URL cannot be locked to a hash from an index, and
    ``plugport`` itself is the host's, never a plugin's."""
    # Imported here: building the PEP 508 parser costs ~10 ms, and most manifests have no
    # [python] table.
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        requirement = Requirement(value)
    except InvalidRequirement as exc:
        reason = str(exc).splitlines()[0]
        raise ValueError(
            f"{value!r} is not a PEP 508 requirement ({reason}); write e.g. 'markdown>=3.5' "
            "or 'jinja2~=3.1'"
        ) from None
    if requirement.url:
        raise ValueError(
            f"{value!r} names a URL; plugport lock takes packages from an index, so write "
            f"'{requirement.name}' with a version range and point pip at the index instead"
        )
    requirement.name = canonicalize_name(requirement.name)
    if requirement.name in HOST_DISTRIBUTIONS:
        raise ValueError(
            f"{value!r}: {requirement.name!r} is the host's own package; plugin code imports "
            "plugport.sdk from the host, so remove it from [python] dependencies"
        )
    return str(requirement)


HOST_DISTRIBUTIONS = frozenset({"plugport"})


def _requires_python(value: str) -> str:
    try:
        return str(SpecifierSet(value))
    except InvalidSpecifier:
        raise ValueError(f"{value!r} is not a Python version range; write e.g. '>=3.11'") from None


_PLATFORM_RE = re.compile(r"^[a-z0-9]+(?:_[a-z0-9]+)*$")


def _platform_tag(value: str) -> str:
    if value == "any" or not _PLATFORM_RE.match(value):
        raise ValueError(
            f"{value!r} is not a wheel platform tag; write one such as 'manylinux_2_28_x86_64', "
            "'musllinux_1_2_aarch64', 'macosx_11_0_arm64' or 'win_amd64' (pure-Python wheels "
            "need no entry)"
        )
    return value


def _unique_requirements(values: list[str]) -> list[str]:
    from packaging.requirements import Requirement

    names = [Requirement(v).name for v in values]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(
            f"more than one requirement on {', '.join(map(repr, repeated))}; give each package "
            "one requirement and join ranges with ',' (e.g. 'markdown>=3.5,<4')"
        )
    return values


def byte_size(value: object) -> object:
    """Accept a byte count or a string such as ``'10 MiB'`` so quotas read naturally."""
    if isinstance(value, str):
        match = _SIZE_RE.match(value)
        if not match:
            raise ValueError(
                f"{value!r} is not a size; write a number of bytes or e.g. '512 KiB', '10 MB'"
            )
        number, unit = match.groups()
        return int(number) * _SIZE_UNITS[(unit or "b").lower()]
    return value


def _host_pattern(value: str) -> str:
    """A network grant is a host name pattern, never an address, so DNS stays the host's call."""
    text = value.strip().lower()
    allowed = (
        "write a host name such as 'api.slack.com' or '*.github.com' (ports 80 and 443), "
        "or 'host:port' for another port"
    )
    if not text or "://" in text or any(c in text for c in "/?#@ "):
        raise ValueError(f"{value!r} is not a host pattern; {allowed}, without scheme or path")
    if text.startswith("[") or _is_ip(text):
        raise ValueError(f"{value!r} is an IP address; {allowed}")
    host, colon, port = text.partition(":")
    if colon:
        if not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
            raise ValueError(f"{value!r} has an invalid port {port!r}; ports are 1-65535")
        text = f"{host}:{int(port)}"
    labels = host.split(".")
    if labels[0] == "*":
        labels = labels[1:]
        if len(labels) < 2:
            raise ValueError(
                f"{value!r} is too broad; a wildcard covers the subdomains of a named domain, "
                "e.g. '*.github.com'"
            )
    if len(labels) < 2 or any(not _DNS_LABEL_RE.match(label) for label in labels):
        raise ValueError(
            f"{value!r} is not a host pattern; {allowed} ('*' only as a whole first label)"
        )
    if labels[-1].isdigit():
        raise ValueError(f"{value!r} looks like an IP address; {allowed}")
    return text


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _topic_pattern(value: str) -> str:
    segments = value.split(".")
    ok = all(s == "*" or _TOPIC_SEGMENT_RE.match(s) for s in segments[:-1]) and (
        segments[-1] in ("*", "**") or bool(_TOPIC_SEGMENT_RE.match(segments[-1]))
    )
    if not value or not ok:
        raise ValueError(
            f"{value!r} is not a topic pattern; write dot-separated lowercase words such as "
            "'tasks.created', with '*' for one word and a final '**' for any rest"
        )
    return value


def _activation(value: str) -> str:
    kind, sep, arg = value.partition(":")
    try:
        if value == "on_startup":
            return value
        if sep and kind == "on_hook":
            _identifier(arg)
            return value
        if sep and kind == "on_command":
            _command_id(arg)
            return value
        if sep and kind == "on_event":
            _topic_pattern(arg)
            return value
    except ValueError as exc:
        raise ValueError(f"{value!r}: {exc}") from None
    raise ValueError(
        f"{value!r} is not an activation event; use one of {', '.join(ACTIVATION_KINDS)}"
    )


def _host_app(value: str) -> str:
    if not _HOST_APP_RE.match(value):
        raise ValueError(
            f"{value!r} is not an application name; use lowercase letters, digits, '_', '-', '.'"
        )
    return value


def _unique(values: list[Any]) -> list[Any]:
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"each value may appear once; repeated: {', '.join(repeated)}")
    return values


def known_runtime(value: object) -> object:
    if value not in ("python", "wasm"):
        raise ValueError(f"unknown runtime {value!r}; this Plugport runs 'python'")
    return value


def supported_runtime(value: str) -> str:
    if value == "wasm":
        raise ValueError("'wasm' is reserved for a later release; this Plugport runs 'python'")
    return value


PluginName = Annotated[str, AfterValidator(check_plugin_name)]
HostAppName = Annotated[str, AfterValidator(_host_app)]
Unique = AfterValidator(_unique)
VersionText = Annotated[str, AfterValidator(_version)]
SpecifierText = Annotated[str, AfterValidator(_specifier)]
Identifier = Annotated[str, AfterValidator(_identifier)]
CommandId = Annotated[str, AfterValidator(_command_id)]
HostPattern = Annotated[str, AfterValidator(_host_pattern)]
TopicPattern = Annotated[str, AfterValidator(_topic_pattern)]
Tag = Annotated[str, AfterValidator(_tag)]
Url = Annotated[str, AfterValidator(_url)]
ArchivePath = Annotated[str, AfterValidator(_archive_path)]
IconPath = Annotated[str, AfterValidator(_icon_path)]
PngPath = Annotated[str, AfterValidator(_png_path)]
PythonRequirement = Annotated[str, AfterValidator(_python_requirement)]
PythonRequirements = Annotated[list[PythonRequirement], AfterValidator(_unique_requirements)]
RequiresPython = Annotated[str, AfterValidator(_requires_python)]
PlatformTag = Annotated[str, AfterValidator(_platform_tag)]
ActivationEvent = Annotated[str, AfterValidator(_activation)]
Category = Literal[
    "automation", "data", "devtools", "integration", "other", "security", "task-processor", "ui"
]
JsonSchema = dict[str, Any]


def _check_json_schema(schema: JsonSchema, *, require_object: bool) -> JsonSchema:
    if not schema:
        return schema
    if require_object and schema.get("type") != "object":
        raise ValueError("a settings schema must be a JSON Schema with type = 'object'")
    # Imported here: jsonschema costs ~0.1 s to import, and most manifests carry no schema,
    # so every CLI command would pay it for nothing.
    import jsonschema
    from referencing.exceptions import Unresolvable

    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.path)
        raise ValueError(f"not a valid JSON Schema at '{where or '/'}': {exc.message}") from None
    for key, sub in (schema.get("properties") or {}).items():
        if isinstance(sub, dict) and "default" in sub:
            # Keep the root's definitions beside the property so local $refs still resolve.
            scoped = {k: schema[k] for k in ("$defs", "definitions") if k in schema} | sub
            try:
                errors = list(jsonschema.Draft202012Validator(scoped).iter_errors(sub["default"]))
            except Unresolvable as exc:
                raise ValueError(f"property {key!r}: unresolvable $ref ({exc})") from None
            if errors:
                raise ValueError(
                    f"the default of property {key!r} ({sub['default']!r}) does not match its "
                    f"own schema: {errors[0].message}"
                )
    return schema


def _settings_schema(schema: JsonSchema) -> JsonSchema:
    return _check_json_schema(schema, require_object=True)


def _data_schema(schema: JsonSchema) -> JsonSchema:
    return _check_json_schema(schema, require_object=False)


_TASK_TYPE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
_TASK_PATTERN_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}\*?$|^\*$")


def _task_type(value: str) -> str:
    if not _TASK_TYPE_RE.match(value):
        raise ValueError(
            f"{value!r} is not a task type; use a letter, then letters, digits, '_', '.' or "
            "'-' (at most 64), e.g. 'GITHUB_PR_REVIEW'"
        )
    return value


def _task_pattern(value: str) -> str:
    if not _TASK_PATTERN_RE.match(value):
        raise ValueError(
            f"{value!r} is not a task type pattern; write a task type, optionally ending in "
            "'*' for every type that starts so ('GITHUB_*')"
        )
    return value


def match_task_type(pattern: str, task_type: str) -> bool:
    """Whether a ``tasks.submit`` grant admits ``task_type`` (a final ``*``: any rest)."""
    if pattern.endswith("*"):
        return task_type.startswith(pattern[:-1])
    return pattern == task_type


def task_pattern_covers(granted: str, wanted: str) -> bool:
    """Whether every type ``wanted`` admits is admitted by ``granted``."""
    if wanted.endswith("*"):
        return granted.endswith("*") and wanted.startswith(granted[:-1])
    return match_task_type(granted, wanted)


DataSchema = Annotated[JsonSchema, AfterValidator(_data_schema)]
TaskType = Annotated[str, AfterValidator(_task_type)]
TaskPattern = Annotated[str, AfterValidator(_task_pattern)]


SettingsSchema = Annotated[JsonSchema, AfterValidator(_settings_schema)]


def match_host(pattern: str, host: str, port: int) -> bool:
    """Whether a network grant ``pattern`` admits ``host:port``.

    ``*.example.com`` covers subdomains only, not ``example.com`` itself, as in TLS wildcards.
    """
    name, _, pattern_port = pattern.partition(":")
    if pattern_port:
        if port != int(pattern_port):
            return False
    elif port not in (80, 443):
        return False
    host = host.lower().rstrip(".")
    if name.startswith("*."):
        return host.endswith(name[1:]) and len(host) > len(name) - 1
    return host == name


def _credential_target(value: str) -> str:
    """Where a credential may be sent: a host pattern, optionally followed by a path prefix
    (``api.example.com/rest/``): the credential goes only to URLs under it."""
    text = value.strip()
    host, slash, path = text.partition("/")
    checked = _host_pattern(host)
    if not slash:
        return checked
    prefix = "/" + path
    if any(c in prefix for c in "?#\\ ") or "/../" in prefix + "/" or "//" in prefix:
        raise ValueError(
            f"{value!r} has an invalid path prefix {prefix!r}; write e.g. "
            "'api.example.com/rest/api/' (no query, '..' or empty segments)"
        )
    return checked + prefix


def match_credential_target(target: str, host: str, port: int, path: str) -> bool:
    """Whether a credential target (``host-pattern[/path-prefix]``) admits a URL. A prefix
    ending in ``/`` admits what is under it; one that does not admits itself and what is
    under it as a path segment (``/api`` admits ``/api`` and ``/api/x``, not ``/apix``)."""
    pattern, slash, prefix = target.partition("/")
    if not match_host(pattern, host, port):
        return False
    if not slash:
        return True
    prefix = "/" + prefix
    if prefix.endswith("/"):
        return path.startswith(prefix) or path + "/" == prefix
    return path == prefix or path.startswith(prefix + "/")


def credential_target_covers(granted: str, wanted: str) -> bool:
    """Whether every URL ``wanted`` admits is admitted by ``granted`` (conservative: the same
    host pattern, and ``wanted``'s path prefix at or under ``granted``'s)."""
    host, slash, prefix = granted.partition("/")
    wanted_host, wanted_slash, wanted_prefix = wanted.partition("/")
    if host != wanted_host:
        return False
    if not slash:
        return True
    if not wanted_slash:
        return False
    return _path_under("/" + prefix, "/" + wanted_prefix)


def _path_under(prefix: str, path: str) -> bool:
    if prefix.endswith("/"):
        return path.startswith(prefix)
    return path == prefix or path.startswith(prefix + "/")


def match_topic(pattern: str, topic: str) -> bool:
    """Whether an event topic matches ``pattern``: ``*`` one word, a final ``**`` any rest."""
    want, have = pattern.split("."), topic.split(".")
    if want[-1] == "**":
        head = want[:-1]
        return len(have) > len(head) and all(
            w in ("*", h) for w, h in zip(head, have, strict=False)
        )
    return len(want) == len(have) and all(w in ("*", h) for w, h in zip(want, have, strict=True))


def pattern_covers(granted: str, wanted: str) -> bool:
    """Whether every topic ``wanted`` can match is matched by ``granted`` (conservative)."""
    if "*" not in wanted:
        return match_topic(granted, wanted)
    return granted in (wanted, "**") or (
        granted.endswith(".**") and wanted.startswith(granted[:-2])
    )


CredentialTarget = Annotated[str, AfterValidator(_credential_target)]


def _webhook_target(value: str) -> str:
    """Where a plugin may deliver webhooks: a credential target (host pattern, optional path
    prefix), optionally written as an ``https://`` URL; deliveries go over https only."""
    text = value.strip()
    scheme, sep, rest = text.partition("://")
    if sep:
        if scheme.lower() != "https":
            raise ValueError(
                f"{value!r}: webhooks are delivered over https only; write "
                "'https://hooks.example.com/path' or 'hooks.example.com/path'"
            )
        text = rest
    return _credential_target(text)


WebhookTarget = Annotated[str, AfterValidator(_webhook_target)]
"""A ``webhooks.deliver`` pattern, stored without its scheme: ``hooks.example.com/in/``."""
