"""Fuzzing the schedule submitter's entry: every event is submitted or refused, nothing else."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.fuzz.handlers import Subject
from tests.fuzz.harness import HANDLED, Invocation, UnknownResource, at_least, record_counts

pytestmark = pytest.mark.fuzz

#: A queue or job definition no one created: Batch alone knows which exist.
UNKNOWN = (
    UnknownResource("batch.SubmitJob", "ClientException", "does not exist"),
    # after a SubmitJob that failed, the submission looks for a job it may have made
    UnknownResource("batch.ListJobs", "ClientException", "does not exist"),
)


def submitted_or_refused(invocation: Invocation) -> str:
    if invocation.error is not None:
        return invocation.refused(UNKNOWN)
    assert invocation.result["jobs"], invocation.explain("handled, but no job in the answer")
    return HANDLED


def test_every_event_is_submitted_or_refused_before_any_aws_call(
    submitter: Subject, record_property: Callable[[str, object], None]
) -> None:
    # Given the submitter, which submits the sample firing's two jobs (the hook sees them)
    firing = submitter.harness.invoke(submitter.handled)
    assert submitted_or_refused(firing) == HANDLED
    assert firing.calls.count("batch.SubmitJob") == 2

    # When it takes the generated events
    outcomes = submitter.harness.fuzz(submitter.pool, submitted_or_refused)

    # Then each was submitted or refused before any AWS call (submitted_or_refused)
    record_counts(record_property, "submitter", outcomes)
    at_least(outcomes)
