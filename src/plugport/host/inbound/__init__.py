"""Inbound webhooks: verifying a delivery (:mod:`.verifiers`, pure), keeping it durably until
the plugin's handler has taken it (:mod:`.inbox`), and handing it over with retries
(:mod:`.dispatcher`)."""
