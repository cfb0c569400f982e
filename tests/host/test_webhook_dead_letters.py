"""Dead letters of outbound webhooks, as the operator sees them: the host service's API
(``GET .../deliveries?state=dead``, ``POST .../deliveries/{id}/redeliver``) and
``plugport webhooks dead/redeliver --home``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from plugport.runtime.outbox import NewDelivery, SqliteOutbox
from tests.host._service import Service

PAYLOAD_SECRET = b'{"token":"pay-L0ad-Secr3t"}'


def _dead_letter(state_dir: Path, delivery_id: str = "d1") -> None:
    outbox = SqliteOutbox(state_dir / "outbox.sqlite")
    try:
        now = time.time()
        outbox.enqueue(
            [
                NewDelivery(
                    delivery_id, "acme.hooks", "https://hooks.example.com/in/x", PAYLOAD_SECRET
                )
            ],
            now,
        )
        outbox.claim_due(now, 10)
        outbox.dead(
            delivery_id, now, status=410, error="HTTP 410: the receiver refused the delivery"
        )
    finally:
        outbox.close()


def test_the_api_lists_dead_letters_and_redelivers_them(service: Service) -> None:
    token = service.workspace("hooks")
    _dead_letter(service.home("hooks") / "runtime")
    ws = "/api/v1/workspaces/hooks"
    with service.client(token) as client:
        listed = client.get(f"{ws}/deliveries", params={"state": "dead"})
        assert listed.status_code == 200, listed.text
        [row] = listed.json()["items"]
        assert row["id"] == "d1"
        assert row["last_status"] == 410
        assert "pay-L0ad" not in listed.text  # the body is never shown
        redelivered = client.post(f"{ws}/deliveries/d1/redeliver")
        assert redelivered.status_code == 200, redelivered.text
        assert redelivered.json()["state"] in ("pending", "sending")
        assert client.get(f"{ws}/deliveries", params={"state": "dead"}).json()["items"] == []
        again = client.post(f"{ws}/deliveries/d1/redeliver")
        assert again.status_code == 400
        assert "not dead" in again.json()["error"]["message"]
        missing = client.post(f"{ws}/deliveries/nope/redeliver")
        assert missing.status_code == 404
        bad = client.get(f"{ws}/deliveries", params={"state": "lost"})
        assert bad.status_code == 422
        trail = client.get(f"{ws}/audit", params={"subject": "acme.hooks"}).json()["items"]
        assert any("redelivered by token:" in str(a) for a in trail)


def test_the_cli_lists_and_redelivers(run_cli: Any, tmp_path: Path) -> None:
    home = tmp_path / "home"
    _dead_letter(home / "runtime", "d2")
    listed = run_cli("webhooks", "dead", "--home", str(home))
    assert listed.exit_code == 0, listed.output
    assert "d2" in listed.output
    assert "HTTP 410" in listed.output
    assert "pay-L0ad" not in listed.output
    done = run_cli("webhooks", "redeliver", "d2", "--home", str(home))
    assert done.exit_code == 0, done.output
    assert "queued again" in done.output
    assert "no dead deliveries" in run_cli("webhooks", "dead", "--home", str(home)).output
    refused = run_cli("webhooks", "redeliver", "d2", "--home", str(home))
    assert refused.exit_code != 0
    assert "not dead" in refused.output
