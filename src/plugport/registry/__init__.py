"""The registry and marketplace server (plugport serve)."""
