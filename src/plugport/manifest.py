"""The plugin manifest, ``plugport.toml``: the one reviewed file that says who a plugin is, what
it may touch, how much it may use and when it runs.

Validation is strict on purpose: an unknown key is an error (a typo in ``permissions`` must not
silently grant or drop anything), and every problem names the field path, the value found and
what is allowed. Parsing and validation take text or data and return data; nothing here does
I/O except :func:`load_manifest`, which only reads the file.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

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

from plugport._engines import newer_table_problems
from plugport._manifest_errors import problems_from
from plugport._manifest_fields import (
    ACTIVATION_KINDS,
    SIZE_JSON_PATTERN,
    ActivationEvent,
    ArchivePath,
    Category,
    CommandId,
    HostAppName,
    HostPattern,
    Identifier,
    PlatformTag,
    PluginName,
    PythonRequirements,
    RequiresPython,
    SettingsSchema,
    SpecifierText,
    Tag,
    TopicPattern,
    Unique,
    Url,
    VersionText,
    byte_size,
    check_entry,
    check_plugin_name,
    known_runtime,
    match_host,
    match_topic,
    pattern_covers,
    supported_runtime,
)
from plugport.errors import ManifestError, Problem
from plugport.versions import ANY, is_compatible

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
    "PythonDependencies",
    "Widget",
    "check_plugin_name",
    "load_manifest",
    "manifest_json_schema",
    "match_host",
    "match_topic",
    "parse_manifest",
    "pattern_covers",
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
MAX_STORAGE_BYTES = 1024**3
MAX_TAGS = 10


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
        BeforeValidator(byte_size),
        Field(ge=0, le=MAX_STORAGE_BYTES),
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "integer", "minimum": 0, "maximum": MAX_STORAGE_BYTES},
                    {"type": "string", "pattern": SIZE_JSON_PATTERN},
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
    "memory_mb": (128, 96, 4096),  # the interpreter and SDK alone map ~80 MiB
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


class PythonDependencies(_Strict):
    """``[python]``: the libraries from a package index the plugin imports, locked to exact
    wheels and hashes in ``plugport.lock`` by ``plugport lock`` and shipped inside the archive."""

    dependencies: PythonRequirements = Field(
        default_factory=list,
        description="PEP 508 requirements, e.g. 'markdown>=3.5', 'jinja2~=3.1'.",
    )
    requires_python: RequiresPython = Field(
        default="",
        alias="requires-python",
        description="Python versions the plugin runs on, e.g. '>=3.11'; a host on another "
        "Python refuses to install it.",
    )
    platforms: Annotated[list[PlatformTag], Unique] = Field(
        default_factory=list,
        description="Wheel platform tags to lock compiled wheels for, e.g. "
        "'manylinux_2_28_x86_64'; empty means pure-Python wheels only.",
    )

    def is_empty(self) -> bool:
        return self == PythonDependencies()


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
        Literal["python", "wasm"], BeforeValidator(known_runtime), AfterValidator(supported_runtime)
    ] = Field(default="python", description="'python' today; 'wasm' is reserved.")
    entry: Annotated[str, AfterValidator(check_entry)] = Field(
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
    python: PythonDependencies = Field(
        default_factory=PythonDependencies,
        description="Libraries from a package index (PyPI) the plugin imports.",
    )
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
        elif kind == "on_event" and not any(pattern_covers(p, arg) for p in subscribed):
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
    if isinstance(data, dict):
        known = {info.alias or name for name, info in Manifest.model_fields.items()}
        newer = newer_table_problems(data, known)
        if newer:
            raise ManifestError(newer, source=source)
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        raise ManifestError(problems_from(exc, Manifest), source=source) from None


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
