"""Fuzzing the log notifier's entry: every event posted, held back, ignored or refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.fuzz.handlers import Subject
from tests.fuzz.harness import HANDLED, IGNORED, Invocation, at_least, record_counts

pytestmark = pytest.mark.fuzz


def posted_ignored_or_refused(invocation: Invocation) -> str:
    # a post Slack refused (a payload breaking Block Kit's limits) is an error, not a refusal
    if invocation.error is not None:
        return invocation.refused()
    return HANDLED if invocation.result["alerts"] else IGNORED


def test_every_event_is_posted_ignored_or_refused_before_any_aws_call(
    notifier: Subject, record_property: Callable[[str, object], None]
) -> None:
    # Given the notifier, whose sample traceback reaches the Slack stand-in once
    traceback = notifier.harness.invoke(notifier.handled)
    assert posted_ignored_or_refused(traceback) == HANDLED
    assert traceback.posts == 1
    assert "secrets-manager.GetSecretValue" in traceback.calls

    # When it takes the generated events
    outcomes = notifier.harness.fuzz(notifier.pool, posted_ignored_or_refused)

    # Then each was posted (or held back by flood control), ignored, or refused before any
    # AWS call and any post (posted_ignored_or_refused)
    record_counts(record_property, "notifier", outcomes)
    at_least(outcomes)
