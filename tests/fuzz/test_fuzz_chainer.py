"""Fuzzing the chainer's entry: every record chained, left alone or refused, nothing else."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from batchwire.chain import ChainRecordsFailed
from batchwire.errors import RequestError
from tests.fuzz.handlers import Subject
from tests.fuzz.harness import (
    HANDLED,
    IGNORED,
    RECORDS_REFUSED,
    Invocation,
    UnknownResource,
    at_least,
    record_counts,
)

pytestmark = pytest.mark.fuzz

#: A rule names a queue or job definition; Batch alone knows which exist.
UNKNOWN = (
    UnknownResource("batch.SubmitJob", "ClientException", "does not exist"),
    # after a SubmitJob that failed, the submission looks for a job it may have made
    UnknownResource("batch.ListJobs", "ClientException", "does not exist"),
)


def request_errors() -> frozenset[str]:
    """The class names of RequestError and its subclasses (the chainer logs failures by name)."""
    names, pending = {RequestError.__name__}, [RequestError]
    while pending:
        for subclass in pending.pop().__subclasses__():
            names.add(subclass.__name__)
            pending.append(subclass)
    return frozenset(names)


def chained_ignored_or_refused(invocation: Invocation) -> str:
    error = invocation.error
    if isinstance(error, ChainRecordsFailed):  # SNS: the others chained, then it raises
        statuses = [outcome.status for outcome in error.outcomes]
        errors = [outcome.error for outcome in error.outcomes if outcome.status == "failed"]
    elif error is not None:
        return invocation.refused(UNKNOWN)
    else:
        # each record's outcome as the handler logs it (SQS answers with the failures only)
        statuses = invocation.logs.fields("status")
        errors = [
            record.__dict__.get("error", "")
            for record in invocation.logs.records
            if record.__dict__.get("status") == "failed"
        ]
    if any(name not in request_errors() for name in errors):
        raise AssertionError(invocation.explain(f"records failed for untyped errors {errors}"))
    if "chained" in statuses:
        return HANDLED
    if invocation.calls:
        raise AssertionError(invocation.explain("nothing chained, yet AWS was called"))
    return RECORDS_REFUSED if errors else IGNORED


def test_every_record_is_chained_ignored_or_refused(
    chainer: Subject, record_property: Callable[[str, object], None]
) -> None:
    # Given the chainer with the local workload's rules, which chains the sample message
    published = chainer.harness.invoke(chainer.handled)
    assert chained_ignored_or_refused(published) == HANDLED
    assert "batch.SubmitJob" in published.calls

    # When it takes the generated events
    outcomes = chainer.harness.fuzz(chainer.pool, chained_ignored_or_refused)

    # Then each record was chained, ignored or refused (chained_ignored_or_refused)
    record_counts(record_property, "chainer", outcomes)
    at_least(outcomes)
