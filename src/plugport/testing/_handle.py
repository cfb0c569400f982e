"""What a test holds: one plugin running in the real sandbox, called synchronously, with its
capability fakes and what it did (capability calls with verdicts, audit entries, log lines),
and assertions whose failures say what happened instead."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from plugport._permissions import RULES
from plugport.errors import InvalidInputError, PluginCallError, PlugportError
from plugport.manifest import Manifest
from plugport.runtime.broker import Grants, check_grant
from plugport.runtime.capabilities import CAPABILITIES

if TYPE_CHECKING:
    from plugport.runtime.audit import AuditEvent
    from plugport.testing._runner import Runner
    from plugport.testing._world import World

__all__ = ["CapabilityCall", "PluginHandle"]


@dataclass(frozen=True)
class CapabilityCall:
    """One capability call the plugin made: ``verdict`` is ``granted`` or ``denied``; a
    granted call that then failed (a quota, a bad argument) keeps the error in ``reason``."""

    capability: str
    method: str
    verdict: str
    reason: str

    @property
    def name(self) -> str:
        return f"{self.capability}.{self.method}"

    def json(self) -> dict[str, str]:
        return {
            "capability": self.capability,
            "method": self.method,
            "verdict": self.verdict,
            "reason": self.reason,
        }

    def __str__(self) -> str:
        return f"{self.name} ({self.verdict}{': ' + self.reason if self.reason else ''})"


class _OnLoop:
    """A fake as the test's thread sees it: every attribute read and call runs on the runtime's
    thread (awaited there when it is a coroutine), so tests stay synchronous."""

    def __init__(self, fake: object, runner: Runner) -> None:
        self._fake = fake
        self._runner = runner

    def __getattr__(self, name: str) -> Any:
        __tracebackhide__ = True
        value = self._runner.call(getattr, self._fake, name)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True
            try:
                return self._runner.call(value, *args, **kwargs)
            except PlugportError as exc:
                _reraise(exc)

        return call

    def __repr__(self) -> str:
        return f"<{type(self._fake).__name__} for {getattr(self._fake, 'plugin', '?')}>"


def _reraise(exc: PlugportError) -> NoReturn:
    """Raise ``exc`` here without the runtime's frames (they explain nothing about the plugin),
    with the plugin's own traceback as a note."""
    __tracebackhide__ = True
    if isinstance(exc, PluginCallError) and exc.traceback and not getattr(exc, "__notes__", None):
        exc.add_note(f"the plugin's traceback:\n{exc.traceback.rstrip()}")
    raise exc.with_traceback(None) from None


class PluginHandle:
    """One plugin under test. ``command``/``hook``/``emit`` return what the plugin returned
    and raise what it raised (:class:`PluginCallError` with its traceback). ``storage``,
    ``net``, ``events``, ``config``, ``ui``, ``secrets`` and ``webhooks`` are the capability
    fakes."""

    storage: Any
    net: Any
    webhooks: Any
    events: Any
    config: Any
    ui: Any

    def __init__(self, world: World, manifest: Manifest, path: Path, grants: Grants) -> None:
        self._world = world
        self._runner = world.runner
        self.name = manifest.name
        self.manifest = manifest
        self.path = path
        self.grants = grants
        runtime = world.runtime
        # One fake per capability, from the capability list: a new capability gets its fake
        # (and a test attribute of its name) here without an edit.
        self._fakes: dict[str, Any] = {}
        for name, capability in CAPABILITIES.items():
            if capability.fake is None:  # tests/runtime/test_capabilities.py forbids it
                raise TypeError(f"capability {name!r} has no fake")
            self._fakes[name] = self._runner.call(capability.fake, runtime, grants)
            setattr(self, name, _OnLoop(self._fakes[name], self._runner))

    # --- calling the plugin ---------------------------------------------------------------

    def command(self, command_id: str, /, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        runtime = self._world.runtime
        return self._run(runtime.run_command(self.name, command_id, list(args), kwargs))

    def hook(self, name: str, /, **kwargs: Any) -> Any:
        """Call this plugin's implementation of hook ``name`` alone."""
        __tracebackhide__ = True
        return self._run(self._world.runtime.call_hook_on(self.name, name, kwargs))

    def webhook(
        self,
        endpoint: str,
        /,
        body: bytes | str | Any,
        headers: Mapping[str, str] | None = None,
        *,
        delivery_id: str | None = None,
        attempt: int = 1,
        secret: str | bytes | None = None,
    ) -> Any:
        """Hand the plugin's ``@webhook(endpoint)`` handler one delivery, as the host does once
        it verified and stored it. ``body``: bytes, text, or anything JSON-able (sent as
        JSON). With ``secret``, ``headers`` are first checked by the endpoint's verifier as the
        host checks them (sign them with :func:`plugport.testing.sign_webhook`); a refusal
        raises :class:`~plugport.errors.WebhookRefusedError` and the handler is not called.
        The headers reach the handler as the host keeps them: lower-case, without the
        signature or token."""
        __tracebackhide__ = True
        import json
        import time

        from plugport.host.inbound.verifiers import canonical_headers, safe_headers, verify

        if isinstance(body, str):
            raw = body.encode()
        elif isinstance(body, bytes | bytearray):
            raw = bytes(body)
        else:
            raw = json.dumps(body).encode()
        spec = self.manifest.webhooks.get(endpoint)
        given = dict(headers or {})
        now = time.time()
        if secret is not None:
            if spec is None:
                raise InvalidInputError(
                    f"plugin {self.name!r} declares no webhook {endpoint!r} "
                    f"(it has: {', '.join(self.manifest.webhooks) or 'none'})"
                )
            key = secret.encode() if isinstance(secret, str) else secret
            verified = verify(spec, key, given, raw, now)
            if delivery_id is None:  # the id the host would keep (the sender's or derived)
                delivery_id = verified.delivery_id
        kept = safe_headers(spec, given) if spec is not None else canonical_headers(given)
        event = {
            "endpoint": endpoint,
            "delivery_id": delivery_id,
            "body": raw,
            "headers": kept,
            "received_at": now,
            "attempt": attempt,
        }
        return self._run(self._world.runtime.deliver_webhook(self.name, endpoint, event))

    def emit(self, topic: str, payload: Any = None) -> int:
        """Publish an event from the host and wait until it was handled (``events.emit``)."""
        __tracebackhide__ = True
        return int(self.events.emit(topic, payload))

    def _run(self, awaitable: Any) -> Any:
        """Run a call into the plugin, then let every event it published be delivered, so a
        test sees the call's whole effect when it returns."""
        __tracebackhide__ = True
        events = self._world.runtime.events

        async def settled() -> Any:
            try:
                return await awaitable
            finally:
                await events.drain()

        try:
            return self._runner.run(settled())
        except PlugportError as exc:
            _reraise(exc)

    # --- what it did ----------------------------------------------------------------------

    @property
    def calls(self) -> list[CapabilityCall]:
        """Every capability call the plugin made, oldest first."""
        found = []
        for activity in list(self._world.activity):
            if activity.plugin != self.name or activity.kind != "capability":
                continue
            capability, _, method = activity.name.partition(".")
            verdict = "denied" if activity.outcome == "denied" else "granted"
            found.append(CapabilityCall(capability, method, verdict, activity.detail))
        return found

    @property
    def logs(self) -> list[str]:
        """The plugin's log lines as ``LEVEL message``."""
        return [
            f"{a.name.upper()} {a.detail}"
            for a in list(self._world.activity)
            if a.plugin == self.name and a.kind == "log"
        ]

    @property
    def audit(self) -> list[AuditEvent]:
        """The runtime's audit entries for the plugin (activation, denials, crashes), oldest
        first."""
        events = self._runner.call(self._world.runtime.audit.query, plugin=self.name, limit=1000)
        return list(reversed(events))

    # --- assertions -----------------------------------------------------------------------

    def assert_used(self, name: str) -> None:
        """That the plugin called ``name`` (``"storage.set"``) and was allowed to."""
        __tracebackhide__ = True
        if not any(c.name == name and c.verdict == "granted" for c in self.calls):
            raise AssertionError(f"{self.name} never used {name}; {self._what_it_did()}")

    def assert_denied(self, name: str) -> None:
        """That the plugin tried ``name`` and the host refused it."""
        __tracebackhide__ = True
        if not any(c.name == name and c.verdict == "denied" for c in self.calls):
            raise AssertionError(f"{self.name} was never denied {name}; {self._what_it_did()}")

    def assert_no_denials(self) -> None:
        __tracebackhide__ = True
        denied = [c for c in self.calls if c.verdict == "denied"]
        if denied:
            listed = "\n".join(f"  - {c}" for c in denied)
            raise AssertionError(f"{self.name} was denied {len(denied)} call(s):\n{listed}")

    def assert_only_declared(self) -> None:
        """That the plugin used only what its manifest declares: nothing was denied, and every
        capability it used is one the manifest grants."""
        __tracebackhide__ = True
        self.assert_no_denials()
        undeclared = sorted({c.name for c in self.calls if not self._declared(c)})
        if undeclared:
            raise AssertionError(
                f"{self.name} used {', '.join(undeclared)}, which {self.path / 'plugport.toml'} "
                "does not declare in [permissions]"
            )

    def assert_audited(self, kind: str) -> None:
        """That the runtime recorded an audit entry of ``kind`` (``deny``, ``crash`` ...)."""
        __tracebackhide__ = True
        if not any(event.kind == kind for event in self.audit):
            seen = ", ".join(f"{e.kind} ({e.reason})" for e in self.audit) or "none"
            raise AssertionError(f"no {kind!r} audit entry for {self.name}; entries: {seen}")

    def _declared(self, call: CapabilityCall) -> bool:
        if call.capability == "events":
            return bool(self.grants.permissions.events.publish)
        try:
            return not check_grant(self.grants, call.capability, call.method, {})
        except InvalidInputError:
            # A rule that decides on the call's arguments (mail.send's recipients): the call
            # itself was checked with them; here the question is whether anything is granted.
            return RULES[call.capability].declared(self.grants.permissions)
        except PlugportError:
            return False

    def _what_it_did(self) -> str:
        calls = self.calls
        if not calls:
            return "it made no capability calls"
        return "its calls were: " + ", ".join(str(c) for c in calls)

    def close(self) -> None:
        for fake in self._fakes.values():
            self._runner.call(fake.close)

    def __repr__(self) -> str:
        return f"<PluginHandle {self.name} from {self.path}>"
