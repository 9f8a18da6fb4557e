"""Pure helpers of the benchmarks: medians, ratios, targets and the printed table."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Comparison = Literal["ratio<=", "delta<=", "value<=", "info"]


def median(samples: Sequence[float]) -> float:
    """Median of at least one sample (a ValueError names the empty input)."""
    if not samples:
        raise ValueError("median of no samples: the benchmark produced no measurement")
    return float(statistics.median(samples))


def ratio(value: float, baseline: float) -> float:
    """``value / baseline``; a baseline of 0 or less cannot be a denominator."""
    if baseline <= 0:
        raise ValueError(f"baseline must be positive to form a ratio, got {baseline!r}")
    return value / baseline


@dataclass(frozen=True)
class Target:
    """What a measurement must meet.

    ``ratio<=``: value / baseline <= limit; ``delta<=``: value - baseline <= limit;
    ``value<=``: value <= limit; ``info``: printed, never a miss.
    """

    comparison: Comparison
    limit: float = 0.0
    unit: str = ""

    def compared(self, value: float, baseline: float | None) -> float:
        """The number the limit applies to (the ratio, the difference or the value)."""
        if self.comparison == "ratio<=":
            return ratio(value, _need(baseline, self))
        if self.comparison == "delta<=":
            return value - _need(baseline, self)
        return value

    def met(self, value: float, baseline: float | None) -> bool:
        """True when the measurement meets the target (always True for ``info``)."""
        if self.comparison == "info":
            return True
        return self.compared(value, baseline) <= self.limit

    def describe(self) -> str:
        if self.comparison == "ratio<=":
            return f"<= {self.limit:g}x"
        if self.comparison == "delta<=":
            return f"<= +{self.limit:g} {self.unit}".rstrip()
        if self.comparison == "value<=":
            return f"<= {self.limit:,g} {self.unit}".rstrip()
        return "(info)"


def _need(baseline: float | None, target: Target) -> float:
    if baseline is None:
        raise ValueError(f"target {target.describe()} needs a baseline measurement")
    return baseline


@dataclass(frozen=True)
class Row:
    """One line of the table: a measurement, its baseline and the target it is held to."""

    measurement: str
    value: float | None
    baseline: float | None
    target: Target
    unit: str = ""
    note: str = ""

    @property
    def skipped(self) -> bool:
        return self.value is None

    @property
    def passed(self) -> bool:
        return self.value is not None and self.target.met(self.value, self.baseline)

    def verdict(self) -> str:
        if self.value is None:
            return "SKIP"
        if self.target.comparison == "info":
            return "info"
        return "PASS" if self.passed else "MISS"

    def cells(self) -> list[str]:
        value = "-" if self.value is None else _fmt(self.value, self.unit)
        baseline = "-" if self.baseline is None else _fmt(self.baseline, self.unit)
        compared = "-"
        if self.value is not None:
            if self.target.comparison == "ratio<=" or (
                self.target.comparison == "info" and self.baseline
            ):
                compared = f"{ratio(self.value, self.baseline or 1.0):.2f}x"
            elif self.target.comparison == "delta<=":
                compared = f"{self.target.compared(self.value, self.baseline):+.2f} {self.unit}"
            else:
                compared = _fmt(self.value, self.unit)
        return [self.measurement, value, baseline, compared, self.target.describe(), self.verdict()]


HEADERS = ["measurement", "value", "baseline", "ratio / delta / count", "target", "result"]


def render_table(rows: Sequence[Row]) -> str:
    """A plain-text table (also valid Markdown), notes listed under it."""
    table = [HEADERS, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADERS))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [line(HEADERS), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out.extend(line(cells) for cells in table[1:])
    notes = [f"- {row.measurement}: {row.note}" for row in rows if row.note]
    if notes:
        out.extend(["", *notes])
    return "\n".join(out)


def misses(rows: Sequence[Row]) -> list[Row]:
    """Rows that were measured and missed their target."""
    return [row for row in rows if not row.skipped and not row.passed]


def _fmt(number: float, unit: str) -> str:
    if unit == "ms":
        return f"{number:.2f} ms"
    if unit == "MB":
        return f"{number:.1f} MB"
    if unit == "KB":
        return f"{number:,.0f} KB"
    if float(number).is_integer():
        return f"{int(number):,}{' ' + unit if unit else ''}"
    return f"{number:.3g}{' ' + unit if unit else ''}"
