"""A local fake of Microsoft Teams' two ways in for a notifier: an Office 365 connector
incoming webhook (``https://<tenant>.webhook.office.com/webhookb2/...``) and a Workflows
(Power Automate) webhook trigger (``https://prod-NN.<region>.logic.azure.com/workflows/...``).
Both take a ``message`` whose attachment is an Adaptive Card; the fake checks the card as Teams
renders it and answers as each endpoint does (connector: ``200`` with body ``1``; Workflows:
``202`` with an empty body and JSON errors).

Shapes follow the public references:
https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using
(sending cards to an incoming webhook, the 28 KB size limit, rate limiting),
https://learn.microsoft.com/en-us/power-automate/teams/create-flows-with-webhook ("Post to a
channel when a webhook request is received"),
https://learn.microsoft.com/en-us/azure/logic-apps/logic-apps-http-endpoint (the trigger URL's
``sig`` and 202 answer) and https://adaptivecards.io/explorer/ (element and action schemas).
"""

from __future__ import annotations

import json
import secrets
import threading
import uuid
from typing import Any, ClassVar
from urllib.parse import urlsplit

from plugport.testing.services._service import FakeService, Refusal, Reply, ServiceRequest, route

__all__ = ["ADAPTIVE_CARD", "FakeTeams", "adaptive_card_errors", "teams_message_errors"]

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
VERSIONS = ("1.0", "1.1", "1.2", "1.3", "1.4", "1.5")  # what Teams renders
MAX_MESSAGE_BYTES = 28 * 1024  # a connector message, card included

ELEMENTS = frozenset({"TextBlock", "FactSet", "ColumnSet", "Container", "Image", "ActionSet"})
ACTIONS = frozenset({"Action.OpenUrl", "Action.ShowCard"})
TEXT_COLORS = frozenset({"default", "dark", "light", "accent", "good", "warning", "attention"})
TEXT_SIZES = frozenset({"default", "small", "medium", "large", "extralarge"})
TEXT_WEIGHTS = frozenset({"default", "lighter", "bolder"})
CONTAINER_STYLES = frozenset({"default", "emphasis", "good", "attention", "warning", "accent"})


# --- what Teams refuses (pure) ----------------------------------------------------------------


def teams_message_errors(message: Any) -> list[str]:
    """The problems Teams reports for a webhook ``message`` carrying Adaptive Cards, or []."""
    if not isinstance(message, dict):
        return ["the payload is not a JSON object"]
    if message.get("type") != "message":
        return ["'type' must be 'message'"]
    attachments = message.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return ["'attachments' must be a non-empty array"]
    errors: list[str] = []
    for i, attachment in enumerate(attachments):
        at = f"attachments[{i}]"
        if not isinstance(attachment, dict) or attachment.get("contentType") != ADAPTIVE_CARD:
            errors.append(f"{at}.contentType must be '{ADAPTIVE_CARD}'")
            continue
        errors.extend(adaptive_card_errors(attachment.get("content"), f"{at}.content"))
    return errors


def adaptive_card_errors(card: Any, at: str = "card") -> list[str]:
    """Schema basics of an Adaptive Card as Teams checks them: the type, a version Teams
    renders, body elements and actions of the supported types with their required fields."""
    if not isinstance(card, dict):
        return [f"{at} must be an object"]
    errors: list[str] = []
    if card.get("type") != "AdaptiveCard":
        errors.append(f"{at}.type must be 'AdaptiveCard'")
    version = card.get("version")
    if version not in VERSIONS:
        errors.append(f"{at}.version must be one of {', '.join(VERSIONS)} (got {version!r})")
    body = card.get("body", [])
    if not isinstance(body, list):
        errors.append(f"{at}.body must be an array")
    else:
        for i, element in enumerate(body):
            errors.extend(_element_errors(element, f"{at}.body[{i}]"))
    errors.extend(_actions_errors(card.get("actions", []), f"{at}.actions"))
    return errors


def _element_errors(element: Any, at: str) -> list[str]:  # noqa: PLR0911, PLR0912 - one branch a type
    if not isinstance(element, dict):
        return [f"{at} must be an object"]
    kind = element.get("type")
    if kind not in ELEMENTS:
        return [f"{at}.type {kind!r} is not a supported element ({', '.join(sorted(ELEMENTS))})"]
    if kind == "TextBlock":
        if not isinstance(element.get("text"), str) or not element["text"]:
            return [f"{at}.text is required"]
        # Enum values are case-insensitive in Adaptive Cards ("Bolder" and "bolder").
        for key, allowed in (
            ("color", TEXT_COLORS),
            ("size", TEXT_SIZES),
            ("weight", TEXT_WEIGHTS),
        ):
            if key in element and str(element[key]).lower() not in allowed:
                return [f"{at}.{key} must be one of {', '.join(sorted(allowed))}"]
        return []
    if kind == "FactSet":
        facts = element.get("facts")
        if not isinstance(facts, list) or not facts:
            return [f"{at}.facts must be a non-empty array"]
        bad = [
            i
            for i, fact in enumerate(facts)
            if not isinstance(fact, dict)
            or not isinstance(fact.get("title"), str)
            or not isinstance(fact.get("value"), str)
        ]
        return [f"{at}.facts[{i}] needs string 'title' and 'value'" for i in bad]
    if kind == "Image":
        url = element.get("url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://", "data:")):
            return [f"{at}.url must be an absolute http(s) or data URL"]
        return []
    if kind == "ActionSet":
        return _actions_errors(element.get("actions"), f"{at}.actions", required=True)
    if kind == "Container":
        if "style" in element and str(element["style"]).lower() not in CONTAINER_STYLES:
            return [f"{at}.style must be one of {', '.join(sorted(CONTAINER_STYLES))}"]
        return _items_errors(element.get("items"), f"{at}.items")
    columns = element.get("columns", [])  # ColumnSet
    if not isinstance(columns, list):
        return [f"{at}.columns must be an array"]
    errors: list[str] = []
    for i, column in enumerate(columns):
        if not isinstance(column, dict) or column.get("type", "Column") != "Column":
            errors.append(f"{at}.columns[{i}].type must be 'Column'")
        else:
            errors.extend(_items_errors(column.get("items", []), f"{at}.columns[{i}].items"))
    return errors


def _items_errors(items: Any, at: str) -> list[str]:
    if not isinstance(items, list):
        return [f"{at} must be an array"]
    return [e for i, item in enumerate(items) for e in _element_errors(item, f"{at}[{i}]")]


def _actions_errors(actions: Any, at: str, *, required: bool = False) -> list[str]:
    if not isinstance(actions, list) or (required and not actions):
        return [f"{at} must be {'a non-empty' if required else 'an'} array"]
    errors: list[str] = []
    for i, action in enumerate(actions):
        where = f"{at}[{i}]"
        if not isinstance(action, dict) or action.get("type") not in ACTIONS:
            kind = action.get("type") if isinstance(action, dict) else None
            errors.append(f"{where}.type {kind!r} is not a supported action")
        elif action["type"] == "Action.OpenUrl":
            url = action.get("url")
            if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
                errors.append(f"{where}.url must be an absolute http(s) URL")
        else:
            errors.extend(adaptive_card_errors(action.get("card"), f"{where}.card"))
    return errors


# --- the fake ---------------------------------------------------------------------------------


class FakeTeams(FakeService):
    """Connector and Workflows webhooks on one server. :meth:`connector_url` and
    :meth:`workflow_url` make URLs it accepts; :attr:`cards` holds the Adaptive Cards that
    were posted (each ``{"via": ..., "card": ...}``), oldest first."""

    hosts: ClassVar[tuple[str, ...]] = ("*.webhook.office.com", "*.logic.azure.com")
    name: ClassVar[str] = "teams"

    def __init__(self) -> None:
        super().__init__()
        self.cards: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []
        self._connectors: set[str] = set()
        self._workflows: dict[str, str] = {}  # workflow id -> sig
        self._current = threading.local()

    def connector_url(self, tenant: str = "acme") -> str:
        """A connector incoming-webhook URL as Teams shows it when the webhook is added."""
        group, tenant_id = uuid.uuid4(), uuid.uuid4()
        path = (
            f"/webhookb2/{group}@{tenant_id}/IncomingWebhook/{secrets.token_hex(16)}/{uuid.uuid4()}"
        )
        with self._lock:
            self._connectors.add(path)
        return f"https://{tenant}.webhook.office.com{path}"

    def workflow_url(self, region: str = "westeurope") -> str:
        """A Workflows trigger URL (``…/triggers/manual/paths/invoke?…&sig=…``)."""
        workflow, sig = secrets.token_hex(16), secrets.token_urlsafe(32)
        with self._lock:
            self._workflows[workflow] = sig
        return (
            f"https://prod-{secrets.randbelow(90) + 10}.{region}.logic.azure.com:443/workflows/"
            f"{workflow}/triggers/manual/paths/invoke?api-version=2016-06-01"
            f"&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={sig}"
        )

    def remove(self, url: str) -> None:
        """The channel owner removed the connector (or the flow was deleted)."""
        path = urlsplit(url).path
        with self._lock:
            self._connectors.discard(path)
            self._workflows.pop(path.split("/")[2] if path.startswith("/workflows/") else "", None)

    # --- how each endpoint shapes answers -------------------------------------------------

    def handle(self, request: ServiceRequest) -> Reply:
        self._current.workflow = request.path.startswith("/workflows/")
        return super().handle(request)

    def error_reply(self, status: int, message: str) -> Reply:
        if getattr(self._current, "workflow", False):
            code = {
                429: "WorkflowRequestsThrottled",
                401: "DirectApiInvalidAuthorizationSignature",
                404: "WorkflowNotFound",
            }.get(status, "InvalidRequestContent" if status < 500 else "ServiceUnavailable")
            return Reply(status, json={"error": {"code": code, "message": message}})
        text = message
        if status == 429 or status >= 500:
            text = (
                f"Microsoft Teams endpoint returned HTTP error {status} with ContextId "
                f"tcid=0,server=msgapi-production-weu-azsc2-4-12,cv={uuid.uuid4()}."
            )
        return Reply(status, body=text.encode(), headers={"Content-Type": "text/plain"})

    def _message(self, request: ServiceRequest) -> dict[str, Any]:
        if len(request.body) > MAX_MESSAGE_BYTES:
            raise Refusal(self.error_reply(413, "Message size is too big (over 28 KB)."))
        try:
            message = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            raise Refusal(
                self.error_reply(400, "Bad payload received by generic incoming webhook.")
            ) from None
        problems = teams_message_errors(message)
        if problems:
            raise Refusal(self.error_reply(400, "Invalid card: " + "; ".join(problems)))
        return dict(message)

    def _keep(self, message: dict[str, Any], via: str) -> None:
        with self._lock:
            self.messages.append({"via": via, "message": message})
            for attachment in message["attachments"]:
                self.cards.append({"via": via, "card": attachment["content"]})

    @route("POST", r"/webhookb2/(?P<rest>.+)")
    def connector(self, request: ServiceRequest) -> Reply:
        with self._lock:
            known = request.path in self._connectors
        if not known:
            return self.error_reply(404, "Webhook not found or has been removed.")
        self._keep(self._message(request), "connector")
        return Reply(200, body=b"1", headers={"Content-Type": "text/plain; charset=utf-8"})

    @route("POST", r"/workflows/(?P<id>\w+)/triggers/manual/paths/invoke")
    def workflow(self, request: ServiceRequest) -> Reply:
        with self._lock:
            sig = self._workflows.get(request.params["id"])
        if sig is None:
            return self.error_reply(404, f"The workflow '{request.params['id']}' was not found.")
        given = request.query.get("sig")
        if not given:
            return Reply(
                401,
                json={
                    "error": {
                        "code": "DirectApiAuthorizationRequired",
                        "message": "The request must be authenticated only by Shared Access "
                        "scheme.",
                    }
                },
            )
        if not secrets.compare_digest(given.encode(), sig.encode()):
            return self.error_reply(401, "The provided authorization signature is not valid.")
        if not request.headers.get("content-type", "").startswith("application/json"):
            return self.error_reply(415, "The request content type must be 'application/json'.")
        self._keep(self._message(request), "workflow")
        run = f"08584{secrets.randbelow(10**15):015d}CU{secrets.randbelow(100):02d}"
        return Reply(
            202,
            headers={
                "x-ms-workflow-run-id": run,
                "x-ms-correlation-id": str(uuid.uuid4()),
                "x-ms-tracking-id": str(uuid.uuid4()),
                "x-ms-workflow-name": request.params["id"],
            },
        )
