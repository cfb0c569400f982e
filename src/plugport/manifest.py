"""The plugin manifest, ``plugport.toml``: the one reviewed file that says who a plugin is, what
it may touch, how much it may use and when it runs.

Validation is strict on purpose: an unknown key is an error (a typo in ``permissions`` must not
silently grant or drop anything), and every problem names the field path, the value found and
what is allowed. Parsing and validation take text or data and return data; nothing here does
I/O except :func:`load_manifest`, which only reads the file.
"""

from __future__ import annotations

import re
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

from plugport._content_rules import (
    MAX_ICON_BYTES,
    MAX_ICON_PIXELS,
    MAX_SCREENSHOT_BYTES,
    MAX_SCREENSHOT_PIXELS,
    MAX_SCREENSHOTS,
    MAX_TEXT_BYTES,
    MIN_ICON_PIXELS,
)
from plugport._engines import newer_table_problems
from plugport._mail_addresses import check_recipient_pattern
from plugport._manifest_errors import problems_from
from plugport._manifest_fields import (
    ACTIVATION_KINDS,
    SIZE_JSON_PATTERN,
    ActivationEvent,
    ArchivePath,
    Category,
    CommandId,
    CredentialTarget,
    DataSchema,
    HostAppName,
    HostPattern,
    IconPath,
    Identifier,
    PlatformTag,
    PluginName,
    PngPath,
    PythonRequirements,
    RequiresPython,
    SettingsSchema,
    SpecifierText,
    Tag,
    TaskPattern,
    TaskType,
    TopicPattern,
    Unique,
    Url,
    VersionText,
    WebhookTarget,
    byte_size,
    check_entry,
    check_plugin_name,
    known_runtime,
    match_host,
    match_topic,
    pattern_covers,
    supported_runtime,
)
from plugport._theme_rules import themes_problems
from plugport.errors import ManifestError, Problem
from plugport.versions import ANY, is_compatible

__all__ = [
    "ACTIVATION_KINDS",
    "CATEGORIES",
    "CREDENTIAL_KINDS",
    "LIMIT_BOUNDS",
    "MANIFEST_FILENAME",
    "MAX_MANIFEST_BYTES",
    "MENUS",
    "PERMISSION_NAMES",
    "SIGNING_KINDS",
    "THEME_COLORS",
    "THEME_FONTS",
    "UI_CONTRIBUTIONS",
    "UI_PERMISSIONS",
    "WEBHOOK_VERIFIERS",
    "Command",
    "Contributes",
    "Credential",
    "CustomView",
    "EventPermissions",
    "FieldType",
    "Limits",
    "MailPermissions",
    "Manifest",
    "MenuItem",
    "OAuth2Provider",
    "Page",
    "Permissions",
    "PythonDependencies",
    "SecretPermissions",
    "Theme",
    "ThemeColors",
    "WebhookEndpoint",
    "WebhookPermissions",
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
PERMISSION_NAMES = (
    "config",
    "credentials",
    "events",
    "mail",
    "network",
    "secrets",
    "storage",
    "tasks",
    "ui",
    "webhooks",
)
UI_PERMISSIONS = (
    "commands",
    "custom_view",
    "forms",
    "menus",
    "messages",
    "metrics",
    "pages",
    "themes",
    "widgets",
)
"""``permissions.ui``: the surfaces of the host's UI a plugin may fill, and ``metrics``, the
host data its UI may read (the one data source the host application offers today)."""
UiSurface = Literal[
    "commands",
    "custom_view",
    "forms",
    "menus",
    "messages",
    "metrics",
    "pages",
    "themes",
    "widgets",
]
MENUS = ("installation", "task", "workflow_run")
"""The named menus of the host's pages a plugin may add items to: an installed plugin's row,
a task, a workflow run."""
THEME_FONTS = ("humanist", "mono", "rounded", "serif", "system")
"""Font stacks a theme may pick: local system fonts only, so a theme never loads anything."""
THEME_COLORS = ("accent", "bad", "bg", "border", "muted", "ok", "surface", "text", "warn")
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


class TaskPermissions(_Strict):
    """Task types the plugin may submit (``api.tasks.submit``) for itself or another plugin."""

    submit: Annotated[list[TaskPattern], Unique] = Field(
        default_factory=list,
        description="Task types, or prefixes ending in '*' ('GITHUB_*'), the plugin may "
        "submit as follow-up work.",
    )


class SecretPermissions(_Strict):
    """What the plugin may do with its credentials beyond having the host use them for it."""

    reveal: Annotated[list[Identifier], Unique] = Field(
        default_factory=list,
        description="Credentials whose raw value the plugin may read (api.secrets.reveal). Off "
        "by default: without it a credential never enters the plugin's process.",
    )
    sign: Annotated[list[Identifier], Unique] = Field(
        default_factory=list,
        description="HMAC keys the plugin may sign with (api.secrets.sign) without seeing "
        "them. Taken from the [credentials.NAME] tables of kind 'hmac'.",
    )


class WebhookPermissions(_Strict):
    """Webhooks: the endpoints the host receives for the plugin, and where it may deliver
    webhooks for it (``api.webhooks.deliver``)."""

    receive: Annotated[list[Identifier], Unique] = Field(
        default_factory=list,
        description="Endpoints the host exposes at /hooks/WORKSPACE/PLUGIN/NAME and hands to "
        "the plugin's @webhook handlers once verified. Taken from the [webhooks.NAME] tables.",
    )

    deliver: Annotated[list[WebhookTarget], Unique] = Field(
        default_factory=list,
        description="Webhook targets: host patterns as in permissions.network, each optionally "
        "with a path prefix, written with or without 'https://' "
        "('https://hooks.example.com/in/', '*.example.org').",
    )


RecipientPattern = Annotated[str, AfterValidator(check_recipient_pattern)]
MAX_MAIL_PER_HOUR = 10_000


class MailPermissions(_Strict):
    """Who the plugin may email through the operator's relay (``api.mail.send``)."""

    to: Annotated[list[RecipientPattern], Unique] = Field(
        default_factory=list,
        description="Recipients (to and cc) the plugin may mail: exact addresses "
        "('ops@example.org') or every address at a domain ('*@example.com'); never '*'.",
    )
    per_hour: Annotated[int, Field(ge=1, le=MAX_MAIL_PER_HOUR)] | None = Field(
        default=None,
        description="Messages per hour the plugin asks for; the host's [mail] max_per_hour "
        "caps it (and is the default).",
    )

    @model_validator(mode="after")
    def _limit_needs_recipients(self) -> MailPermissions:
        if self.per_hour is not None and not self.to:
            raise ValueError("per_hour limits mail to the recipients in mail.to: add them")
        return self


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
    ui: Annotated[list[UiSurface], Unique] = Field(
        default_factory=list,
        description="UI surfaces: messages, commands, widgets, pages, menus, forms, themes, "
        "custom_view; and metrics, reading the host's metrics.",
    )
    config: bool = Field(default=False, description="Read the plugin's own settings.")
    credentials: dict[Identifier, Annotated[list[CredentialTarget], Unique]] = Field(
        default_factory=dict,
        description="Credential name -> where the host may send it. Taken from the hosts of "
        "each [credentials.NAME] table (declare them there); consented like any permission.",
    )
    secrets: SecretPermissions = Field(default_factory=SecretPermissions)
    webhooks: WebhookPermissions = Field(default_factory=WebhookPermissions)
    mail: MailPermissions = Field(default_factory=MailPermissions)
    tasks: TaskPermissions = Field(default_factory=TaskPermissions)

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


Title = Annotated[str, Field(min_length=1, max_length=100)]
Description = Annotated[str, Field(max_length=500)]
HexColor = Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$")]
_ASSET_PATH_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*(?:/[A-Za-z0-9_-][A-Za-z0-9._-]*)*/?$")


def _asset_path(value: str) -> str:
    if value and (not _ASSET_PATH_RE.match(value) or ".." in value.split("/")):
        raise ValueError(
            f"{value!r} is not a path inside the archive; write a relative path of letters, "
            "digits, '.', '_' and '-' segments, e.g. 'ui/view.html'"
        )
    return value


AssetPath = Annotated[str, Field(max_length=200), AfterValidator(_asset_path)]
"""A relative path inside the plugin's archive, e.g. ``ui/view.html``; never absolute, never
``..``, never a hidden (dot) segment."""


class Widget(_Strict):
    """A dashboard tile: its ``@widget(id)`` handler returns a component tree."""

    id: CommandId
    title: Title
    description: Description = ""
    config: SettingsSchema = Field(
        default_factory=dict,
        description="JSON Schema of the widget's settings; its defaults are the default config.",
    )
    refresh_s: int = Field(
        default=60,
        ge=1,
        le=86_400,
        description="How often the dashboard re-renders the tile, seconds (the host enforces "
        "its own minimum).",
    )
    size: Literal["small", "medium", "large"] = Field(
        default="medium", description="The tile's size when a user adds it."
    )


class Page(_Strict):
    """A page under the plugin's own path, rendered from its ``@page(id)`` handler's tree."""

    id: CommandId
    title: Title
    description: Description = ""
    nav: bool = Field(default=True, description="Whether the host's navigation links to it.")


class MenuItem(_Strict):
    """An item in one of the host's named menus; its ``@menu_item(id)`` handler is called with
    the item's context and may answer with an overlay."""

    id: CommandId
    title: Title
    menu: Literal["installation", "task", "workflow_run"]
    overlay: Literal["modal", "panel"] = Field(
        default="modal", description="How the handler's answer is shown."
    )


class FieldType(_Strict):
    """A form field type host forms use where a JSON Schema says ``"ui:widget": "<id>"``; its
    ``@field(id)`` handler validates a value (returns an error message or None)."""

    id: CommandId
    title: Title
    base: Literal["string", "integer", "number"] = "string"
    placeholder: Annotated[str, Field(max_length=100)] = ""
    help: Description = ""
    pattern: Annotated[str, Field(max_length=500)] = Field(
        default="", description="A regular expression the browser checks before submitting."
    )


class ThemeColors(_Strict):
    """One mode's colours, as ``#rrggbb``; checked for WCAG AA contrast."""

    bg: HexColor
    surface: HexColor
    text: HexColor
    muted: HexColor
    border: HexColor
    accent: HexColor
    ok: HexColor
    warn: HexColor
    bad: HexColor


class Theme(_Strict):
    """Design tokens, never CSS: colours for light and dark, a font stack from a safe list,
    corner radius and spacing."""

    id: CommandId
    title: Title
    light: ThemeColors | None = None
    dark: ThemeColors | None = None
    font: Literal["humanist", "mono", "rounded", "serif", "system"] = "system"
    radius_px: int = Field(default=8, ge=0, le=24)
    density: Literal["compact", "normal", "comfortable"] = "normal"

    @model_validator(mode="after")
    def _has_a_mode(self) -> Theme:
        if self.light is None and self.dark is None:
            raise ValueError("a theme needs colours for 'light', 'dark' or both")
        return self


class CustomView(_Strict):
    """The escape hatch: an HTML file from the archive, shown in a sandboxed iframe whose
    scripts and styles come only from ``assets``; it reaches only the plugin's ``@view(id)``
    handler, through the host's bridge."""

    id: CommandId
    title: Title
    file: AssetPath
    assets: AssetPath = Field(
        default="",
        description="The archive folder its scripts, styles and images come from "
        "(default: the folder of 'file').",
    )
    height_px: int = Field(default=400, ge=100, le=2000)


UI_CONTRIBUTIONS = {
    "widgets": "widgets",
    "pages": "pages",
    "menus": "menus",
    "fields": "forms",
    "themes": "themes",
    "views": "custom_view",
}
"""``contributes`` list -> the ``permissions.ui`` surface it needs."""


class Contributes(_Strict):
    """What the plugin adds to the host: hook implementations, commands and UI surfaces."""

    hooks: dict[Identifier, Annotated[int, Field(ge=-1000, le=1000)]] = Field(
        default_factory=dict,
        description="Hook name -> priority; higher runs first, the host may override.",
    )
    commands: list[Command] = Field(default_factory=list)
    widgets: list[Widget] = Field(default_factory=list)
    pages: list[Page] = Field(default_factory=list)
    menus: list[MenuItem] = Field(default_factory=list)
    fields: list[FieldType] = Field(default_factory=list)
    themes: list[Theme] = Field(default_factory=list)
    views: list[CustomView] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> Contributes:
        for kind, items in (
            ("commands", self.commands),
            ("widgets", self.widgets),
            ("themes", self.themes),
        ):
            ids = [item.id for item in items]
            duplicates = sorted({i for i in ids if ids.count(i) > 1})
            if duplicates:
                raise ValueError(f"{kind} ids must be unique; repeated: {', '.join(duplicates)}")
        # Widgets, pages, menu items, fields and views share one handler namespace (@widget,
        # @page, ... all answer UI calls by id), so their ids are unique across all five.
        ids = [item.id for item in self.ui_surfaces()]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(
                "widget, page, menu, field and view ids must be unique across all of them; "
                f"repeated: {', '.join(duplicates)}"
            )
        return self

    def ui_surfaces(self) -> list[Widget | Page | MenuItem | FieldType | CustomView]:
        """Every contribution answered by a UI handler, in manifest order."""
        return [*self.widgets, *self.pages, *self.menus, *self.fields, *self.views]

    def ui_surface(
        self, surface_id: str
    ) -> Widget | Page | MenuItem | FieldType | CustomView | None:
        return next((s for s in self.ui_surfaces() if s.id == surface_id), None)


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


CREDENTIAL_KINDS = ("bearer", "basic", "header", "query", "oauth2", "url", "hmac", "private-key")
SIGNING_KINDS = ("hmac", "private-key")
"""Kinds the plugin signs with (``api.secrets.sign``); they are never sent."""
_HEADER_NAME = r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$"
_PARAM_NAME = r"^[A-Za-z0-9_.\-\[\]]{1,64}$"
_RESERVED_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "te", "upgrade", "trailer"}
)


class OAuth2Provider(_Strict):
    """Where the host runs OAuth2 for a credential of kind ``oauth2``."""

    grant: Literal["authorization_code", "client_credentials"] = "authorization_code"
    authorize_url: Url | None = Field(
        default=None, description="The provider's authorization endpoint (authorization_code)."
    )
    token_url: Url = Field(description="The provider's token endpoint.")
    revoke_url: Url | None = Field(
        default=None,
        description="The provider's revocation endpoint (RFC 7009); when set, disconnecting "
        "an account revokes its tokens there before the host forgets them.",
    )
    pkce: bool = Field(
        default=True,
        description="authorization_code: send a PKCE S256 challenge (RFC 7636). Turn off only "
        "for a provider that refuses one.",
    )
    scopes: Annotated[list[Annotated[str, Field(min_length=1, max_length=200)]], Unique] = Field(
        default_factory=list
    )

    @model_validator(mode="after")
    def _endpoints(self) -> OAuth2Provider:
        if self.grant == "authorization_code" and self.authorize_url is None:
            raise ValueError("grant 'authorization_code' needs authorize_url")
        return self


class Credential(_Strict):
    """A secret the operator sets and the host uses for the plugin: injected into requests to
    its ``hosts`` (``bearer``, ``basic``, ``header``, ``query``, ``oauth2``), sent as the whole
    URL (``url``) or used to sign (``hmac``, ``private-key``); its value never enters the
    plugin's process unless ``secrets.reveal`` grants it."""

    kind: Literal["bearer", "basic", "header", "query", "oauth2", "url", "hmac", "private-key"] = (
        Field(
            description="How the host uses it: an Authorization bearer token, basic auth "
            "('user:password'), a named header, a query parameter, an OAuth2 token the host "
            "obtains, a whole URL that is itself the secret (an incoming-webhook URL: the "
            "plugin fetches it without knowing it), an HMAC key, or a PEM private key "
            "(RS256, ES256 or Ed25519) for api.secrets.sign."
        )
    )
    description: Annotated[str, Field(max_length=300)] = ""
    hosts: Annotated[list[CredentialTarget], Unique] = Field(
        default_factory=list,
        description="Where it may be sent: host patterns as in permissions.network, each "
        "optionally with a path prefix ('api.example.com/rest/').",
    )
    header: Annotated[str, Field(pattern=_HEADER_NAME)] | None = Field(
        default=None, description="kind 'header': the header that carries it."
    )
    param: Annotated[str, Field(pattern=_PARAM_NAME)] | None = Field(
        default=None, description="kind 'query': the query parameter that carries it."
    )
    oauth2: OAuth2Provider | None = None

    @model_validator(mode="after")
    def _by_kind(self) -> Credential:
        kind = self.kind
        if kind in SIGNING_KINDS and self.hosts:
            raise ValueError(f"a {kind} credential signs and is never sent: remove hosts")
        if kind not in SIGNING_KINDS and not self.hosts:
            raise ValueError(f"a {kind} credential needs hosts: where the host may send it")
        if (kind == "header") != (self.header is not None):
            raise ValueError("header names the header of kind 'header' credentials (only)")
        if self.header is not None and self.header.lower() in _RESERVED_HEADERS:
            raise ValueError(f"header {self.header!r} is set by the host, not a credential")
        if (kind == "query") != (self.param is not None):
            raise ValueError("param names the query parameter of kind 'query' (only)")
        if (kind == "oauth2") != (self.oauth2 is not None):
            raise ValueError("oauth2 (the provider's endpoints) goes with kind 'oauth2' (only)")
        return self


WEBHOOK_VERIFIERS = ("github", "slack", "hmac-timestamped", "hmac", "token")
MAX_WEBHOOK_BODY_BYTES = 10 * 1024**2
DEFAULT_WEBHOOK_BODY_BYTES = 1024**2
_WEBHOOK_OPTIONS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # verifier: (options it needs, options it may take besides the common ones)
    "github": (frozenset(), frozenset()),
    "slack": (frozenset(), frozenset({"window_s"})),
    "hmac-timestamped": (
        frozenset({"signature_header", "timestamp_header"}),
        frozenset({"prefix", "encoding", "window_s"}),
    ),
    "hmac": (frozenset({"signature_header"}), frozenset({"prefix", "encoding"})),
    "token": (frozenset({"token_header"}), frozenset()),
}
_WEBHOOK_OPTIONAL = ("signature_header", "timestamp_header", "prefix", "encoding", "window_s")


class WebhookEndpoint(_Strict):
    """``[webhooks.NAME]``: an endpoint the host receives at ``/hooks/WORKSPACE/PLUGIN/NAME``,
    verified with ``verifier`` and the plugin's secret ``secret`` before anything is stored
    or the plugin sees it."""

    verifier: Literal["github", "slack", "hmac-timestamped", "hmac", "token"] = Field(
        description="How the host checks a delivery: 'github' (X-Hub-Signature-256), 'slack' "
        "(X-Slack-Signature over v0:timestamp:body), 'hmac-timestamped' (an HMAC of "
        "'timestamp.body' in signature-header, the time in timestamp-header), 'hmac' (an HMAC "
        "of the body in signature-header) or 'token' (a shared token in token-header)."
    )
    secret: Identifier = Field(
        description="The plugin's secret the operator sets (plugport secret set PLUGIN NAME): "
        "the HMAC key or the shared token. The plugin never sees it."
    )
    description: Annotated[str, Field(max_length=300)] = ""
    signature_header: Annotated[str, Field(pattern=_HEADER_NAME)] | None = Field(
        default=None, alias="signature-header", description="'hmac', 'hmac-timestamped'."
    )
    timestamp_header: Annotated[str, Field(pattern=_HEADER_NAME)] | None = Field(
        default=None, alias="timestamp-header", description="'hmac-timestamped': Unix seconds."
    )
    token_header: Annotated[str, Field(pattern=_HEADER_NAME)] | None = Field(
        default=None, alias="token-header", description="'token': e.g. X-Gitlab-Token."
    )
    prefix: Annotated[str, Field(max_length=32)] | None = Field(
        default=None, description="Text before the signature, e.g. 'sha256='."
    )
    encoding: Literal["hex", "base64"] | None = Field(
        default=None, description="How the signature is written (default hex)."
    )
    window_s: Annotated[int, Field(ge=1, le=3600)] | None = Field(
        default=None,
        alias="window-seconds",
        description="How far a delivery's timestamp may be from the host's clock (default 300).",
    )
    max_body_bytes: Annotated[
        int,
        BeforeValidator(byte_size),
        Field(ge=1, le=MAX_WEBHOOK_BODY_BYTES),
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "integer", "minimum": 1, "maximum": MAX_WEBHOOK_BODY_BYTES},
                    {"type": "string", "pattern": SIZE_JSON_PATTERN},
                ]
            }
        ),
    ] = Field(
        default=DEFAULT_WEBHOOK_BODY_BYTES,
        alias="max-body-bytes",
        description="The largest body accepted (default 1 MiB, at most 10 MiB).",
    )
    delivery_id_header: Annotated[str, Field(pattern=_HEADER_NAME)] | None = Field(
        default=None,
        alias="delivery-id-header",
        description="The header carrying the sender's delivery id (github: X-GitHub-Delivery).",
    )
    acknowledge: Literal["json", "empty"] = Field(
        default="json",
        description="How the host answers a stored delivery: 'json' (202 with the delivery "
        "id) or 'empty' (200 with an empty body, what Slack's slash commands and interactive "
        "requests expect; anything else is shown to the user as a failure).",
    )

    @model_validator(mode="after")
    def _by_verifier(self) -> WebhookEndpoint:
        needs, may = _WEBHOOK_OPTIONS[self.verifier]
        fields = type(self).model_fields
        missing = [n for n in sorted(needs) if getattr(self, n) is None]
        if missing:
            names = ", ".join(fields[n].alias or n for n in missing)
            raise ValueError(f"verifier {self.verifier!r} needs {names}")
        extra = [
            n
            for n in (*_WEBHOOK_OPTIONAL, "token_header")
            if getattr(self, n) is not None and n not in needs | may
        ]
        if extra:
            names = ", ".join(fields[n].alias or n for n in extra)
            raise ValueError(f"verifier {self.verifier!r} does not use {names}: remove it")
        return self


MAX_TASK_ATTEMPTS = 100
MAX_TASK_TIMEOUT_MS = 6 * 3600 * 1000


class TaskSpec(_Strict):
    """``[tasks.TYPE]``: a kind of work the plugin's ``@task("TYPE")`` handler does, queued
    and retried by the host. Payload and result are checked against their schemas on the
    host, before the handler sees a payload and before a result is kept."""

    description: Annotated[str, Field(max_length=300)] = ""
    payload: DataSchema = Field(
        default_factory=dict, description="JSON Schema of the payload (empty: anything)."
    )
    result: DataSchema = Field(
        default_factory=dict, description="JSON Schema of the result (empty: anything)."
    )
    timeout_ms: Annotated[int, Field(ge=10, le=MAX_TASK_TIMEOUT_MS)] | None = Field(
        default=None,
        alias="timeout-ms",
        description="Wall-clock limit of one attempt; the worker is killed when it is over "
        "(default: limits.timeout_ms).",
    )
    max_attempts: Annotated[int, Field(ge=1, le=MAX_TASK_ATTEMPTS)] = Field(
        default=3, alias="max-attempts", description="Attempts before the task is dead."
    )
    backoff_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=1.0,
        alias="backoff-seconds",
        description="The first retry's wait; each next one doubles, with jitter.",
    )
    max_backoff_s: Annotated[float, Field(gt=0, le=86400)] = Field(
        default=300.0, alias="max-backoff-seconds", description="The longest wait between attempts."
    )
    concurrency: Annotated[int, Field(ge=1, le=64)] | None = Field(
        default=None,
        description="Tasks of this type running at once on one host (default: "
        "limits.max_concurrency).",
    )
    idempotency_key: Annotated[str, Field(pattern=r"^(/[^/]*)+$", max_length=200)] | None = Field(
        default=None,
        alias="idempotency-key",
        description="JSON pointer to the payload field that identifies the work "
        "('/pr/number'): a second task with the same value is not queued again.",
    )
    priority: Annotated[int, Field(ge=-100, le=100)] = Field(
        default=0, description="Higher runs first (a submit may override it)."
    )

    @model_validator(mode="after")
    def _backoff_order(self) -> TaskSpec:
        if self.max_backoff_s < self.backoff_s:
            raise ValueError("max-backoff-seconds must be at least backoff-seconds")
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
    icon: IconPath | None = Field(
        default=None,
        description=f"The marketplace icon: a PNG of {MIN_ICON_PIXELS}-{MAX_ICON_PIXELS} pixels a "
        f"side or an SVG with no scripts, event handlers or external references, at most "
        f"{MAX_ICON_BYTES // 1024} KiB, e.g. 'assets/icon.svg'.",
    )
    readme: ArchivePath | None = Field(
        default=None,
        description="Markdown shown on the plugin's marketplace page (default: a top-level "
        f"README.md), UTF-8, at most {MAX_TEXT_BYTES // 1024} KiB; raw HTML is shown as text.",
    )
    changelog: ArchivePath | None = Field(
        default=None,
        description="Markdown listing the changes of each version (default: a top-level "
        f"CHANGELOG.md), UTF-8, at most {MAX_TEXT_BYTES // 1024} KiB.",
    )
    screenshots: Annotated[list[PngPath], Field(max_length=MAX_SCREENSHOTS), Unique] = Field(
        default_factory=list,
        description=f"Up to {MAX_SCREENSHOTS} PNG screenshots for the marketplace page, in order, "
        f"each at most {MAX_SCREENSHOT_PIXELS} pixels a side and "
        f"{MAX_SCREENSHOT_BYTES // 1024 // 1024} MiB.",
    )
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
    credentials: dict[Identifier, Credential] = Field(
        default_factory=dict,
        description="Secrets the operator provides and the host uses on the plugin's behalf.",
    )
    webhooks: dict[Identifier, WebhookEndpoint] = Field(
        default_factory=dict,
        description="Endpoints the host receives webhooks at, verified before the plugin's "
        "@webhook handler sees them.",
    )
    tasks: dict[TaskType, TaskSpec] = Field(
        default_factory=dict,
        description="Task types the plugin's @task handlers process, queued by the host.",
    )
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

    @model_validator(mode="before")
    @classmethod
    def _credential_grants(cls, data: Any) -> Any:
        """Where each credential may go is a permission (consented, diffed, checked): copy
        the hosts of ``[credentials.NAME]`` into ``permissions.credentials``."""
        if not isinstance(data, dict):
            return data
        data = _webhook_grants(data)
        permissions = data.get("permissions")
        credentials = data.get("credentials")
        if not isinstance(credentials, dict) or not credentials:
            return data
        tables = {n: t for n, t in credentials.items() if isinstance(t, dict)}
        grants = {name: t["hosts"] for name, t in tables.items() if t.get("hosts")}
        keys = [name for name, t in tables.items() if t.get("kind") in SIGNING_KINDS]
        merged = dict(permissions) if isinstance(permissions, dict) else {}
        if grants:
            merged["credentials"] = grants
        if keys:
            secrets = merged.get("secrets")
            merged["secrets"] = {**(secrets if isinstance(secrets, dict) else {}), "sign": keys}
        return {**data, "permissions": merged}

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


def _webhook_grants(data: dict[str, Any]) -> dict[str, Any]:
    """Receiving webhooks is a permission (consented, diffed): copy the names of the
    ``[webhooks.NAME]`` tables into ``permissions.webhooks.receive``."""
    webhooks = data.get("webhooks")
    if not isinstance(webhooks, dict) or not webhooks:
        return data
    permissions = data.get("permissions")
    merged = dict(permissions) if isinstance(permissions, dict) else {}
    granted = merged.get("webhooks")
    merged["webhooks"] = {**(granted if isinstance(granted, dict) else {}), "receive": [*webhooks]}
    return {**data, "permissions": merged}


def _cross_field_problems(manifest: Manifest) -> list[Problem]:
    problems: list[Problem] = []
    if manifest.name in manifest.dependencies:
        problems.append(
            Problem("dependencies", f"{manifest.name!r} cannot depend on itself", manifest.name)
        )
    for name in manifest.permissions.secrets.reveal:
        if name not in manifest.credentials:
            problems.append(
                Problem(
                    "permissions.secrets.reveal",
                    f"names {name!r}, which no [credentials.{name}] table declares "
                    f"(declared: {', '.join(sorted(manifest.credentials)) or 'none'})",
                    name,
                )
            )
    for contribution, surface in UI_CONTRIBUTIONS.items():
        items = getattr(manifest.contributes, contribution)
        # Widgets predate the rule (0.3 manifests declare them without the permission): the
        # host simply does not offer a widget whose plugin lacks ``ui = ["widgets"]``.
        if items and surface not in manifest.permissions.ui and contribution != "widgets":
            problems.append(
                Problem(
                    f"contributes.{contribution}",
                    f"needs {surface!r} in permissions.ui (it has: "
                    f"{', '.join(manifest.permissions.ui) or 'none'})",
                    items[0].id,
                )
            )
    problems += themes_problems(manifest.contributes.themes, path="contributes.themes")
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
        permissions = data.get("permissions")
        if isinstance(permissions, dict):
            secrets = permissions.get("secrets")
            webhooks = permissions.get("webhooks")
            derived = [
                path
                for path, present in (
                    ("permissions.credentials", "credentials" in permissions),
                    ("permissions.secrets.sign", isinstance(secrets, dict) and "sign" in secrets),
                    (
                        "permissions.webhooks.receive",
                        isinstance(webhooks, dict) and "receive" in webhooks,
                    ),
                )
                if present
            ]
            if derived:
                raise ManifestError(
                    [
                        Problem(
                            path,
                            "is filled from the [webhooks.NAME] tables; declare the endpoint "
                            "there (verifier, secret) instead"
                            if path.startswith("permissions.webhooks")
                            else "is filled from the [credentials.NAME] tables; declare the "
                            "credential there (kind, hosts) instead",
                        )
                        for path in derived
                    ],
                    source=source,
                )
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        problems = problems_from(exc, Manifest)
        if any(p.path.startswith("webhooks.") for p in problems):
            problems = [p for p in problems if not p.path.startswith("permissions.webhooks")]
        if any(p.path.startswith("credentials.") for p in problems):
            # The same hosts, copied into permissions.credentials: report them once.
            problems = [p for p in problems if not p.path.startswith("permissions.credentials")]
        raise ManifestError(problems, source=source) from None


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
