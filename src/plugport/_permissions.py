"""What each capability's permission means, decided from data alone: whether a call is granted,
what one grant adds over another (the permission diff), the plain words a consent prompt shows,
and the manifest line that grants it.

The plain words come from one place, :func:`describe_permissions`: the host's consent, the
marketplace's plugin page and its review screens (:func:`permission_changes`, the same words
per single grant) all say what a permission allows in exactly these sentences.

Rule: every capability has exactly one :class:`PermissionRule` here, and nothing else decides
these four things. The runtime's record for the capability (``runtime/capabilities``) points at
its rule, and a test fails when a capability has one half without the other. The rules sit at
the bottom of the import order because the registry (which never imports the runtime) shows the
same words at review as the host does at consent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from plugport._mail_addresses import check_address, match_recipient, pattern_covers_mail
from plugport._manifest_fields import (
    credential_target_covers,
    match_credential_target,
    match_task_type,
    match_topic,
    pattern_covers,
    task_pattern_covers,
)
from plugport.errors import InvalidInputError
from plugport.manifest import Permissions

__all__ = [
    "RULES",
    "PermissionChanges",
    "PermissionRule",
    "describe_permissions",
    "grant_lines",
    "mail_recipients",
    "permission_changes",
    "permissions_beyond",
    "refusal",
    "webhook_target_admitted",
]

UI_LABELS = {
    "messages": "show messages",
    "commands": "add commands",
    "widgets": "add widgets",
    "pages": "add pages",
    "menus": "add menu items",
    "forms": "add form field types",
    "themes": "offer themes",
}
CUSTOM_VIEW_LINE = (
    "Custom view: shows its own HTML and scripts in a sandboxed frame (no network, no access "
    "to the page)"
)
METRICS_LINE = "Read the host's metrics"
_UI_SURFACE = {  # other ui calls: commands
    "message": "messages",
    "invalidate": "widgets",
    "update_widget": "widgets",
    "metrics": "metrics",
}


@dataclass(frozen=True)
class PermissionRule:
    """One capability's permission, as the four decisions every part of Plugport asks of it."""

    capability: str
    refusal: Callable[[Permissions, str, Mapping[str, Any]], str]
    """Why ``capability.method(**arguments)`` is refused under these permissions, or ``""``."""
    beyond: Callable[[Permissions, Permissions], list[str]]
    """What ``granted`` (second) allows that ``requested`` (first) did not ask for."""
    describe: Callable[[Permissions], list[str]]
    """Plain-language lines for consent prompts and review screens (empty: nothing granted)."""
    declared: Callable[[Permissions], bool]
    """Whether these permissions grant the capability anything at all."""
    manifest_line: Callable[[str, Mapping[str, Any]], str]
    """The ``[permissions]`` line that would grant ``method(**arguments)``: the fix to print."""


def _listed(items: Sequence[str]) -> str:
    return ", ".join(items) if items else "none granted"


def _human_bytes(size: int) -> str:
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= factor:
            return f"{size / factor:g} {unit}"
    return f"{size} bytes"


# --- storage ------------------------------------------------------------------------------------


def _storage_refusal(p: Permissions, method: str, arguments: Mapping[str, Any]) -> str:
    return "" if p.storage > 0 else "permissions.storage is 0 (no storage granted)"


def _storage_beyond(requested: Permissions, granted: Permissions) -> list[str]:
    if granted.storage > requested.storage:
        return [f"storage {granted.storage} > {requested.storage} bytes"]
    return []


def _storage_describe(p: Permissions) -> list[str]:
    return [f"Store up to {_human_bytes(p.storage)} of its own data"] if p.storage else []


STORAGE = PermissionRule(
    "storage",
    _storage_refusal,
    _storage_beyond,
    _storage_describe,
    lambda p: p.storage > 0,
    lambda method, arguments: 'storage = "1 MiB"',
)

# --- net ----------------------------------------------------------------------------------------


def _net_refusal(p: Permissions, method: str, arguments: Mapping[str, Any]) -> str:
    # Which host: the network broker decides per URL and per redirect hop, after DNS, and for
    # a credential, whether each hop is one of the credential's targets.
    if not p.network:
        return "permissions.network grants no hosts"
    credential = arguments.get("credential")
    if credential is not None and credential in p.secrets.sign:
        return (
            f"credential {credential!r} is a signing key (hmac or private-key): it signs "
            "(api.secrets.sign) and is never sent"
        )
    if credential is not None and credential not in p.credentials:
        return (
            f"no credential {credential!r} is declared with hosts "
            f"({_listed(sorted(p.credentials))}); add [credentials.{credential}]"
        )
    return ""


def _net_line(method: str, arguments: Mapping[str, Any]) -> str:
    from urllib.parse import urlsplit

    url = arguments.get("url")
    host = urlsplit(url).hostname if isinstance(url, str) else None
    credential = arguments.get("credential")
    if isinstance(credential, str):
        return (
            f'[credentials.{credential}] kind = "bearer", hosts = ["{host or "api.example.com"}"]'
        )
    return f'network = ["{host or "api.example.com"}"]'


NET = PermissionRule(
    "net",
    _net_refusal,
    lambda r, g: [f"network {p!r}" for p in g.network if p not in r.network],
    lambda p: ["Connect to: " + ", ".join(p.network)] if p.network else [],
    lambda p: bool(p.network),
    _net_line,
)

# --- events -------------------------------------------------------------------------------------


def _events_refusal(p: Permissions, method: str, arguments: Mapping[str, Any]) -> str:
    topic = arguments.get("topic")
    granted = p.events.publish
    if not isinstance(topic, str):
        raise InvalidInputError(f"events.publish: topic must be a string, not {topic!r}")
    if any(match_topic(pattern, topic) for pattern in granted):
        return ""
    return f"topic {topic!r} matches no granted publish pattern ({_listed(granted)})"


def _events_beyond(requested: Permissions, granted: Permissions) -> list[str]:
    beyond = []
    for direction in ("publish", "subscribe"):
        asked = getattr(requested.events, direction)
        beyond += [
            f"events.{direction} {p!r}"
            for p in getattr(granted.events, direction)
            if not any(pattern_covers(a, p) for a in asked)
        ]
    return beyond


def _events_describe(p: Permissions) -> list[str]:
    lines = []
    if p.events.publish:
        lines.append("Publish events: " + ", ".join(p.events.publish))
    if p.events.subscribe:
        lines.append("Receive events: " + ", ".join(p.events.subscribe))
    return lines


def _events_line(method: str, arguments: Mapping[str, Any]) -> str:
    topic = arguments.get("topic")
    return f'events.publish = ["{topic if isinstance(topic, str) else "tasks.*"}"]'


EVENTS = PermissionRule(
    "events",
    _events_refusal,
    _events_beyond,
    _events_describe,
    lambda p: bool(p.events.publish or p.events.subscribe),
    _events_line,
)

# --- ui -----------------------------------------------------------------------------------------


_REDRAWN = ("widgets", "pages", "menus", "custom_view")
"""Surfaces ``ui.invalidate`` may name (which one is the plugin's contribution, checked on
the host)."""


def _ui_refusal(p: Permissions, method: str, arguments: Mapping[str, Any]) -> str:
    if method in ("invalidate", "update_widget"):
        if any(s in p.ui for s in _REDRAWN):
            return ""
        return f"permissions.ui includes no surface to invalidate ({_listed(p.ui)})"
    surface = _UI_SURFACE.get(method, "commands")
    if surface in p.ui:
        return ""
    return f"permissions.ui does not include {surface!r} ({_listed(p.ui)})"


def _ui_describe(p: Permissions) -> list[str]:
    surfaces = [UI_LABELS[u] for u in p.ui if u in UI_LABELS]
    lines = ["User interface: " + ", ".join(surfaces)] if surfaces else []
    if "custom_view" in p.ui:
        lines.append(CUSTOM_VIEW_LINE)
    if "metrics" in p.ui:
        lines.append(METRICS_LINE)
    return lines


UI = PermissionRule(
    "ui",
    _ui_refusal,
    lambda r, g: [f"ui {s!r}" for s in g.ui if s not in r.ui],
    _ui_describe,
    lambda p: bool(p.ui),
    lambda method, arguments: f'ui = ["{_UI_SURFACE.get(method, "commands")}"]',
)

# --- config -------------------------------------------------------------------------------------

CONFIG = PermissionRule(
    "config",
    lambda p, method, arguments: "" if p.config else "permissions.config is not granted",
    lambda r, g: ["config"] if g.config and not r.config else [],
    lambda p: ["Read its own settings"] if p.config else [],
    lambda p: p.config,
    lambda method, arguments: "config = true",
)

# --- secrets (credentials) ----------------------------------------------------------------------


def _secrets_refusal(p: Permissions, method: str, arguments: Mapping[str, Any]) -> str:
    name = arguments.get("name")
    if not isinstance(name, str):
        raise InvalidInputError(f"secrets.{method}: name must be a string, not {name!r}")
    declared = sorted({*p.credentials, *p.secrets.reveal, *p.secrets.sign})
    if method == "reveal":
        if name in p.secrets.reveal:
            return ""
        return (
            f"permissions.secrets.reveal does not include {name!r} ({_listed(p.secrets.reveal)}); "
            "the host uses a credential for the plugin without revealing it"
        )
    if name in p.secrets.sign:
        return ""
    return f"no hmac or private-key credential {name!r} is declared ({_listed(declared)})"


def _secrets_beyond(requested: Permissions, granted: Permissions) -> list[str]:
    beyond = []
    for name, targets in granted.credentials.items():
        asked = requested.credentials.get(name, [])
        beyond += [
            f"credential {name!r} sent to {t!r}"
            for t in targets
            if not any(credential_target_covers(a, t) for a in asked)
        ]
    beyond += [
        f"secrets.sign {n!r}" for n in granted.secrets.sign if n not in requested.secrets.sign
    ]
    beyond += [
        f"{REVEAL_GRANT}{n!r}" for n in granted.secrets.reveal if n not in requested.secrets.reveal
    ]
    return beyond


REVEAL_WARNING = "READS THE RAW VALUE of"
"""How a consent line that lets a secret into the plugin's process starts (shown in red)."""
REVEAL_GRANT = "secrets.reveal "
"""How the permission diff (:func:`permissions_beyond`) names the same grant: an update's
consent lists it so, and it is shown in red too."""


def is_dangerous(line: str) -> bool:
    """Whether a consent line is one every screen shows in red: a secret's raw value entering
    the plugin's process (``secrets.reveal``), in plain words or as the diff names it."""
    return line.startswith((REVEAL_WARNING, REVEAL_GRANT))


def _secrets_describe(p: Permissions) -> list[str]:
    lines = [
        f"Use credential {name!r}, sent by the host only to: {', '.join(targets)}"
        for name, targets in p.credentials.items()
    ]
    lines += [f"Sign data with secret {name!r} (without seeing it)" for name in p.secrets.sign]
    lines += [
        f"{REVEAL_WARNING} secret {name!r}: it enters the plugin's process"
        for name in p.secrets.reveal
    ]
    return lines


def _secrets_line(method: str, arguments: Mapping[str, Any]) -> str:
    name = arguments.get("name")
    name = name if isinstance(name, str) else "api_key"
    if method == "reveal":
        return f'secrets.reveal = ["{name}"]'
    return f'[credentials.{name}] kind = "hmac"'


SECRETS = PermissionRule(
    "secrets",
    _secrets_refusal,
    _secrets_beyond,
    _secrets_describe,
    lambda p: bool(p.credentials or p.secrets.reveal or p.secrets.sign),
    _secrets_line,
)

# --- inbound webhooks (no capability: the host calls the plugin, never the other way) ---------

WEBHOOK_PATH = "/hooks/{workspace}/{plugin}/"
"""Where the host service receives a plugin's endpoints (followed by the endpoint's name)."""


def _inbound_describe(p: Permissions) -> list[str]:
    return [
        f"Receive webhooks at /hooks/…/{name} (verified by the host with the plugin's secret)"
        for name in p.webhooks.receive
    ]


def _inbound_beyond(requested: Permissions, granted: Permissions) -> list[str]:
    asked = requested.webhooks.receive
    return [f"webhooks.receive {n!r}" for n in granted.webhooks.receive if n not in asked]


# --- mail ---------------------------------------------------------------------------------------

MAX_RECIPIENTS = 50


def _address_list(value: Any, argument: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise InvalidInputError(
            f"mail.send: {argument} must be an address or a list of addresses, not {value!r}"
        )
    checked = []
    for item in items:
        try:
            checked.append(check_address(item))
        except ValueError as exc:
            raise InvalidInputError(f"mail.send: {argument}: {exc}") from None
    return checked


def mail_recipients(arguments: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The checked ``to`` and ``cc`` addresses of a ``mail.send`` call, or
    :class:`InvalidInputError` naming the argument and the address."""
    to = _address_list(arguments.get("to"), "to")
    cc = _address_list(arguments.get("cc") or [], "cc")
    if not to:
        raise InvalidInputError("mail.send: to names no recipient")
    if len(to) + len(cc) > MAX_RECIPIENTS:
        raise InvalidInputError(
            f"mail.send: {len(to) + len(cc)} recipients; at most {MAX_RECIPIENTS} per message"
        )
    return to, cc


def _mail_refusal(p: Permissions, method: str, arguments: Mapping[str, Any]) -> str:
    to, cc = mail_recipients(arguments)
    outside = [
        a for a in dict.fromkeys(to + cc) if not any(match_recipient(g, a) for g in p.mail.to)
    ]
    if not outside:
        return ""
    return (
        f"{', '.join(map(repr, outside))} matches no granted recipient pattern "
        f"(permissions.mail.to: {_listed(p.mail.to)})"
    )


def _mail_beyond(requested: Permissions, granted: Permissions) -> list[str]:
    beyond = [
        f"mail to {g!r}"
        for g in granted.mail.to
        if not any(pattern_covers_mail(a, g) for a in requested.mail.to)
    ]
    asked, given = requested.mail.per_hour, granted.mail.per_hour
    if given is not None and (asked is None or given > asked):
        beyond.append(
            f"mail.per_hour {given} > {asked if asked is not None else 'the host default'}"
        )
    return beyond


def _mail_describe(p: Permissions) -> list[str]:
    if not p.mail.to:
        return []
    rate = f", up to {p.mail.per_hour} messages an hour" if p.mail.per_hour else ""
    return [f"Send email (from the host's address) to: {', '.join(p.mail.to)}{rate}"]


def _mail_line(method: str, arguments: Mapping[str, Any]) -> str:
    try:
        to, cc = mail_recipients(arguments)
    except InvalidInputError:
        return 'mail.to = ["*@example.com"]'
    domains = sorted({a.rpartition("@")[2] for a in to + cc})
    return "mail.to = [" + ", ".join(f'"*@{d}"' for d in domains) + "]"


MAIL = PermissionRule(
    "mail",
    _mail_refusal,
    _mail_beyond,
    _mail_describe,
    lambda p: bool(p.mail.to),
    _mail_line,
)

# --- webhooks (outbound delivery) ---------------------------------------------------------------


def webhook_target_admitted(targets: Sequence[str], url: str) -> bool:
    """Whether a ``webhooks.deliver`` grant admits ``url`` (host, port and path prefix)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return False
    return any(
        match_credential_target(t, parts.hostname or "", port, parts.path or "/") for t in targets
    )


def _webhooks_refusal(p: Permissions, method: str, arguments: Mapping[str, Any]) -> str:
    # Which addresses: the webhooks capability runs the net.fetch URL and address checks (and
    # the host's local endpoints) on the target, when it is delivered and at every attempt.
    target = arguments.get("target")
    if not isinstance(target, str):
        raise InvalidInputError(f"webhooks.deliver: target must be a URL string, not {target!r}")
    sign_with = arguments.get("sign_with")
    if sign_with is not None and sign_with not in p.secrets.sign:
        return (
            f"sign_with names {sign_with!r}, which is no hmac credential of the plugin "
            f'({_listed(p.secrets.sign)}); add [credentials.{sign_with}] kind = "hmac"'
        )
    if not p.webhooks.deliver:
        return "permissions.webhooks.deliver grants no targets"
    return ""


def _webhooks_line(method: str, arguments: Mapping[str, Any]) -> str:
    from urllib.parse import urlsplit

    target = arguments.get("target", arguments.get("url"))
    where = "hooks.example.com"
    if isinstance(target, str):
        try:
            parts = urlsplit(target)
        except ValueError:
            parts = None
        if parts is not None and parts.hostname:
            where = parts.hostname + (f":{parts.port}" if parts.port else "") + parts.path
    return f'webhooks.deliver = ["https://{where}"]'


WEBHOOKS = PermissionRule(
    "webhooks",
    _webhooks_refusal,
    lambda r, g: [
        f"webhooks.deliver {t!r}"
        for t in g.webhooks.deliver
        if not any(credential_target_covers(a, t) for a in r.webhooks.deliver)
    ],
    lambda p: (
        ["Deliver webhooks to: " + ", ".join(p.webhooks.deliver)] if p.webhooks.deliver else []
    ),
    lambda p: bool(p.webhooks.deliver),
    _webhooks_line,
)

# --- tasks --------------------------------------------------------------------------------------


def _tasks_refusal(p: Permissions, method: str, arguments: Mapping[str, Any]) -> str:
    if method != "submit":  # progress: only on the plugin's own running task (the queue checks)
        return ""
    task_type = arguments.get("task_type")
    if not isinstance(task_type, str):
        raise InvalidInputError(f"tasks.submit: task_type must be a string, not {task_type!r}")
    granted = p.tasks.submit
    if any(match_task_type(pattern, task_type) for pattern in granted):
        return ""
    return f"task type {task_type!r} matches no tasks.submit pattern ({_listed(granted)})"


def _tasks_line(method: str, arguments: Mapping[str, Any]) -> str:
    task_type = arguments.get("task_type")
    return f'tasks.submit = ["{task_type if isinstance(task_type, str) else "TASK_TYPE"}"]'


TASKS = PermissionRule(
    "tasks",
    _tasks_refusal,
    lambda r, g: [
        f"tasks.submit {t!r}"
        for t in g.tasks.submit
        if not any(task_pattern_covers(a, t) for a in r.tasks.submit)
    ],
    lambda p: ["Submit tasks: " + ", ".join(p.tasks.submit)] if p.tasks.submit else [],
    lambda p: bool(p.tasks.submit),
    _tasks_line,
)

RULES: Mapping[str, PermissionRule] = {
    r.capability: r for r in (CONFIG, EVENTS, MAIL, NET, SECRETS, STORAGE, TASKS, UI, WEBHOOKS)
}
"""Every capability's rule, by capability name."""

# Consent lines keep the order people read them in: reach, data, events, screen, settings.
_DESCRIBE_ORDER = (
    "net",
    "webhooks",
    "secrets",
    "mail",
    "storage",
    "events",
    "tasks",
    "ui",
    "config",
)


def refusal(
    permissions: Permissions, capability: str, method: str, arguments: Mapping[str, Any]
) -> str:
    """Why ``capability.method(**arguments)`` is refused, or ``""`` when it is granted."""
    rule = RULES.get(capability)
    if rule is None:
        return f"no such capability {capability!r}"
    return rule.refusal(permissions, method, arguments)


def permissions_beyond(requested: Permissions, granted: Permissions) -> list[str]:
    """What ``granted`` allows that ``requested`` did not ask for (empty: a true subset)."""
    lines = [line for name in _DESCRIBE_ORDER for line in RULES[name].beyond(requested, granted)]
    return lines + _inbound_beyond(requested, granted)


NO_PERMISSIONS = "No permissions: it can only compute on what it is given"


def _described(permissions: Permissions) -> list[str]:
    lines = [line for name in _DESCRIBE_ORDER for line in RULES[name].describe(permissions)]
    return lines + _inbound_describe(permissions)


def describe_permissions(permissions: Permissions) -> list[str]:
    """Plain-language lines for consent prompts and review screens."""
    return _described(permissions) or [NO_PERMISSIONS]


def _nest(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    for key in reversed(path):
        value = {key: value}
    return dict(value)


def _grants(data: dict[str, Any], path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every single grant in dumped permissions, as (path, the value that grants only it):
    one item of a list, one target of a credential, a number or flag that is set."""
    found: list[tuple[tuple[str, ...], Any]] = []
    for key, value in data.items():
        here = (*path, key)
        if isinstance(value, list):
            found += [(here, [item]) for item in value]
        elif isinstance(value, dict) and key == "credentials" and not path:
            found += [((*here, name), [t]) for name, targets in value.items() for t in targets]
        elif isinstance(value, dict):
            found += _grants(value, here)
        elif value not in (None, False, 0):
            found.append((here, value))
    return found


def grant_lines(permissions: Permissions) -> list[str]:
    """The plain words of each single grant, in :func:`describe_permissions`' sentences: one
    line per host, topic, surface, recipient, credential target, and one for a quota or flag.
    A grant that means nothing alone (``mail.per_hour`` without its recipients) is said with
    the rest of its table."""
    data = permissions.model_dump(mode="python")
    lines: list[str] = []
    for path, value in _grants(data):
        try:
            alone = _described(Permissions.model_validate(_nest(path, value)))
        except ValidationError:
            alone = []
        if not alone:  # the rest of the table gives it meaning
            table = data
            for key in path[:-1]:
                table = table[key]
            alone = _described(Permissions.model_validate(_nest(path[:-1], table)))
        lines += [line for line in alone if line not in lines]
    return lines


@dataclass(frozen=True)
class PermissionChanges:
    """What a version may do that the one before it could not (``added``) and what it no
    longer asks for (``removed``), each a line of :func:`grant_lines`."""

    added: list[str]
    removed: list[str]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)


def permission_changes(before: Permissions | None, after: Permissions) -> PermissionChanges:
    """The exact grants added and removed between two versions' permissions, in plain words
    (``before`` None: a first version, everything is added)."""
    old = grant_lines(before) if before is not None else []
    new = grant_lines(after)
    return PermissionChanges(
        added=[line for line in new if line not in old],
        removed=[line for line in old if line not in new],
    )
