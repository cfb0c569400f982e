"""What the runtime finds wrong with a plugin, as the host service shows it: the installation's
JSON and its own ``/problems`` resource, the plugin's page (a Problems section) and the
workspace's list (a badge), the Prometheus gauge and the audit trail; a disabled plugin has
none, since nothing watches it."""

from __future__ import annotations

import html

from tests.host._service import Service, wait_for
from tests.host.test_service_pages import signed_in

V1 = "/api/v1/workspaces"


def test_a_failing_plugins_problems_in_the_api_the_pages_and_the_metrics(
    service: Service,
) -> None:
    token = service.workspace("watch")
    ws = f"{V1}/watch"
    page = "/workspaces/watch/installations/acme.alpha"
    with service.client(token) as client, signed_in(service, token) as browser:
        installed = client.post(f"{ws}/installations", json={"plugin": "acme.alpha"})
        assert wait_for(client, "watch", installed.json())["state"] == "succeeded"
        assert client.get(f"{ws}/installations/acme.alpha/problems").json() == {"items": []}
        healthy = browser.get(page)
        assert healthy.status_code == 200
        assert 'id="problems-heading"' in healthy.text
        assert 'data-testid="no-problems">None found' in healthy.text

        for _ in range(25):
            failed = client.post(f"{ws}/installations/acme.alpha/execute", json={"hook": "fail"})
            assert failed.json()["status"] == "error", failed.text

        found = client.get(f"{ws}/installations/acme.alpha/problems")
        assert found.status_code == 200, found.text
        [problem] = found.json()["items"]
        assert problem["plugin"] == "acme.alpha"
        assert problem["kind"] == "error-rate"
        assert problem["severity"] == "critical"
        assert problem["summary"] == "100.0% of calls failed in the last 5 min (25 of 25)"
        assert problem["numbers"]["failures"] == 25
        assert problem["since"] > 0
        row = client.get(f"{ws}/installations/acme.alpha").json()
        assert [p["kind"] for p in row["problems"]] == ["error-rate"]

        shown = browser.get(page).text
        assert 'data-testid="problem" data-kind="error-rate" data-severity="critical"' in shown
        assert html.escape(problem["summary"]) in shown
        assert html.escape(problem["explanation"]) in shown
        assert "<dt>baseline rate</dt><dd>0.01</dd>" in shown
        listing = browser.get("/workspaces/watch").text
        assert 'data-testid="problems-badge">1 problem: error-rate' in listing

        metrics = client.get(f"{ws}/metrics").text
        assert 'plugport_plugin_problem{kind="error-rate",plugin="acme.alpha"} 1.0' in metrics
        assert 'plugport_plugin_problem{kind="timeouts",plugin="acme.alpha"} 0.0' in metrics
        audit = client.get(f"{ws}/audit", params={"subject": "acme.alpha"}).json()["items"]
        [raised] = [a for a in audit if a["action"] == "problem"]
        assert raised["detail"]["capability"] == "error-rate"
        assert raised["detail"]["reason"].startswith("critical: 100.0% of calls failed")

        missing = client.get(f"{ws}/installations/acme.nope/problems")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"

        # disabled: the runtime stops watching it, and says the finding is over
        assert client.post(f"{ws}/installations/acme.alpha/disable").status_code == 200
        assert client.get(f"{ws}/installations/acme.alpha/problems").json() == {"items": []}
        assert "is disabled: the runtime does not watch it" in browser.get(page).text
        metrics = client.get(f"{ws}/metrics").text
        assert 'plugin="acme.alpha"' not in metrics
        audit = client.get(f"{ws}/audit", params={"subject": "acme.alpha"}).json()["items"]
        [cleared] = [a for a in audit if a["action"] == "problem-cleared"]
        assert cleared["detail"]["capability"] == "error-rate"
