"""A dashboard tile that charts one of the host's metrics from a short history it keeps."""

from metrics_widget.plugin import MetricsWidget

__all__ = ["MetricsWidget"]
