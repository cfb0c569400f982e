"""Business logic the routes call: each takes a session and data, never a request."""
