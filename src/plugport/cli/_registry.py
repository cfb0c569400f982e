"""The CLI's way to a registry: where it is and which token to send (``--registry`` /
``--token``, else ``$PLUGPORT_REGISTRY`` / ``$PLUGPORT_TOKEN``, else what ``plugport login``
stored), and one call that turns the registry's JSON errors into ours."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plugport._tls import default_context
from plugport.errors import InvalidInputError, RegistryResponseError

__all__ = ["Connection", "connect", "credentials_path", "save_credentials"]


def credentials_path() -> Path:
    base = os.environ.get("PLUGPORT_CONFIG_DIR") or Path.home() / ".config" / "plugport"
    return Path(base) / "credentials.json"


def save_credentials(registry: str, token: str) -> Path:
    """Kept 0600: a token is a password."""
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"registry": registry, "token": token}, out)
    tmp.replace(path)
    return path


def _stored() -> dict[str, str]:
    try:
        data = json.loads(credentials_path().read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}


@dataclass
class Connection:
    url: str
    token: str | None

    def call(self, method: str, path: str, **options: Any) -> Any:
        import httpx  # here: only the commands that talk to a registry pay for its import

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            with httpx.Client(
                base_url=self.url, headers=headers, timeout=60, verify=default_context()
            ) as client:
                response = client.request(method, path, **options)
        except httpx.HTTPError as exc:
            raise InvalidInputError(f"cannot reach the registry at {self.url}: {exc}") from None
        if response.is_success:
            return response.json()
        try:
            error = response.json()["error"]
            code, message, details = error["code"], error["message"], error.get("details")
        except (ValueError, KeyError, TypeError):
            code, message, details = "http_error", response.text[:500] or response.reason_phrase, {}
        raise RegistryResponseError(response.status_code, code, message, details)


def connect(registry: str | None, token: str | None, *, need_token: bool = True) -> Connection:
    stored = _stored()
    url = registry or os.environ.get("PLUGPORT_REGISTRY") or stored.get("registry")
    key = token or os.environ.get("PLUGPORT_TOKEN") or stored.get("token")
    if not url:
        raise InvalidInputError(
            "which registry? pass --registry URL, set PLUGPORT_REGISTRY, or run plugport login"
        )
    if need_token and not key:
        raise InvalidInputError("no token: pass --token, set PLUGPORT_TOKEN, or run plugport login")
    return Connection(url.rstrip("/"), key)
