"""Chainer events fuzzing found mishandled: each must be refused, naming the problem,
before any AWS call."""

from __future__ import annotations

from typing import Any

import pytest

from batchwire.chain import ChainRecordsFailed
from tests.fuzz.handlers import Subject
from tests.fuzz.harness import sample
from tests.fuzz.test_fuzz_chainer import request_errors
from tests.fuzz.test_regressions import changed

SNS = sample("sns-job-finished.json")
SQS_RECORD = sample("sqs-chain-batch.json")["Records"][1]
SUCCEEDED = sample("batch-job-succeeded.json")
NO_ENVIRONMENT = changed(
    SUCCEEDED, "detail", {k: v for k, v in SUCCEEDED["detail"].items() if k != "container"}
)
SNS_FIELDS = SNS["Records"][0]["Sns"]


def failures(chainer: Subject, event: Any) -> tuple[list[str], list[str]]:
    invocation = chainer.harness.invoke(event)
    error = invocation.error
    if isinstance(error, ChainRecordsFailed):
        names = [str(o.error) for o in error.outcomes if o.status == "failed"]
    elif error is not None:
        names = [type(error).__name__]
    else:
        names = [
            str(r.__dict__["error"])
            for r in invocation.logs.records
            if r.__dict__.get("status") == "failed"
        ]
    return names, invocation.calls


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(None, id="null"),
        pytest.param([], id="array"),
        pytest.param({"Records": ["x"]}, id="record-a-string"),
        pytest.param({"Records": [{"EventSource": "aws:sns"}]}, id="sns-record-without-Sns"),
        pytest.param(changed(SNS, "Records.0.Sns", "x"), id="Sns-a-string"),
        pytest.param(
            changed(
                SNS, "Records.0.Sns", {k: v for k, v in SNS_FIELDS.items() if k != "MessageId"}
            ),
            id="sns-without-MessageId",
        ),
        pytest.param(
            changed(SNS, "Records.0.Sns.Timestamp", "true"), id="sns-Timestamp-not-a-time"
        ),
        pytest.param(
            changed(SNS, "Records.0.Sns.MessageAttributes.event", {"Type": "String"}),
            id="sns-attribute-without-Value",
        ),
        pytest.param(
            changed(SNS, "Records.0.Sns.MessageId", "95df01b4\ufeff"), id="sns-MessageId-BOM"
        ),
        pytest.param(
            {"Records": [{k: v for k, v in SQS_RECORD.items() if k != "messageId"}]},
            id="sqs-record-without-messageId",
        ),
        pytest.param({"Records": [{**SQS_RECORD, "body": 5}]}, id="sqs-body-a-number"),
        pytest.param(changed(SUCCEEDED, "detail.jobQueue", 5), id="batch-jobQueue-a-number"),
        pytest.param(changed(SUCCEEDED, "time", "true"), id="batch-time-not-a-time"),
        pytest.param(
            changed(SUCCEEDED, "detail.container.environment", ["x"]),
            id="batch-environment-of-strings",
        ),
        pytest.param(
            changed(NO_ENVIRONMENT, "detail.jobArn", "a" * 9000), id="too-large-after-DescribeJobs"
        ),
    ],
)
def test_chainer_refuses_what_no_trigger_sends_before_any_aws_call(
    chainer: Subject, event: Any
) -> None:
    names, calls = failures(chainer, event)
    assert names, "the event was accepted"
    assert all(name in request_errors() for name in names), names
    assert calls == []
