"""The host's secrets: the OAuth2 broker that obtains, refreshes and revokes tokens for the
plugins' credentials (and, beside it, the encrypted store)."""
