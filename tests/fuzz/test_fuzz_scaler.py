"""Fuzzing the scaler's entry: any JSON object is a tick; anything else is refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.fuzz.handlers import Subject
from tests.fuzz.harness import HANDLED, Invocation, at_least, record_counts

pytestmark = pytest.mark.fuzz


def scaled_or_refused(invocation: Invocation) -> str:
    if invocation.error is not None:
        return invocation.refused()
    assert invocation.result["cycles"] == 1, invocation.explain("a tick ran no cycle")
    return HANDLED


def test_every_event_is_a_tick_or_refused_before_any_aws_call(
    scaler: Subject, record_property: Callable[[str, object], None]
) -> None:
    # Given the scaler with one queue and its consumer service, which reads both on a tick
    tick = scaler.harness.invoke(scaler.handled)
    assert scaled_or_refused(tick) == HANDLED
    assert "sqs.GetQueueAttributes" in tick.calls

    # When it takes the generated events
    outcomes = scaler.harness.fuzz(scaler.pool, scaled_or_refused)

    # Then each was a tick or refused before any AWS call (scaled_or_refused)
    record_counts(record_property, "scaler", outcomes)
    at_least(outcomes)
