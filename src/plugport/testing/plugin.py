"""The pytest plugin (entry point ``pytest11: plugport``): the ``plugin`` and
``plugin_factory`` fixtures, the ``plugport`` marker, ``--plugport-sandbox`` and
``--plugport-record``.

Start-up cost is the rule here: this module is imported by every pytest run in an environment
where Plugport is installed, so it imports only pytest and the standard library; the runtime is
imported, and the zygote started, only once a collected test asks for a fixture.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

if TYPE_CHECKING:
    from plugport.testing._handle import PluginHandle
    from plugport.testing._runner import Runner
    from plugport.testing._world import World

__all__ = ["PluginFactory", "plugin", "plugin_factory"]

FIXTURES = frozenset({"plugin", "plugin_factory"})
_RUNNER = pytest.StashKey["Runner"]()
_WORLD = pytest.StashKey["World"]()
_RECORDED = pytest.StashKey[dict[str, dict[tuple[str, str, str, str], None]]]()
_TAIL = 20  # log lines shown under a failed test


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("plugport", "Plugport plugins under test")
    group.addoption(
        "--plugport-sandbox",
        choices=("strict", "best-effort"),
        default="strict",
        help="sandbox policy for plugins under test (default: strict, as in production)",
    )
    group.addoption(
        "--plugport-record",
        metavar="FILE",
        default=None,
        help="write every capability call the plugins made, with its verdict, to FILE (JSON, "
        "read by `plugport check --recorded FILE`)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "plugport(path=None, config=None, routes=None, sandbox=None): how the `plugin` "
        "fixture loads the plugin under test",
    )
    config.stash[_RECORDED] = {}


def pytest_sessionstart(session: pytest.Session) -> None:
    """In a plugin's own directory, boot the zygote and import the host side now, while pytest
    collects: that overlap is most of what makes a plugin's test run start fast."""
    start = session.config.invocation_params.dir
    if any((folder / "plugport.toml").is_file() for folder in (start, *start.parents)):
        _runner(session.config)
        # The zygote now boots in its own process, on the other core: import the host side
        # meanwhile (on this thread, never on the runner's: see _runner.py).
        import plugport.testing._world  # noqa: F401


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Elsewhere, boot it once collection shows that a test needs a plugin."""
    for item in items:
        if FIXTURES & set(getattr(item, "fixturenames", ())):
            _runner(item.config)
            return


def _runner(config: pytest.Config) -> Runner:
    runner = config.stash.get(_RUNNER, None)
    if runner is None:
        from plugport.testing._runner import Runner

        runner = config.stash[_RUNNER] = Runner()
    return runner


def _fail(exc: Exception) -> NoReturn:
    __tracebackhide__ = True
    from plugport.testing._world import describe

    pytest.fail(f"plugport: {describe(exc)}", pytrace=False)  # type: ignore[arg-type]


class PluginFactory:
    """``plugin_factory(path, config=..., routes=[{route() arguments}])``: load a plugin into
    the test's runtime and return its handle. Relative paths start at the test file's
    directory."""

    def __init__(self, world: World, base: Path) -> None:
        self.world = world
        self.base = base

    def __call__(
        self,
        path: Path | str,
        *,
        config: Mapping[str, Any] | None = None,
        routes: list[dict[str, Any]] | None = None,
    ) -> PluginHandle:
        __tracebackhide__ = True
        from plugport.errors import PlugportError

        try:
            return self.world.load(self.base / path, config=config, routes=routes)
        except PlugportError as exc:
            _fail(exc)


@pytest.fixture
def plugin_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PluginFactory]:
    """Load plugins into one real runtime for this test; events flow between them."""
    from plugport.errors import PlugportError
    from plugport.testing._world import World

    marker = request.node.get_closest_marker("plugport")
    sandbox = (marker.kwargs.get("sandbox") if marker else None) or request.config.getoption(
        "--plugport-sandbox"
    )
    try:
        world = World(_runner(request.config), tmp_path / "plugport-home", sandbox)
    except PlugportError as exc:
        _fail(exc)
    request.node.stash[_WORLD] = world
    try:
        yield PluginFactory(world, request.path.parent)
    finally:
        _keep_calls(request.config, world)
        for handle in world.handles.values():
            handle.close()
        world.close()


@pytest.fixture
def plugin(request: pytest.FixtureRequest, plugin_factory: PluginFactory) -> PluginHandle:
    """The plugin whose ``plugport.toml`` is nearest above the test file, running in the real
    sandbox (``@pytest.mark.plugport(path=..., config=..., routes=..., sandbox=...)``)."""
    __tracebackhide__ = True
    from plugport.errors import PlugportError
    from plugport.testing._world import find_plugin_dir

    marker = request.node.get_closest_marker("plugport")
    options = dict(marker.kwargs) if marker else {}
    options.pop("sandbox", None)
    path = options.pop("path", None)
    try:
        where = request.path.parent / path if path else find_plugin_dir(request.path.parent)
    except PlugportError as exc:
        raise _fail(exc) from None
    return plugin_factory(where, **options)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Under a failed test: the requests nothing answered, the denied calls and the end of the
    plugin's log, which usually say why."""
    report = yield
    world = item.stash.get(_WORLD, None)
    if world is None or not report.failed:
        return report
    unmatched = world.network.unmatched
    if unmatched:
        lines = [f"{r.method} {r.url}" for r in unmatched]
        lines.append(f"declared: {world.network.declared()}")
        report.sections.append(("plugport: requests nothing answered", "\n".join(lines)))
    for handle in world.handles.values():
        denied = [str(c) for c in handle.calls if c.verdict == "denied"]
        if denied:
            report.sections.append((f"plugport: {handle.name} denied calls", "\n".join(denied)))
        logs = handle.logs[-_TAIL:]
        if logs:
            report.sections.append((f"plugport: {handle.name} log", "\n".join(logs)))
    return report


def _keep_calls(config: pytest.Config, world: World) -> None:
    if not config.getoption("--plugport-record"):
        return
    recorded = config.stash[_RECORDED]
    for handle in world.handles.values():
        calls = recorded.setdefault(handle.name, {})
        for call in handle.calls:
            calls[call.capability, call.method, call.verdict, call.reason] = None


def _recorded_json(recorded: dict[str, dict[tuple[str, str, str, str], None]]) -> Any:
    plugins = [
        {
            "plugin": name,
            "calls": [
                {"capability": c, "method": m, "verdict": v, "reason": r} for c, m, v, r in calls
            ],
        }
        for name, calls in sorted(recorded.items())
    ]
    return plugins[0] if len(plugins) == 1 else plugins


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist: gather what each worker recorded, so the controller writes one file."""
    output = getattr(node, "workeroutput", {}).get("plugport_recorded")
    if output:
        recorded = node.config.stash[_RECORDED]
        for name, calls in json.loads(output).items():
            target = recorded.setdefault(name, {})
            for call in calls:
                target[tuple(call)] = None


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    runner = config.stash.get(_RUNNER, None)
    if runner is not None:
        runner.close()
    path = config.getoption("--plugport-record")
    if not path:
        return
    recorded = config.stash[_RECORDED]
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller writes the file
        workeroutput["plugport_recorded"] = json.dumps(
            {name: list(calls) for name, calls in recorded.items()}
        )
        return
    if recorded:
        Path(path).write_text(json.dumps(_recorded_json(recorded), indent=2) + "\n")
