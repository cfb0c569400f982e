"""Inbound webhooks: verifying a delivery (:mod:`.verifiers`, pure), keeping it durably until
the plugin's handler has taken it and handing it over with retries (:mod:`.inbox`, on the
host's task queue)."""
