"""The pure decisions of workflows: whether a workflow document is a valid DAG of task steps
(and, when not, which step and field is wrong), what payload a step gets from the run's input
and its ancestors' results, and what a run does next given the state of every step. Data in,
data out: :mod:`~plugport.host.tasks.workflows` applies these decisions to its tables with
conditional updates, so every node (and every replay after a crash) decides the same thing.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from plugport._task_rules import check_document, resolve_pointer
from plugport.errors import TaskValidationError, WorkflowError

__all__ = [
    "MAX_STEPS",
    "ON_FAILURE",
    "RUN_STATES",
    "STEP_STATES",
    "Advance",
    "Compensation",
    "Reference",
    "WorkflowDefinition",
    "WorkflowStep",
    "advance",
    "build_payload",
    "check_input",
    "compensation_order",
    "parse_workflow",
    "ready_steps",
    "references_in",
    "run_outcome",
]

MAX_STEPS = 100
ON_FAILURE = ("stop", "continue", "compensate")
RUN_STATES = ("running", "succeeded", "failed", "cancelled", "compensating", "compensated")
FINAL_RUN_STATES = frozenset({"succeeded", "failed", "cancelled", "compensated"})
STEP_STATES = (
    "pending",
    "queued",
    "running",
    "succeeded",
    "failed",
    "skipped",
    "cancelled",
    "compensating",
    "compensated",
)
ACTIVE_STEP_STATES = frozenset({"queued", "running", "compensating"})
FAILED_STEP_STATES = frozenset({"failed", "cancelled"})

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
_TOP_KEYS = frozenset({"name", "description", "input", "steps"})
_STEP_KEYS = frozenset(
    {"task", "plugin", "payload", "needs", "retry", "on-failure", "compensate", "description"}
)
_RETRY_KEYS = frozenset({"max-attempts"})
_COMPENSATE_KEYS = frozenset({"task", "plugin", "payload"})
_POINTER_ESCAPE = re.compile(r"~(?![01])")


@dataclass(frozen=True)
class Reference:
    """``"$input<pointer>"`` (``step`` is ``None``) or ``"$steps/<step>/result<pointer>"`` at
    ``field`` (a dotted path in the step, e.g. ``payload.text``)."""

    text: str
    step: str | None
    pointer: str
    field: str


@dataclass(frozen=True)
class Compensation:
    """The task that undoes a succeeded step when its run is compensated."""

    task: str
    plugin: str | None
    payload: Any
    references: tuple[Reference, ...]


@dataclass(frozen=True)
class WorkflowStep:
    name: str
    task: str
    plugin: str | None
    payload: Any
    needs: tuple[str, ...]
    max_attempts: int | None
    on_failure: Literal["stop", "continue", "compensate"]
    compensate: Compensation | None
    references: tuple[Reference, ...]
    description: str = ""

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "task": self.task,
            "plugin": self.plugin,
            "needs": list(self.needs),
            "on_failure": self.on_failure,
            "max_attempts": self.max_attempts,
            "compensate": None if self.compensate is None else self.compensate.task,
            "description": self.description,
        }


@dataclass(frozen=True)
class WorkflowDefinition:
    """A validated workflow: ``order`` is a topological order of the steps (each after
    everything it needs, ties in the file's order); ``document`` the dict it was parsed from,
    which is what a run stores and parses again."""

    name: str
    description: str
    input_schema: Mapping[str, Any]
    steps: Mapping[str, WorkflowStep]
    order: tuple[str, ...]
    document: Mapping[str, Any]

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "input": dict(self.input_schema),
            "steps": [self.steps[name].public() for name in self.order],
        }

    def ancestors(self, step: str) -> frozenset[str]:
        """Every step ``step`` needs, directly or through another."""
        found: set[str] = set()
        todo = list(self.steps[step].needs)
        while todo:
            name = todo.pop()
            if name not in found:
                found.add(name)
                todo.extend(self.steps[name].needs)
        return frozenset(found)


# --- parsing ----------------------------------------------------------------------------------


def parse_workflow(source: str | Mapping[str, Any]) -> WorkflowDefinition:
    """``source`` (TOML text or the dict TOML gives) as a :class:`WorkflowDefinition`, or a
    :class:`WorkflowError` naming the workflow, the step and the field at fault."""
    document, name, description, schema = _header(source)
    raw_steps = document.get("steps")
    if not isinstance(raw_steps, Mapping) or not raw_steps:
        raise WorkflowError(name, None, "steps", "a workflow needs at least one [steps.NAME]")
    if len(raw_steps) > MAX_STEPS:
        raise WorkflowError(
            name, None, "steps", f"{len(raw_steps)} steps; a workflow has at most {MAX_STEPS}"
        )
    steps = {step: _parse_step(name, step, raw) for step, raw in raw_steps.items()}
    for step in steps.values():
        for need in step.needs:
            if need not in steps:
                raise WorkflowError(
                    name,
                    step.name,
                    "needs",
                    f"names {need!r}, which is not a step of the workflow "
                    f"(steps: {', '.join(steps)})",
                )
    order = _topological(name, steps)
    definition = WorkflowDefinition(name, description, dict(schema), steps, order, _plain(document))
    for step in steps.values():
        allowed = definition.ancestors(step.name)
        _check_references(definition, step, step.references, allowed, own=False)
        if step.compensate is not None:
            _check_references(
                definition, step, step.compensate.references, allowed | {step.name}, own=True
            )
    return definition


def _header(
    source: str | Mapping[str, Any],
) -> tuple[Mapping[str, Any], str, str, Mapping[str, Any]]:
    """The document, its name, description and input schema, checked."""
    if isinstance(source, str):
        try:
            document: Any = tomllib.loads(source)
        except tomllib.TOMLDecodeError as exc:
            raise WorkflowError("", None, "", f"not TOML: {exc}") from None
    else:
        document = source
    if not isinstance(document, Mapping):
        raise WorkflowError("", None, "", "a workflow is a table (TOML) or a dict")
    name = document.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise WorkflowError(
            str(name or ""),
            None,
            "name",
            "is required: 1-64 letters, digits, '_' and '-', starting with a letter or '_'",
        )
    _no_unknown(name, None, "", document, _TOP_KEYS)
    description = document.get("description", "")
    if not isinstance(description, str):
        raise WorkflowError(name, None, "description", "must be text")
    schema = document.get("input", {})
    if not isinstance(schema, Mapping):
        raise WorkflowError(name, None, "input", "must be a table (a JSON Schema)")
    _check_schema(name, schema)
    return document, name, description, schema


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _no_unknown(
    workflow: str, step: str | None, prefix: str, table: Mapping[str, Any], known: frozenset[str]
) -> None:
    for key in table:
        if key not in known:
            raise WorkflowError(
                workflow,
                step,
                f"{prefix}{key}",
                f"is not a known key (known: {', '.join(sorted(known))})",
            )


def _check_schema(workflow: str, schema: Mapping[str, Any]) -> None:
    if not schema:
        return
    import jsonschema

    try:
        jsonschema.Draft202012Validator.check_schema(dict(schema))
    except jsonschema.SchemaError as exc:
        where = "".join(f"/{p}" for p in exc.absolute_path)
        raise WorkflowError(
            workflow, None, f"input{where}", f"is not a valid JSON Schema: {exc.message}"
        ) from None


def _parse_step(workflow: str, name: str, raw: Any) -> WorkflowStep:
    if not _NAME.match(name):
        raise WorkflowError(
            workflow,
            name,
            "",
            "a step name is 1-64 letters, digits, '_' and '-', starting with a letter or '_'",
        )
    if not isinstance(raw, Mapping):
        raise WorkflowError(workflow, name, "", "a step is a table ([steps.NAME])")
    _no_unknown(workflow, name, "", raw, _STEP_KEYS)
    task = _task_name(workflow, name, "task", raw.get("task"))
    plugin = _plugin_name(workflow, name, "plugin", raw.get("plugin"))
    needs = raw.get("needs", [])
    if not isinstance(needs, list) or not all(isinstance(n, str) for n in needs):
        raise WorkflowError(workflow, name, "needs", "must be a list of step names")
    if len(set(needs)) != len(needs):
        raise WorkflowError(workflow, name, "needs", "names a step twice")
    if name in needs:
        raise WorkflowError(
            workflow, name, "needs", f"a step cannot need itself ({name} -> {name})"
        )
    retry = raw.get("retry", {})
    if not isinstance(retry, Mapping):
        raise WorkflowError(workflow, name, "retry", "must be a table, e.g. { max-attempts = 5 }")
    _no_unknown(workflow, name, "retry.", retry, _RETRY_KEYS)
    attempts = retry.get("max-attempts")
    if attempts is not None and (
        isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 100
    ):
        raise WorkflowError(
            workflow, name, "retry.max-attempts", f"must be an integer 1 to 100, not {attempts!r}"
        )
    on_failure = raw.get("on-failure", "stop")
    if on_failure not in ON_FAILURE:
        raise WorkflowError(
            workflow,
            name,
            "on-failure",
            f"must be one of {', '.join(ON_FAILURE)}, not {on_failure!r}",
        )
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise WorkflowError(workflow, name, "description", "must be text")
    payload = raw.get("payload", {})
    references = tuple(references_in(workflow, name, "payload", payload))
    compensate = None
    if "compensate" in raw:
        table = raw["compensate"]
        if not isinstance(table, Mapping):
            raise WorkflowError(
                workflow, name, "compensate", "must be a table: { task = ..., payload = ... }"
            )
        _no_unknown(workflow, name, "compensate.", table, _COMPENSATE_KEYS)
        compensate_payload = table.get("payload", {})
        compensate = Compensation(
            _task_name(workflow, name, "compensate.task", table.get("task")),
            _plugin_name(workflow, name, "compensate.plugin", table.get("plugin")),
            _plain(compensate_payload),
            tuple(references_in(workflow, name, "compensate.payload", compensate_payload)),
        )
    return WorkflowStep(
        name=name,
        task=task,
        plugin=plugin,
        payload=_plain(payload),
        needs=tuple(needs),
        max_attempts=attempts,
        on_failure=on_failure,
        compensate=compensate,
        references=references,
        description=description,
    )


def _task_name(workflow: str, step: str, field: str, value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 100:
        raise WorkflowError(workflow, step, field, "is required: the task type to run")
    return value


def _plugin_name(workflow: str, step: str, field: str, value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise WorkflowError(workflow, step, field, "must be a plugin name")
    return value


def references_in(workflow: str, step: str, field: str, value: Any) -> Iterable[Reference]:
    """Every reference in ``value`` (nested in objects and arrays), or a
    :class:`WorkflowError` for a ``$`` string that is not one (escape a literal ``$`` as
    ``$$``) or a bad JSON pointer."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from references_in(workflow, step, f"{field}.{key}", item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from references_in(workflow, step, f"{field}[{index}]", item)
    elif isinstance(value, str) and value.startswith("$") and not value.startswith("$$"):
        yield _reference(workflow, step, field, value)


def _reference(workflow: str, step: str, field: str, text: str) -> Reference:
    if text.startswith("$input"):
        source, pointer = None, text[len("$input") :]
    elif text.startswith("$steps/"):
        source, _, rest = text[len("$steps/") :].partition("/")
        if not rest.startswith("result") or rest[len("result") :][:1] not in ("", "/"):
            raise WorkflowError(
                workflow,
                step,
                field,
                f"{text!r}: a step reference is $steps/<step>/result<pointer>",
            )
        pointer = rest[len("result") :]
    else:
        raise WorkflowError(
            workflow,
            step,
            field,
            f"{text!r} is not a reference ($input/..., $steps/<step>/result/...); "
            "write $$ for a literal $",
        )
    if pointer and not pointer.startswith("/"):
        raise WorkflowError(
            workflow, step, field, f"{text!r}: the JSON pointer must start with '/'"
        )
    if _POINTER_ESCAPE.search(pointer):
        raise WorkflowError(
            workflow, step, field, f"{text!r}: '~' in a JSON pointer must be ~0 or ~1"
        )
    return Reference(text, source, pointer, field)


def _topological(workflow: str, steps: Mapping[str, WorkflowStep]) -> tuple[str, ...]:
    """Kahn's order, ties in the file's order; a cycle is named as a path ("a -> b -> a")."""
    color: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(name: str) -> None:
        color[name] = 1
        path.append(name)
        for need in steps[name].needs:
            if color.get(need) == 1:
                cycle = [*path[path.index(need) :], need]
                raise WorkflowError(
                    workflow,
                    cycle[0],
                    "needs",
                    f"the steps form a cycle: {' -> '.join(reversed(cycle))}",
                )
            if need not in color:
                visit(need)
        path.pop()
        color[name] = 2

    for name in steps:
        if name not in color:
            visit(name)
    order: list[str] = []
    placed: set[str] = set()
    while len(order) < len(steps):
        for name, step in steps.items():
            if name not in placed and all(n in placed for n in step.needs):
                order.append(name)
                placed.add(name)
                break
    return tuple(order)


def _check_references(
    definition: WorkflowDefinition,
    step: WorkflowStep,
    references: Iterable[Reference],
    allowed: frozenset[str],
    *,
    own: bool,
) -> None:
    for ref in references:
        if ref.step is None:
            continue
        if ref.step not in definition.steps:
            raise WorkflowError(
                definition.name,
                step.name,
                ref.field,
                f"refers to $steps/{ref.step}, which is not a step of the workflow",
            )
        if ref.step == step.name and not own:
            raise WorkflowError(definition.name, step.name, ref.field, "refers to its own result")
        if ref.step not in allowed:
            raise WorkflowError(
                definition.name,
                step.name,
                ref.field,
                f"step {step.name!r} refers to $steps/{ref.step} but does not need it "
                f"(add {ref.step!r} to needs)",
            )


# --- running ----------------------------------------------------------------------------------


def check_input(definition: WorkflowDefinition, value: Any) -> None:
    """Raise :class:`WorkflowError` (``field``: ``input`` + the JSON pointer) when ``value``
    breaks the workflow's ``[input]`` schema or is not JSON."""
    try:
        check_document(f"workflow {definition.name}", "input", definition.input_schema, value)
    except TaskValidationError as exc:
        raise WorkflowError(definition.name, None, f"input{exc.field}", exc.reason) from None


def build_payload(
    definition: WorkflowDefinition,
    step: str,
    input: Any,
    results: Mapping[str, Any],
    *,
    compensation: bool = False,
) -> Any:
    """The payload of ``step`` (or of its compensation) with every reference replaced by the
    value it points at; a :class:`WorkflowError` names the step, the field and the reference
    when the input or a result has nothing there."""
    spec = definition.steps[step]
    template: Any
    if compensation:
        if spec.compensate is None:
            raise WorkflowError(definition.name, step, "compensate", "the step has none")
        template, prefix = spec.compensate.payload, "compensate.payload"
    else:
        template, prefix = spec.payload, "payload"

    def fill(value: Any, field: str) -> Any:
        if isinstance(value, Mapping):
            return {k: fill(v, f"{field}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v, f"{field}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, str) and value.startswith("$$"):
            return value[1:]
        if isinstance(value, str) and value.startswith("$"):
            ref = _reference(definition.name, step, field, value)
            if ref.step is None:
                document = input
            elif ref.step in results:
                document = results[ref.step]
            else:
                raise WorkflowError(
                    definition.name, step, field, f"{ref.text}: step {ref.step!r} has no result"
                )
            try:
                return resolve_pointer(document, ref.pointer)
            except KeyError as exc:
                raise WorkflowError(
                    definition.name, step, field, f"{ref.text}: {exc.args[0]}"
                ) from None
        return value

    return fill(template, prefix)


def ready_steps(definition: WorkflowDefinition, states: Mapping[str, str]) -> list[str]:
    """Pending steps whose every need succeeded, in topological order."""
    return [
        name
        for name in definition.order
        if states.get(name, "pending") == "pending"
        and all(states.get(n) == "succeeded" for n in definition.steps[name].needs)
    ]


def compensation_order(definition: WorkflowDefinition, states: Mapping[str, str]) -> list[str]:
    """Succeeded steps that declare ``compensate``, in reverse topological order: what a
    compensated run undoes, last done first."""
    return [
        name
        for name in reversed(definition.order)
        if states.get(name) == "succeeded" and definition.steps[name].compensate is not None
    ]


@dataclass(frozen=True)
class Advance:
    """What a run does next: its state (final once nothing is in flight), the pending steps
    to skip, the steps to submit and the compensation to submit (one at a time)."""

    run_state: str
    skip: tuple[str, ...] = ()
    submit: tuple[str, ...] = ()
    compensate: tuple[str, ...] = ()
    error: str = ""

    @property
    def final(self) -> bool:
        return self.run_state in FINAL_RUN_STATES


def advance(
    definition: WorkflowDefinition,
    states: Mapping[str, str],
    *,
    compensation_failed: frozenset[str] = frozenset(),
) -> Advance:
    """The next move of a running (or compensating) run, from the state of every step.

    Failure policies, strongest first when several steps failed: ``compensate`` (nothing new
    starts; once nothing is in flight the succeeded steps are undone one at a time, last done
    first; the run ends ``compensated``, or ``failed`` if a compensation failed), ``stop``
    (nothing new starts, pending steps are skipped, the run ends ``failed`` once its running
    steps finished), ``continue`` (the failed step's dependents are skipped, independent
    branches go on; the run ends ``failed``). A step whose task was cancelled counts as failed.
    ``compensation_failed``: steps whose compensation task failed.
    """
    failed = [
        n
        for n in definition.order
        if states.get(n) in FAILED_STEP_STATES and n not in compensation_failed
    ]
    policies = {definition.steps[n].on_failure for n in failed}
    pending = tuple(n for n in definition.order if states.get(n, "pending") == "pending")
    active = any(states.get(n) in ACTIVE_STEP_STATES for n in definition.order)
    error = f"step {failed[0]!r} failed" if failed else ""
    if "compensate" in policies or compensation_failed:
        return _compensating(
            definition,
            states,
            pending=pending,
            active=active,
            error=error,
            compensation_failed=compensation_failed,
        )
    if "stop" in policies:
        return Advance("running" if active else "failed", skip=pending, error=error)
    after = dict(states)
    skip: list[str] = []
    for name in pending:
        if any(
            after.get(n) in FAILED_STEP_STATES or after.get(n) == "skipped"
            for n in definition.steps[name].needs
        ):
            after[name] = "skipped"
            skip.append(name)
    submit = tuple(ready_steps(definition, after))
    if active or submit:
        return Advance("running", skip=tuple(skip), submit=submit, error=error)
    if failed:
        return Advance("failed", skip=tuple(skip), error=error)
    return Advance("succeeded", skip=tuple(skip))


def _compensating(
    definition: WorkflowDefinition,
    states: Mapping[str, str],
    *,
    pending: tuple[str, ...],
    active: bool,
    error: str,
    compensation_failed: frozenset[str],
) -> Advance:
    """A run being undone: wait for what is in flight, then one compensation at a time."""
    if active:
        return Advance("compensating", skip=pending, error=error)
    todo = compensation_order(definition, states)
    if todo:
        return Advance("compensating", skip=pending, compensate=(todo[0],), error=error)
    if compensation_failed:
        names = ", ".join(sorted(compensation_failed))
        return Advance("failed", skip=pending, error=f"{error}; compensation failed: {names}")
    return Advance("compensated", skip=pending, error=error)


def run_outcome(definition: WorkflowDefinition, states: Mapping[str, str]) -> str | None:
    """The run's final state once nothing is left to run or undo, else ``None``."""
    decided = advance(definition, states)
    return decided.run_state if decided.final else None
