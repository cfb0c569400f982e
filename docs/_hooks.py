"""MkDocs hook: the parts of the docs site that are generated from the code at build time.

A page asks for a generated part with a marker on a line of its own,
``<!-- generated: NAME -->`` (indented inside a list item), and the hook replaces the
marker with the Markdown that :data:`GENERATORS` builds from the code of this checkout
(the manifest's JSON Schema, the Typer app, the FastAPI apps' OpenAPI, the sandbox's
layer list). A new manifest field, CLI option or route therefore appears in the docs with
no edit; an unknown marker fails the build, so a typo cannot leave a page silently empty.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"^(?P<indent>[ \t]*)<!-- generated: (?P<name>[a-z0-9-]+) -->[ \t]*$", re.M)

_cache: dict[str, str] = {}


def on_pre_build(config: Any) -> None:
    """Generate every part before any page is rendered, from this checkout's code.

    mkdocstrings may import modules while it renders the API pages, from wherever the
    interpreter finds them (an editable install of another checkout, say); generating first,
    after dropping any ``plugport`` module from elsewhere, keeps the generated pages and the
    checkout in step. ``mkdocs serve`` rebuilds in one process, so each build starts afresh.
    """
    source = str(ROOT / "src")
    if sys.path[0] != source:
        sys.path.insert(0, source)
    for name, module in list(sys.modules.items()):
        where = getattr(module, "__file__", None) or ""
        if (name == "plugport" or name.startswith("plugport.")) and not where.startswith(source):
            del sys.modules[name]
    _cache.clear()
    for name, generate in GENERATORS.items():
        _cache[name] = generate()


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    def replace(match: re.Match[str]) -> str:
        name, indent = match.group("name"), match.group("indent")
        if name not in GENERATORS:
            known = ", ".join(sorted(GENERATORS))
            raise PluginError(
                f"{page.file.src_uri}: unknown generated part {name!r}; known: {known}"
            )
        return "\n".join(indent + line if line else line for line in _cache[name].splitlines())

    return MARKER.sub(replace, markdown)


# --- helpers ----------------------------------------------------------------------------------


def _cell(text: object) -> str:
    """A Markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", r"\|")


def _prose(docstring: str | None) -> str:
    """A docstring's first paragraph as Markdown: reST literals and roles become code."""
    first = (docstring or "").strip().split("\n\n")[0]
    first = re.sub(r":[a-z]+:`\.?~?([^`]+)`", r"`\1`", first)
    return " ".join(first.replace("``", "`").split())


def _code(value: object) -> str:
    return f"`{value}`" if value not in ("", None) else ""


# --- manifest reference -----------------------------------------------------------------------


def manifest_reference() -> str:
    """Every table and key of ``plugport.toml``, from the manifest's JSON Schema."""
    from plugport.manifest import manifest_json_schema

    schema = manifest_json_schema()
    definitions = schema.get("$defs", {})
    sections: list[str] = []

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        ref = node.get("$ref")
        return definitions[ref.rsplit("/", 1)[1]] if ref else node

    def walk(table: dict[str, Any], path: str, heading: str) -> None:
        rows = [
            "| key | type | default | bounds | description |",
            "|---|---|---|---|---|",
        ]
        nested: list[tuple[dict[str, Any], str, str]] = []
        required = set(table.get("required", ()))
        for key, raw in table.get("properties", {}).items():
            node = resolve(raw)
            dotted = f"{path}.{key}" if path else key
            refs = [o for o in node.get("anyOf", []) if "$ref" in o]
            if len(refs) == 1 and resolve(refs[0]).get("properties"):
                node = {
                    **resolve(refs[0]),
                    "description": node.get("description"),
                }  # optional table
            items = resolve(node.get("items", {})) if node.get("type") == "array" else {}
            values = node.get("additionalProperties")
            named = resolve(values) if isinstance(values, dict) else {}
            if named.get("properties"):
                nested.append((named, f"{dotted}.NAME", f"`[{dotted}.NAME]`"))
                what = f"see [`[{dotted}.NAME]`](#{_anchor(dotted + '.NAME')})"
                rows.append(f"| `{key}` | tables by name | | | {what} |")
                continue
            if node.get("properties"):
                nested.append((node, dotted, f"`[{dotted}]`"))
                rows.append(f"| `{key}` | table | | | see [`[{dotted}]`](#{_anchor(dotted)}) |")
                continue
            if items.get("properties"):
                nested.append((items, dotted, f"`[[{dotted}]]`"))
                what = f"see [`[[{dotted}]]`](#{_anchor(dotted)})"
                rows.append(f"| `{key}` | list of tables | | | {what} |")
                continue
            description = _prose(node.get("description") or raw.get("description"))
            if key in required:
                description = f"**required.** {description}".strip()
            has_default = "default" in node and node["default"] is not None
            shown = _code(json.dumps(node["default"])) if has_default else ""
            rows.append(
                f"| `{key}` | {_cell(_type(node))} | {_cell(shown)} "
                f"| {_cell(_bounds(node))} | {_cell(description)} |"
            )
        title = f"## {heading} {{#{_anchor(path) if path else 'top-level-keys'}}}"
        intro = _prose(table.get("description"))
        sections.append("\n\n".join(part for part in (title, intro, "\n".join(rows)) if part))
        for child, child_path, child_heading in nested:
            walk(child, child_path, child_heading)

    walk(schema, "", "Top-level keys")
    return "\n\n".join(sections) + "\n"


def _anchor(path: str) -> str:
    return "table-" + path.replace(".", "-").replace("_", "-").lower()


def _type(node: dict[str, Any]) -> str:
    if "anyOf" in node:
        kinds = [_type(option) for option in node["anyOf"] if option.get("type") != "null"]
        return " or ".join(kinds)
    if "enum" in node:
        return "one of " + ", ".join(f"`{value}`" for value in node["enum"])
    kind = node.get("type", "any")
    if kind == "array":
        return f"list of {_type(node.get('items', {}))}"
    if kind == "object":
        values = node.get("additionalProperties")
        if isinstance(values, dict):
            return f"table of name → {_type(values)}"
        return "table (free-form)" if values else "table"
    return {"integer": "integer", "string": "string", "boolean": "boolean"}.get(kind, kind)


def _bounds(node: dict[str, Any]) -> str:
    parts = []
    for option in node.get("anyOf", [node]):
        for key, label in (
            ("minimum", "≥ {}"),
            ("maximum", "≤ {}"),
            ("minLength", "length ≥ {}"),
            ("maxLength", "length ≤ {}"),
            ("maxItems", "at most {} items"),
            ("pattern", "matches `{}`"),
        ):
            if key in option:
                parts.append(label.format(option[key]))
        if isinstance(option.get("items"), dict):
            parts.extend(f"each {part}" for part in _bounds(option["items"]).split("; ") if part)
    return "; ".join(parts)


# --- CLI reference ----------------------------------------------------------------------------


def cli_reference() -> str:
    """Every command and group of ``plugport``, walked from the Typer app's click tree."""
    import typer.main

    from plugport.cli import app

    root = typer.main.get_command(app)
    context = root.context_class(root, info_name="plugport")
    blocks = [_command_block(root, context, "plugport", level=2)]
    for path, command, command_context in _walk(root, context, "plugport"):
        blocks.append(_command_block(command, command_context, path, level=3))
    return "\n\n".join(blocks) + "\n"


def _walk(group: Any, context: Any, path: str) -> Iterator[tuple[str, Any, Any]]:
    for name, command in getattr(group, "commands", {}).items():
        if command.hidden:
            continue
        child = command.context_class(command, info_name=name, parent=context)
        yield f"{path} {name}", command, child
        yield from _walk(command, child, f"{path} {name}")


def _command_block(command: Any, context: Any, path: str, *, level: int) -> str:
    lines = [f"{'#' * level} `{path}`", ""]
    help_text = (command.help or "").strip()
    if help_text:
        lines += [help_text, ""]
    usage = command.get_usage(context).removeprefix("Usage: ")
    usage = re.sub(r"\{(\w+)\}", lambda match: match.group(1).upper(), usage)
    lines += ["```text", usage, "```", ""]
    subcommands = [name for name, sub in getattr(command, "commands", {}).items() if not sub.hidden]
    if subcommands:
        links = ", ".join(f"[`{name}`](#{_cli_anchor(f'{path} {name}')})" for name in subcommands)
        lines += [f"Commands: {links}.", ""]
    params = [p for p in command.params if not p.hidden]
    if params:
        lines += ["| argument / option | type | default | description |", "|---|---|---|---|"]
        for param in params:
            names = ", ".join(f"`{opt}`" for opt in (*param.opts, *param.secondary_opts))
            if param.param_type_name == "argument":
                names = f"`{param.name.upper()}`" + (" (required)" if param.required else "")
            kind = param.display_type(context).strip("<>")
            if getattr(param, "multiple", False):
                kind += ", repeatable"
            default = param.default
            shown = "" if default in (None, False, "", ()) or param.required else f"`{default}`"
            description = param.help or ""
            if param.envvar:
                description += f" Environment: `{param.envvar}`."
            lines.append(f"| {names} | {_cell(kind)} | {_cell(shown)} | {_cell(description)} |")
    return "\n".join(lines).rstrip()


def _cli_anchor(path: str) -> str:
    """The id Python-Markdown's toc gives a heading ``` `plugport a b` ```."""
    return path.replace(" ", "-")


# --- HTTP routes ------------------------------------------------------------------------------


def http_routes() -> str:
    """The registry's and the host service's routes, from their apps' OpenAPI documents.

    Both apps are built offline in a temporary directory (SQLite, files), exactly as
    ``plugport serve`` and ``plugport host serve`` build them, and closed again."""
    from plugport.host.service import HostServiceSettings, create_host_service_app
    from plugport.registry.app import create_app
    from plugport.registry.settings import RegistrySettings

    with tempfile.TemporaryDirectory(prefix="plugport-docs-") as scratch:
        registry = create_app(RegistrySettings(data_dir=Path(scratch) / "registry"))
        try:
            registry_spec = registry.openapi()
        finally:
            registry.state.engine.dispose()
        service = create_host_service_app(HostServiceSettings(data_dir=Path(scratch) / "host"))
        try:
            service_spec = service.openapi()
        finally:
            asyncio.run(service.state.host_service.close())
    return (
        "### Registry (`plugport serve`)\n\n"
        + _routes_table(registry_spec)
        + "\n\n### Host service (`plugport host serve`)\n\n"
        + _routes_table(service_spec)
        + "\n"
    )


def _routes_table(spec: dict[str, Any]) -> str:
    rows = ["| method | path | tag | what it does |", "|---|---|---|---|"]
    for path, operations in sorted(spec["paths"].items()):
        for method, operation in operations.items():
            summary = _prose(operation.get("description")) or operation.get("summary", "")
            tags = ", ".join(operation.get("tags", ()))
            rows.append(f"| `{method.upper()}` | `{path}` | {tags} | {_cell(summary)} |")
    return "\n".join(rows)


# --- sandbox layers ---------------------------------------------------------------------------


def sandbox_layers() -> str:
    """The layers ``plugport doctor`` reports, in the order a worker applies them, and what
    each one protects (its module's docstring)."""
    from plugport.runtime.sandbox import LAYERS

    rows = ["| # | layer | module | what it protects |", "|---|---|---|---|"]
    for number, layer in enumerate(LAYERS, start=1):
        module = layer.module.__name__.rsplit(".", 1)[1]
        protects = re.sub(r"^Layers? `[^`]+`( and `[^`]+`)?: ", "", _prose(layer.module.__doc__))
        protects = protects[:1].upper() + protects[1:]
        if layer.name == "no_new_privs":
            protects = "See `parent_death` (one module for both)."
        rows.append(f"| {number} | `{layer.name}` | `sandbox/{module}.py` | {_cell(protects)} |")
    return "\n".join(rows) + "\n"


def permission_words() -> str:
    """How each permission reads at consent, from ``_permissions.describe_permissions``."""
    from plugport._permissions import describe_permissions
    from plugport.manifest import Permissions

    lines = [
        'network = ["api.slack.com", "*.github.com", "hooks.example.com:8443"]',
        'storage = "1 MiB"',
        'events.publish = ["tasks.processed"]',
        'events.subscribe = ["tasks.*"]',
        'ui = ["messages", "commands", "widgets"]',
        "config = true",
    ]
    rows = ["| manifest line under `[permissions]` | what the user is asked |", "|---|---|"]
    for line in [*lines, ""]:
        data = tomllib.loads(line)
        words = "; ".join(describe_permissions(Permissions.model_validate(data)))
        rows.append(f"| {_cell(_code(line)) or '(none)'} | {_cell(words)} |")
    return "\n".join(rows) + "\n"


def example_integrations() -> str:
    """One row per plugin in ``examples/``, from its manifest: what it does and what it asks."""
    from plugport._permissions import describe_permissions
    from plugport.manifest import load_manifest

    rows = [
        "| plugin | what it does | credentials | what the operator consents to |",
        "|---|---|---|---|",
    ]
    for folder in sorted(p.parent for p in (ROOT / "examples").glob("*/plugport.toml")):
        manifest = load_manifest(folder)
        credentials = ", ".join(
            f"`{name}` ({credential.kind})" for name, credential in manifest.credentials.items()
        )
        asks = "; ".join(describe_permissions(manifest.permissions))
        rows.append(
            f"| `{manifest.name}` (`examples/{folder.name}`) | {_cell(manifest.description)} "
            f"| {credentials or '-'} | {_cell(asks)} |"
        )
    return "\n".join(rows) + "\n"


# --- UI components ----------------------------------------------------------------------------


def component_reference() -> str:
    """Every component of a UI tree, from ``plugport.components.COMPONENT_SCHEMA``: its fields
    with types and bounds, the rules a schema keyword adds, and its example (each example is
    held to ``check_tree`` by tests/test_components.py)."""
    from plugport.components import COMPONENT_EXAMPLES, COMPONENT_SCHEMA, COMPONENT_TYPES

    definitions = COMPONENT_SCHEMA["$defs"]
    blocks = []
    for name in COMPONENT_TYPES:
        spec = definitions[name]
        required = set(spec.get("required", ())) - {"type"}
        rows = ["| field | type | bounds | description |", "|---|---|---|---|"]
        for key, node in spec["properties"].items():
            if key == "type":
                continue
            shown = f"`{key}`" + (" (required)" if key in required else "")
            rows.append(
                f"| {shown} | {_cell(_component_type(node))} | {_cell(_component_bounds(node))} "
                f"| {_cell(_prose(node.get('description')))} |"
            )
        parts = [
            f"### `{name}` {{#component-{name}}}",
            _prose(spec.get("description")),
            "\n".join(rows),
        ]
        rules = _component_rules(spec)
        if rules:
            parts.append(rules)
        example = json.dumps(COMPONENT_EXAMPLES[name], indent=2, ensure_ascii=False)
        parts.append(f"```json\n{example}\n```")
        blocks.append("\n\n".join(parts))
    return "\n\n".join(blocks) + "\n"


def _component_type(node: dict[str, Any]) -> str:
    if node.get("$ref") == "#/$defs/node":
        return "component"
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    if "enum" in node:
        return "one of " + ", ".join(f"`{json.dumps(value)}`" for value in node["enum"])
    if "anyOf" in node:
        return " or ".join(_component_type(option) for option in node["anyOf"])
    kind = node.get("type", "any")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array":
        return f"list of {_component_type(node.get('items', {}))}"
    if kind == "object" and node.get("properties"):
        keys = ", ".join(f"`{key}`" for key in node["properties"])
        wanted = ", ".join(f"`{key}`" for key in node.get("required", ()))
        return f"object ({keys}" + (f"; required: {wanted})" if wanted else ")")
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        return f"object of name → {_component_type(node['additionalProperties'])}"
    return str(kind)


def _component_bounds(node: dict[str, Any]) -> str:
    parts = []
    for key, label in (
        ("minimum", "≥ {}"),
        ("exclusiveMinimum", "> {}"),
        ("maximum", "≤ {}"),
        ("minLength", "length ≥ {}"),
        ("maxLength", "length ≤ {}"),
        ("minItems", "at least {} items"),
        ("maxItems", "at most {} items"),
        ("maxProperties", "at most {} keys"),
        ("pattern", "matches `{}`"),
    ):
        if key in node:
            parts.append(label.format(node[key]))
    items = node.get("items")
    if isinstance(items, dict) and "$ref" not in items:
        parts.extend(f"each {part}" for part in _component_bounds(items).split("; ") if part)
    return "; ".join(parts)


def _component_rules(spec: dict[str, Any]) -> str:
    """The rules of ``oneOf`` and ``if``/``then``/``else`` in words."""
    lines = []
    if "oneOf" in spec:
        names = [" and ".join(f"`{k}`" for k in option["required"]) for option in spec["oneOf"]]
        lines.append(f"Give exactly one of {', '.join(names)}.")
    for rule in spec.get("allOf", ()):
        if "if" not in rule:
            continue
        [(key, condition)] = rule["if"]["properties"].items()
        needs = ", ".join(f"`{k}`" for k in rule["then"]["required"])
        otherwise = ", ".join(f"`{k}`" for k in rule.get("else", {}).get("required", ()))
        line = f"When `{key}` is `{json.dumps(condition['const'])}`, {needs} are required"
        lines.append(line + (f"; otherwise {otherwise}." if otherwise else "."))
    return " ".join(lines)


def _template_file(template: str, relative: str, language: str) -> Callable[[], str]:
    """A fenced block with one file of ``plugport init acme.counter --template TEMPLATE``, as
    it is generated today (so the guide cannot drift from the template)."""

    def generate() -> str:
        from plugport import scaffold

        with tempfile.TemporaryDirectory(prefix="plugport-docs-") as scratch:
            root = Path(scratch) / "counter"
            scaffold.create_plugin("acme.counter", template, root)
            text = (root / relative).read_text(encoding="utf-8")
        return f"```{language}\n{text.rstrip()}\n```\n"

    return generate


def on_files(files: Any, config: Any) -> Any:
    """Publish the component schema beside its reference page, as ``reference/components.json``:
    the document editors and the host's tests validate trees against."""
    from mkdocs.structure.files import File

    from plugport.components import COMPONENT_SCHEMA

    content = json.dumps(COMPONENT_SCHEMA, indent=2, ensure_ascii=False) + "\n"
    files.append(File.generated(config, "reference/components.json", content=content))
    return files


GENERATORS: dict[str, Callable[[], str]] = {
    "cli-reference": cli_reference,
    "component-reference": component_reference,
    "example-integrations": example_integrations,
    "http-routes": http_routes,
    "manifest-reference": manifest_reference,
    "permission-words": permission_words,
    "sandbox-layers": sandbox_layers,
    "widget-template-manifest": _template_file("widget", "plugport.toml", "toml"),
    "widget-template-code": _template_file("widget", "counter/plugin.py", "python"),
    "widget-template-tests": _template_file("widget", "tests/test_plugin.py", "python"),
}
