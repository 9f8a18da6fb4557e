"""Fuzzing the watch's entry: a JSON object is a tick (its scheduledTime, when given, an ISO
time with a zone); anything else is refused before any AWS call."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.fuzz.handlers import Subject
from tests.fuzz.harness import HANDLED, Invocation, at_least, record_counts

pytestmark = pytest.mark.fuzz


def judged_or_refused(invocation: Invocation) -> str:
    if invocation.error is not None:
        return invocation.refused()
    assert invocation.result["watched"] == ["nightly"], invocation.explain("nothing watched")
    return HANDLED


def test_every_event_is_a_tick_or_refused_before_any_aws_call(
    watch: Subject, record_property: Callable[[str, object], None]
) -> None:
    # Given the watch over one schedule, whose first firing a tick after it finds missed
    tick = watch.harness.invoke(watch.handled)
    assert judged_or_refused(tick) == HANDLED
    assert "sns.Publish" in tick.calls
    assert {f["verdict"] for f in tick.result["findings"]} == {"missed"}

    # When it takes the generated events
    outcomes = watch.harness.fuzz(watch.pool, judged_or_refused)

    # Then each was a tick or refused before any AWS call (judged_or_refused)
    record_counts(record_property, "watch", outcomes)
    at_least(outcomes)
