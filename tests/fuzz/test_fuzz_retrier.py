"""Fuzzing the task retrier's entry: both triggers, every event decided, ignored or refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.fuzz.handlers import Subject
from tests.fuzz.harness import (
    HANDLED,
    IGNORED,
    RECORDS_REFUSED,
    Invocation,
    at_least,
    record_counts,
)

pytestmark = pytest.mark.fuzz

#: What the retrier decides with nothing to do: the task is none of its business, or done.
NOTHING_TO_DO = ("ignore", "done")


def decided_ignored_or_refused(invocation: Invocation) -> str:
    event, error = invocation.event, invocation.error
    if not (isinstance(event, dict) and "Records" in event):  # EventBridge: one stopped task
        if error is not None:
            return invocation.refused()
        return IGNORED if invocation.result["action"] in NOTHING_TO_DO else HANDLED
    if error is not None:
        return invocation.refused()  # not an SQS event at all
    # the delay queue: each record relaunched, waiting, deferred, given up... or refused;
    # a record refused stays in the queue (batchItemFailures) and its log line names why
    untyped = [record.exc_info[1] for record in invocation.logs.records if record.exc_info]
    if untyped:
        raise AssertionError(invocation.explain(f"records failed for untyped errors {untyped!r}"))
    failures = invocation.logs.fields("problems")
    if len(invocation.result["batchItemFailures"]) != len(failures):
        raise AssertionError(invocation.explain("a record stayed in the queue without a reason"))
    actions = [result["action"] for result in invocation.logs.fields("result")]
    if any(action not in NOTHING_TO_DO for action in actions):
        return HANDLED
    if invocation.calls:
        raise AssertionError(invocation.explain("no record was usable, yet AWS was called"))
    return RECORDS_REFUSED if failures else IGNORED


def test_every_event_is_decided_ignored_or_refused_before_any_aws_call(
    retrier: Subject, record_property: Callable[[str, object], None]
) -> None:
    # Given the retrier, whose due relaunch starts the task again (the hook sees RunTask)
    relaunched = retrier.harness.invoke(retrier.handled)
    assert decided_ignored_or_refused(relaunched) == HANDLED
    assert "ecs.RunTask" in relaunched.calls

    # When it takes the generated events, of either trigger
    outcomes = retrier.harness.fuzz(retrier.pool, decided_ignored_or_refused)

    # Then each was decided, ignored or refused (decided_ignored_or_refused)
    record_counts(record_property, "retrier", outcomes)
    at_least(outcomes)
