"""Helpers the benchmark scripts share, so every script reports percentiles the same way."""

from __future__ import annotations

import statistics
from collections.abc import Iterable


def percentile(ordered: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile of an already sorted, non-empty list."""
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def percentiles(
    samples: Iterable[float], digits: int = 1, *, suffix: str = "", quantiles: Iterable[str] = ()
) -> dict[str, float]:
    """``{"p50": ..., "p95": ..., "p99": ...}`` (keys take ``suffix``, e.g. ``"_ms"``);
    p50 is the median, the others nearest-rank. ``quantiles`` limits the keys reported."""
    ordered = sorted(samples)
    values = {
        "p50": statistics.median(ordered),
        "p95": percentile(ordered, 0.95),
        "p99": percentile(ordered, 0.99),
    }
    wanted = set(quantiles) or set(values)
    return {f"{k}{suffix}": round(v, digits) for k, v in values.items() if k in wanted}
