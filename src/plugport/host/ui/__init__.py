"""The host's UI extensions: component trees rendered with the host's own templates."""
