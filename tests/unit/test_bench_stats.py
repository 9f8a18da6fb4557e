"""The benchmark's pure helpers: medians, ratios and target verdicts (no benchmark runs)."""

from __future__ import annotations

import math

import pytest

from bench.stats import Row, Target, median, misses, ratio, render_table


def test_median_of_an_even_count_is_the_mean_of_the_middle_two() -> None:
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5


def test_median_of_nothing_says_no_measurement() -> None:
    with pytest.raises(ValueError, match="no samples"):
        median([])


def test_ratio_refuses_a_zero_baseline() -> None:
    assert ratio(3.0, 2.0) == 1.5
    with pytest.raises(ValueError, match="baseline"):
        ratio(1.0, 0.0)


def test_ratio_target_passes_at_the_limit_and_misses_above() -> None:
    target = Target("ratio<=", 1.5)
    assert Row("cold", 150.0, 100.0, target).verdict() == "PASS"
    assert Row("cold", 151.0, 100.0, target).verdict() == "MISS"


def test_delta_target_compares_the_difference_in_its_unit() -> None:
    target = Target("delta<=", 2.0, "ms")
    assert Row("warm", 2.9, 1.0, target, unit="ms").passed
    assert not Row("warm", 3.1, 1.0, target, unit="ms").passed


def test_a_failed_measurement_is_a_miss_and_a_skipped_one_is_not() -> None:
    failed = Row("broken", math.nan, None, Target("value<=", 0.0), note="failed: boom")
    skipped = Row("later", None, None, Target("info"))
    info = Row("allocations", 5.0, 1.0, Target("info"))
    assert misses([failed, skipped, info]) == [failed]


def test_table_shows_each_row_with_its_verdict_and_notes() -> None:
    rows = [
        Row("cold", 300.0, 100.0, Target("ratio<=", 1.5), unit="ms", note="median of 15"),
        Row("rss", 50.0, 40.0, Target("value<=", 64, "MB"), unit="MB"),
    ]
    table = render_table(rows)
    assert "| cold " in table
    assert "3.00x" in table
    assert "MISS" in table
    assert "PASS" in table
    assert "- cold: median of 15" in table
