"""Finding ``self.api`` uses and ``@on_event`` handlers in source, without running it."""

from __future__ import annotations

import ast
import textwrap

from plugport._api_usage import ApiUse, EventHandler, find_api_uses, find_event_handlers


def uses(source: str) -> list[tuple[int, str, str, str | None]]:
    tree = ast.parse(textwrap.dedent(source))
    return [(u.line, u.capability, u.method, u.argument) for u in find_api_uses("p.py", tree)]


def test_direct_sync_and_aliased_uses_with_their_lines() -> None:
    found = uses(
        """
        class P:
            async def a(self):
                await self.api.storage.get("k")
                api = self.api
                await api.events.publish("tasks.done", {})
                store = api.storage
                await store.set("k", 1)

            def b(self):
                self.api.sync.ui.message("hi")
                sync = self.api.sync
                sync.config.get()
        """
    )
    assert found == [
        (4, "storage", "get", None),
        (6, "events", "publish", "tasks.done"),
        (8, "storage", "set", None),
        (11, "ui", "message", None),
        (13, "config", "get", None),
    ]


def test_literal_arguments_from_constants_prefixes_and_keywords() -> None:
    found = uses(
        """
        TOPIC = "billing.paid"
        BASE = "https://api.example.com"

        class P:
            async def a(self, path, host):
                await self.api.events.publish(TOPIC)
                await self.api.events.publish(topic="a." + path)
                await self.api.net.fetch(url=BASE + "/v1/" + path)
                await self.api.net.fetch(f"https://hooks.example.com:8443/{path}")
                await self.api.net.fetch(BASE + path)
                await self.api.net.fetch(f"https://{host}/x")
        """
    )
    assert [argument for *_, argument in found] == [
        "billing.paid",
        None,  # a topic is decided only when all of it is known
        "https://api.example.com/v1/",
        "https://hooks.example.com:8443/",
        None,  # the host could still go on: "https://api.example.com" + ".evil.test"
        None,
    ]


def test_an_alias_holds_until_rebound_and_closures_see_its_last_value() -> None:
    found = uses(
        """
        class P:
            async def a(self):
                api = self.api
                await api.storage.keys()
                async def inner():
                    await api.config.get()
                return inner

            async def b(self):
                api = self.api
                await api.storage.get("k")
                api = object()
                api.storage.set("not ours", 1)
        """
    )
    assert found == [
        (5, "storage", "keys", None),
        (7, "config", "get", None),
        (12, "storage", "get", None),
    ]


def test_a_referenced_method_counts_where_it_is_taken_and_where_it_is_called() -> None:
    found = uses(
        """
        class P:
            async def a(self):
                fetch = self.api.net.fetch
                await fetch("https://api.example.com/x")
        """
    )
    assert found == [(4, "net", "fetch", None), (5, "net", "fetch", "https://api.example.com/x")]


def test_other_objects_called_api_are_not_capability_uses() -> None:
    assert (
        uses(
            """
            class P:
                def a(self, other):
                    other.api.storage.get("k")
                    self.apis.storage.get("k")
                    self.api.storage
                    self.api.sync
            """
        )
        == []
    )


def test_misspelled_capabilities_are_found_for_the_checks_to_refuse() -> None:
    tree = ast.parse("class P:\n    def a(self):\n        self.api.stroage.get('k')\n")
    assert find_api_uses("p.py", tree) == [ApiUse("p.py", 3, "stroage", "get")]


def test_event_handlers_with_literal_topics() -> None:
    tree = ast.parse(
        textwrap.dedent(
            """
            from plugport import sdk
            from plugport.sdk import on_event

            class P:
                @on_event("tasks.*")
                async def a(self, event): ...

                @sdk.on_event("billing.paid")
                def b(self, event): ...

                @on_event(TOPIC)
                def c(self, event): ...
            """
        )
    )
    assert find_event_handlers("p.py", tree) == [
        EventHandler("p.py", 7, "tasks.*"),
        EventHandler("p.py", 10, "billing.paid"),
    ]


def test_the_task_type_of_a_submit_is_its_deciding_argument() -> None:
    found = uses(
        """
        KIND = "GITHUB_PR_REVIEW"

        class P:
            async def a(self, task):
                await self.api.tasks.submit("RESIZE", {"w": 1})
                await self.api.tasks.submit(task_type=KIND)
                await self.api.tasks.submit(task.payload["next"], {})
                await self.api.tasks.progress(50, "half")
        """
    )
    assert found == [
        (6, "tasks", "submit", "RESIZE"),
        (7, "tasks", "submit", "GITHUB_PR_REVIEW"),
        (8, "tasks", "submit", None),
        (9, "tasks", "progress", None),
    ]


def test_the_surface_an_invalidation_names_is_its_argument() -> None:
    found = uses(
        """
        TILE = "acme.tile"

        class P:
            async def a(self, which):
                await self.api.ui.invalidate("acme.board")
                await self.api.ui.invalidate(surface_id=TILE)
                self.api.sync.ui.invalidate(which)
                await self.api.ui.update_widget(TILE, {"v": 1})
                await self.api.ui.message("acme.board")
        """
    )
    assert found == [
        (6, "ui", "invalidate", "acme.board"),
        (7, "ui", "invalidate", "acme.tile"),
        (8, "ui", "invalidate", None),
        (9, "ui", "update_widget", "acme.tile"),
        (10, "ui", "message", None),
    ]
