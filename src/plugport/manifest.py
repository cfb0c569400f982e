"""The plugin manifest, ``plugport.toml``: the one reviewed file that says who a plugin is, what
it may touch, how much it may use and when it runs.

Validation is strict on purpose: an unknown key is an error (a typo in ``permissions`` must not
silently grant or drop anything), and every problem names the field path, the value found and
what is allowed. Parsing and validation take text or data and return data; nothing here does
I/O except :func:`load_manifest`, which only reads the file.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import tomllib
import types
import typing
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal, Union

import jsonschema
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError
from referencing.exceptions import Unresolvable

from plugport.errors import ManifestError, Problem
from plugport.versions import ANY, is_compatible, normalize_specifier, parse_version

__all__ = [
    "ACTIVATION_KINDS",
    "CATEGORIES",
    "LIMIT_BOUNDS",
    "MANIFEST_FILENAME",
    "MAX_MANIFEST_BYTES",
    "PERMISSION_NAMES",
    "UI_PERMISSIONS",
    "Command",
    "Contributes",
    "EventPermissions",
    "Limits",
    "Manifest",
    "Permissions",
    "Widget",
    "check_plugin_name",
    "describe_permissions",
    "load_manifest",
    "manifest_json_schema",
    "match_host",
    "match_topic",
    "parse_manifest",
    "validate_manifest_data",
]

MANIFEST_FILENAME = "plugport.toml"
MAX_MANIFEST_BYTES = 256 * 1024
"""A manifest is a page of settings; anything larger is a mistake or an attack."""

CATEGORIES = (
    "automation",
    "data",
    "devtools",
    "integration",
    "other",
    "security",
    "task-processor",
    "ui",
)
PERMISSION_NAMES = ("config", "events", "network", "storage", "ui")
UI_PERMISSIONS = ("commands", "messages", "widgets")
ACTIVATION_KINDS = ("on_command:<id>", "on_event:<topic>", "on_hook:<name>", "on_startup")
MAX_STORAGE_BYTES = 1024**3
MAX_TAGS = 10

# --- scalar rules -------------------------------------------------------------------------------

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
_SIZE_JSON_PATTERN = r"^\s*\d+\s*([kKmMgG][iI]?[bB]|[bB])?\s*$"  # JSON Schema has no flags
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


def _entry(value: str) -> str:
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


def _byte_size(value: object) -> object:
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


def _known_runtime(value: object) -> object:
    if value not in ("python", "wasm"):
        raise ValueError(f"unknown runtime {value!r}; this Plugport runs 'python'")
    return value


def _runtime(value: str) -> str:
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


SettingsSchema = Annotated[JsonSchema, AfterValidator(_settings_schema)]


# --- models -------------------------------------------------------------------------------------


class _Strict(BaseModel):
    """Unknown keys are errors and models are immutable once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, str_strip_whitespace=True)


class EventPermissions(_Strict):
    """Topic patterns the plugin may publish to and subscribe to."""

    publish: list[TopicPattern] = Field(default_factory=list)
    subscribe: list[TopicPattern] = Field(default_factory=list)


class Permissions(_Strict):
    """The closed vocabulary of what a plugin may reach, each granted by the host on install."""

    network: Annotated[list[HostPattern], Unique] = Field(
        default_factory=list,
        description="Hosts the plugin may fetch from, e.g. 'api.slack.com', '*.github.com', "
        "'hooks.example.com:8443'. Without a port: 80 and 443.",
    )
    storage: Annotated[
        int,
        BeforeValidator(_byte_size),
        Field(ge=0, le=MAX_STORAGE_BYTES),
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "integer", "minimum": 0, "maximum": MAX_STORAGE_BYTES},
                    {"type": "string", "pattern": _SIZE_JSON_PATTERN},
                ]
            }
        ),
    ] = Field(
        default=0,
        description="Key-value storage quota in bytes (or '10 MiB'); 0 means no storage.",
    )
    events: EventPermissions = Field(default_factory=EventPermissions)
    ui: Annotated[list[Literal["messages", "commands", "widgets"]], Unique] = Field(
        default_factory=list, description="UI surfaces: messages, commands, widgets."
    )
    config: bool = Field(default=False, description="Read the plugin's own settings.")

    def is_empty(self) -> bool:
        return self == Permissions()


LIMIT_BOUNDS: dict[str, tuple[int, int, int]] = {
    # name: (default, minimum, maximum); a host may tighten the maximum, never loosen it.
    "memory_mb": (128, 16, 4096),
    "cpu_seconds": (30, 1, 3600),
    "timeout_ms": (5_000, 10, 600_000),
    "max_concurrency": (4, 1, 64),
}


def _limit(name: str, description: str) -> Any:
    default, low, high = LIMIT_BOUNDS[name]
    return Field(default=default, ge=low, le=high, description=description)


class Limits(_Strict):
    """Resources a plugin asks for; the effective limits are these clamped by the host's."""

    memory_mb: int = _limit("memory_mb", "Address-space limit of the worker process, MiB.")
    cpu_seconds: int = _limit("cpu_seconds", "CPU time the worker may use before it is stopped.")
    timeout_ms: int = _limit("timeout_ms", "Wall-clock limit for one call into the plugin.")
    max_concurrency: int = _limit("max_concurrency", "Calls the plugin serves at the same time.")

    def tightened(self, ceiling: Limits) -> Limits:
        """The limits that apply under a host whose own caps are ``ceiling``."""
        return Limits(
            **{name: min(getattr(self, name), getattr(ceiling, name)) for name in LIMIT_BOUNDS}
        )


class Command(_Strict):
    id: CommandId
    title: Annotated[str, Field(min_length=1, max_length=100)]
    description: Annotated[str, Field(max_length=500)] = ""


class Widget(_Strict):
    id: CommandId
    title: Annotated[str, Field(min_length=1, max_length=100)]
    config: SettingsSchema = Field(
        default_factory=dict, description="JSON Schema of the widget's settings."
    )


class Contributes(_Strict):
    """What the plugin adds to the host: hook implementations, commands, widgets."""

    hooks: dict[Identifier, Annotated[int, Field(ge=-1000, le=1000)]] = Field(
        default_factory=dict,
        description="Hook name -> priority; higher runs first, the host may override.",
    )
    commands: list[Command] = Field(default_factory=list)
    widgets: list[Widget] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> Contributes:
        for kind, items in (("commands", self.commands), ("widgets", self.widgets)):
            ids = [item.id for item in items]
            duplicates = sorted({i for i in ids if ids.count(i) > 1})
            if duplicates:
                raise ValueError(f"{kind} ids must be unique; repeated: {', '.join(duplicates)}")
        return self


class Manifest(_Strict):
    """A validated ``plugport.toml``."""

    name: PluginName = Field(description="'namespace.plugin', e.g. 'acme.hello'.")
    version: VersionText = Field(description="PEP 440 version, e.g. '1.2.0'.")
    display_name: Annotated[str, Field(max_length=80)] = ""
    description: Annotated[str, Field(max_length=1000)] = ""
    authors: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(default_factory=list)
    license: Annotated[str, Field(max_length=100)] = ""
    homepage: Url | None = None
    repository: Url | None = None
    categories: Annotated[list[Category], Unique] = Field(default_factory=list)
    tags: Annotated[list[Tag], Field(max_length=MAX_TAGS), Unique] = Field(default_factory=list)
    icon: ArchivePath | None = None
    runtime: Annotated[
        Literal["python", "wasm"], BeforeValidator(_known_runtime), AfterValidator(_runtime)
    ] = Field(default="python", description="'python' today; 'wasm' is reserved.")
    entry: Annotated[str, AfterValidator(_entry)] = Field(
        description="'package.module:ClassName' of the Plugin subclass."
    )
    activation: list[ActivationEvent] = Field(
        default_factory=list,
        description="When to start the worker; empty means on any contributed hook or command.",
    )
    engines: dict[HostAppName, SpecifierText] = Field(
        default_factory=dict,
        description="'plugport' and host application name -> PEP 440 range.",
    )
    dependencies: dict[PluginName, SpecifierText] = Field(default_factory=dict)
    permissions: Permissions = Field(default_factory=Permissions)
    limits: Limits = Field(default_factory=Limits)
    contributes: Contributes = Field(default_factory=Contributes)
    config: SettingsSchema = Field(
        default_factory=dict, description="JSON Schema of the plugin's settings, with defaults."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        problems = _cross_field_problems(self)
        if problems:
            # One error carrying every finding, so the caller can report each at its own path.
            raise PydanticCustomError(
                "manifest_consistency",
                "{summary}",
                {"summary": "; ".join(map(str, problems)), "problems": problems},
            )
        return self

    @property
    def archive_filename(self) -> str:
        return f"{self.name}-{self.version}.plugport"

    @property
    def namespace(self) -> str:
        return self.name.split(".", 1)[0]

    def activation_events(self) -> list[str]:
        """Explicit activation events, or those implied by what the plugin contributes."""
        if self.activation:
            return list(self.activation)
        implied = [f"on_hook:{h}" for h in self.contributes.hooks]
        return implied + [f"on_command:{c.id}" for c in self.contributes.commands]

    def supports(self, engine: str, version: str) -> bool:
        """Whether this plugin declares itself compatible with ``engine`` at ``version``;
        an engine it does not mention is not constrained."""
        return is_compatible(version, self.engines.get(engine, ANY))

    def config_defaults(self) -> dict[str, Any]:
        props = self.config.get("properties") or {}
        return {k: v["default"] for k, v in props.items() if isinstance(v, dict) and "default" in v}


def _cross_field_problems(manifest: Manifest) -> list[Problem]:
    problems: list[Problem] = []
    if manifest.name in manifest.dependencies:
        problems.append(
            Problem("dependencies", f"{manifest.name!r} cannot depend on itself", manifest.name)
        )
    hooks = manifest.contributes.hooks
    commands = {c.id for c in manifest.contributes.commands}
    subscribed = manifest.permissions.events.subscribe
    for index, event in enumerate(manifest.activation):
        path = f"activation[{index}]"
        kind, _, arg = event.partition(":")
        if kind == "on_hook" and arg not in hooks:
            problems.append(
                Problem(
                    path,
                    (
                        f"names hook {arg!r}, which contributes.hooks does not list "
                        f"(contributed: {', '.join(sorted(hooks)) or 'none'})"
                    ),
                    event,
                )
            )
        elif kind == "on_command" and arg not in commands:
            problems.append(
                Problem(
                    path,
                    (
                        f"names command {arg!r}, which contributes.commands does not list "
                        f"(contributed: {', '.join(sorted(commands)) or 'none'})"
                    ),
                    event,
                )
            )
        elif kind == "on_event" and not any(_pattern_covers(p, arg) for p in subscribed):
            problems.append(
                Problem(
                    path,
                    (
                        f"activates on topic {arg!r}, which permissions.events.subscribe "
                        f"does not cover (subscribed: {', '.join(subscribed) or 'none'})"
                    ),
                    event,
                )
            )
    return problems


# --- pure matchers used by the capability broker -------------------------------------------------


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


def match_topic(pattern: str, topic: str) -> bool:
    """Whether an event topic matches ``pattern``: ``*`` one word, a final ``**`` any rest."""
    want, have = pattern.split("."), topic.split(".")
    if want[-1] == "**":
        head = want[:-1]
        return len(have) > len(head) and all(
            w in ("*", h) for w, h in zip(head, have, strict=False)
        )
    return len(want) == len(have) and all(w in ("*", h) for w, h in zip(want, have, strict=True))


def _pattern_covers(granted: str, wanted: str) -> bool:
    """Whether every topic ``wanted`` can match is matched by ``granted`` (conservative)."""
    if "*" not in wanted:
        return match_topic(granted, wanted)
    return granted in (wanted, "**") or (
        granted.endswith(".**") and wanted.startswith(granted[:-2])
    )


def describe_permissions(permissions: Permissions) -> list[str]:
    """Plain-language lines for consent prompts and review screens."""
    lines = []
    if permissions.network:
        lines.append("Connect to: " + ", ".join(permissions.network))
    if permissions.storage:
        lines.append(f"Store up to {_human_bytes(permissions.storage)} of its own data")
    if permissions.events.publish:
        lines.append("Publish events: " + ", ".join(permissions.events.publish))
    if permissions.events.subscribe:
        lines.append("Receive events: " + ", ".join(permissions.events.subscribe))
    labels = {"messages": "show messages", "commands": "add commands", "widgets": "add widgets"}
    if permissions.ui:
        lines.append("User interface: " + ", ".join(labels[u] for u in permissions.ui))
    if permissions.config:
        lines.append("Read its own settings")
    return lines or ["No permissions: it can only compute on what it is given"]


def _human_bytes(size: int) -> str:
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= factor:
            return f"{size / factor:g} {unit}"
    return f"{size} bytes"


# --- parsing and error translation ---------------------------------------------------------------


def parse_manifest(text: str, *, source: str | None = None) -> Manifest:
    """Parse TOML text into a :class:`Manifest` or raise :class:`ManifestError` with every
    problem found."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError([Problem("", f"not valid TOML: {exc}")], source=source) from None
    return validate_manifest_data(data, source=source)


def validate_manifest_data(data: Any, *, source: str | None = None) -> Manifest:
    """Validate already-parsed manifest data (e.g. from the registry's database)."""
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        raise ManifestError(_problems(exc), source=source) from None


def load_manifest(path: Path) -> Manifest:
    """Read ``plugport.toml`` from a file, or from the directory that holds it."""
    file = path / MANIFEST_FILENAME if path.is_dir() else path
    try:
        with file.open("rb") as handle:
            raw = handle.read(MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError:
        raise ManifestError(
            [Problem("", f"no {MANIFEST_FILENAME} found at {file}")], source=str(file)
        ) from None
    except OSError as exc:
        raise ManifestError(
            [Problem("", f"cannot read: {exc.strerror}")], source=str(file)
        ) from None
    return parse_manifest_bytes(raw, source=str(file))


def parse_manifest_bytes(raw: bytes, *, source: str | None = None) -> Manifest:
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ManifestError(
            [Problem("", f"larger than the {MAX_MANIFEST_BYTES // 1024} KiB a manifest may be")],
            source=source,
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(
            [Problem("", f"not UTF-8 text (byte {exc.start})")], source=source
        ) from None
    return parse_manifest(text, source=source)


def manifest_json_schema() -> dict[str, Any]:
    """The JSON Schema of ``plugport.toml``, for editors and other tools."""
    schema = Manifest.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Plugport plugin manifest (plugport.toml)"
    return schema


def _problems(exc: ValidationError) -> list[Problem]:
    problems: list[Problem] = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        path = _format_loc(loc)
        value = error.get("input")
        kind = error["type"]
        if kind == "extra_forbidden":
            message = _unknown_key_message(loc)
            value = None
        elif kind == "missing":
            message = "required, but missing"
        elif kind == "manifest_consistency":
            problems.extend(
                Problem(_join(path, p.path), p.message, p.value) for p in error["ctx"]["problems"]
            )
            continue
        elif kind == "value_error":
            message = str(error["ctx"]["error"])
        else:
            message = f"{error['msg'][0].lower()}{error['msg'][1:]} (got {_show(value)})"
        problems.append(Problem(path, message, value))
    return problems


_PLAIN_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+$")


def _join(base: str, field: str) -> str:
    return f"{base}.{field}" if base else field


def _format_loc(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part == "[key]":
            text += " (key)"
        elif _PLAIN_KEY_RE.match(str(part)):
            text = _join(text, str(part))
        else:
            text += f"[{str(part)!r}]"
    return text


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _unknown_key_message(loc: tuple[Any, ...]) -> str:
    key = str(loc[-1])
    allowed = _keys_at(loc[:-1])
    if not allowed:
        return f"unknown key {key!r}"
    where = "permission" if loc[:-1] == ("permissions",) else "key"
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown {where} {key!r}{hint}; valid {where}s here: {', '.join(sorted(allowed))}"


def _keys_at(loc: tuple[Any, ...]) -> list[str]:
    """Field names of the model found by following ``loc`` from :class:`Manifest`."""
    current: Any = Manifest
    for part in loc:
        current = _step(current, part)
        if current is None:
            return []
    current = _unwrap_model(current)
    return list(current.model_fields) if current is not None else []


def _unwrap_model(annotation: Any) -> type[BaseModel] | None:
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            options = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = options[0]
        else:
            break
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _step(annotation: Any, part: Any) -> Any:
    model = _unwrap_model(annotation)
    if model is not None:
        field = model.model_fields.get(str(part))
        return field.annotation if field else None
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is list and isinstance(part, int):
        return args[0]
    if typing.get_origin(annotation) is dict:
        return args[1]
    return None
