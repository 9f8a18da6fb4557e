"""Fuzzing the queue dispatcher's entry: every message started or refused, nothing else."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.fuzz.handlers import Subject
from tests.fuzz.harness import HANDLED, RECORDS_REFUSED, Invocation, at_least, record_counts

pytestmark = pytest.mark.fuzz

#: Outcomes of a message that can leave the queue: its task started (now or before).
STARTED = ("started", "duplicate")


def started_or_refused(invocation: Invocation) -> str:
    if invocation.error is not None:  # not an SQS event at all
        return invocation.refused()
    statuses = [
        (status, record.__dict__.get("error"))
        for record in invocation.logs.records
        if (status := record.__dict__.get("status")) is not None
    ]
    others = [outcome for outcome in statuses if outcome[0] not in (*STARTED, "refused")]
    if others:
        raise AssertionError(invocation.explain(f"messages neither started nor refused: {others}"))
    if any(status in STARTED for status, _ in statuses):
        return HANDLED
    # the running tasks are counted once per batch (docs/dispatcher.md); a refused message
    # goes to the dead-letter queue at once: that is how the dispatcher refuses
    extra = [call for call in invocation.calls if call not in ("ecs.ListTasks", "sqs.SendMessage")]
    if extra or invocation.calls.count("sqs.SendMessage") > len(statuses):
        raise AssertionError(invocation.explain("nothing started, yet AWS was called"))
    return RECORDS_REFUSED


def test_every_message_is_started_or_refused_before_any_run_task(
    dispatcher: Subject, record_property: Callable[[str, object], None]
) -> None:
    # Given the dispatcher, which starts a task for each sample message (the hook sees it)
    batch = dispatcher.harness.invoke(dispatcher.handled)
    assert started_or_refused(batch) == HANDLED
    assert batch.calls.count("ecs.RunTask") == 3

    # When it takes the generated events
    outcomes = dispatcher.harness.fuzz(dispatcher.pool, started_or_refused)

    # Then each message was started or refused (started_or_refused)
    record_counts(record_property, "dispatcher", outcomes)
    at_least(outcomes)
