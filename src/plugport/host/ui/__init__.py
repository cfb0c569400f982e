"""Plugin UI rendered by the host from data: component trees drawn as HTML and SVG, never code."""
