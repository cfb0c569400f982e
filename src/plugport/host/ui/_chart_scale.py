"""The numbers on a chart's axes and in its text: tick values on 1-2-5 steps, compact labels
(1.2k, 3.4M) and exact ones for the data table.

Pure arithmetic, kept apart from the SVG so it is tested on its own. Every function accepts any
float a JSON document can carry, tiny, huge or equal, and never divides by zero or loops long:
a tick list has at most ``count + 3`` values whatever the input.
"""

from __future__ import annotations

import math

__all__ = [
    "GEOMETRY_LIMIT",
    "finite",
    "format_number",
    "format_plain",
    "nice_ticks",
    "with_unit",
]

GEOMETRY_LIMIT = 1e300
"""Values are clamped to +-this before any arithmetic, so no span overflows to infinity."""

_SUFFIXES = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k"))
_RELATIVE_EPSILON = 1e-12  # a span this small next to its values is treated as no span at all
_SMALLEST_STEP = 1e-250  # below this, powers of ten underflow; no real axis gets near it


def finite(value: object) -> float | None:
    """A JSON number as a float; None for null, booleans, NaN, infinities, huge integers and
    anything that is not a number (so a bad value is a gap, never a crash)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _clamp(value: float) -> float:
    return max(-GEOMETRY_LIMIT, min(GEOMETRY_LIMIT, value))


def _scaled(mantissa: int, exponent: int) -> float:
    """``mantissa * 10**exponent`` rounded once, so 3 steps of 0.1 give 0.3, not
    0.30000000000000004."""
    power: int = 10 ** abs(exponent)
    return float(mantissa * power) if exponent >= 0 else mantissa / power


def nice_ticks(low: float, high: float, count: int = 5) -> tuple[float, ...]:
    """Ascending tick values on a 1, 2 or 5 times a power of ten step that cover
    ``[low, high]`` in about ``count`` intervals; the first is <= low, the last >= high, and
    there are always at least two distinct ticks (equal bounds are widened first)."""
    count = max(1, count)
    low, high = sorted((_clamp(low), _clamp(high)))
    size = max(abs(low), abs(high))
    if high - low <= size * _RELATIVE_EPSILON:
        pad = size * 0.1 if size else 1.0
        low, high = (0.0, 1.0) if not size else (low - pad, high + pad)
    raw = max((high - low) / count, _SMALLEST_STEP)
    exponent = math.floor(math.log10(raw))
    fraction = raw / _scaled(1, exponent)
    nice = next(n for n in (1, 2, 5, 10) if n >= fraction - 1e-9)
    if nice == 10:
        nice, exponent = 1, exponent + 1
    step = _scaled(nice, exponent)
    first = math.floor(low / step + 1e-9)  # the slack keeps 0.3 / 0.1 = 2.9999... at 3
    last = math.ceil(high / step - 1e-9)
    if _scaled(first * nice, exponent) > low:  # ...but never at the cost of covering the range
        first -= 1
    if _scaled(last * nice, exponent) < high:
        last += 1
    last = max(last, first + 1)  # a span far below the smallest step still gets two ticks
    return tuple(_scaled(k * nice, exponent) for k in range(first, last + 1))


def _trimmed(text: str) -> str:
    if "." in text and "e" not in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def format_number(value: float, *, step: float | None = None) -> str:
    """Compact text for a number: ``1.2k``, ``3.4M``, ``0.05``, ``-120``.

    Without ``step``, about three significant digits; with ``step`` (an axis's tick step), just
    enough decimals that neighbouring ticks read differently (``1k``, ``1.5k``, ``2k``)."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e15:
        return f"{value:.3g}".replace("e+", "e")
    for index, (threshold, suffix) in enumerate(_SUFFIXES):
        if magnitude < threshold:
            continue
        scaled = value / threshold
        decimals = _decimals(scaled, None if step is None else step / threshold)
        text = _trimmed(f"{scaled:.{decimals}f}")
        if abs(float(text)) >= 1000 and index > 0:  # 999,960 rounds to "1000k": say "1M"
            bigger, bigger_suffix = _SUFFIXES[index - 1]
            return _trimmed(f"{value / bigger:.{decimals}f}") + bigger_suffix
        return text + suffix
    if step is None and magnitude < 1e-4:
        return f"{value:.2e}".replace("e-0", "e-")
    return _trimmed(f"{value:.{_decimals(value, step)}f}")


def _decimals(value: float, step: float | None) -> int:
    if step is not None and step > 0:
        return max(0, min(12, -math.floor(math.log10(step) + 1e-9)))
    return max(0, min(12, 2 - math.floor(math.log10(abs(value)))))


def format_plain(value: object) -> str:
    """The exact value for the data table: integers as written, floats in their shortest
    round-trip form (``0.1``, ``2.5e-07``), whole floats without ``.0``."""
    if isinstance(value, int) and not isinstance(value, bool):
        if abs(value) < 10**30:
            return str(value)
        try:
            return f"{float(value):.6g}".replace("e+", "e")
        except OverflowError:  # beyond any float: not worth 300 digits
            return "out of range"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return repr(value)
    return str(value)


def with_unit(text: str, unit: str) -> str:
    """``"120 req/s"``; a percent sign follows the number directly (``"72%"``)."""
    if not unit:
        return text
    return text + unit if unit == "%" else f"{text} {unit}"
