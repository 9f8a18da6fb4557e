"""The partial batch answer the three SQS functions give (ReportBatchItemFailures)."""

from __future__ import annotations

import pytest

from batchwire.sqs_batch import QueueRecord, partial_batch_response


def sqs_event(*bodies: str) -> dict[str, object]:
    return {
        "Records": [
            {"messageId": f"m-{index}", "body": body, "eventSource": "aws:sqs"}
            for index, body in enumerate(bodies)
        ]
    }


def test_failed_records_are_named_and_the_rest_are_handled_in_order() -> None:
    # Given a handler that fails the records whose body says so
    seen: list[str] = []

    def handle(record: QueueRecord) -> None:
        seen.append(record.body)
        if record.body.startswith("bad"):
            raise ValueError(record.body)

    # When a batch of four, two bad, is answered
    answer = partial_batch_response(sqs_event("one", "bad two", "three", "bad four"), handle)

    # Then every record was handled once, in order, and only the bad ones stay in the queue
    assert seen == ["one", "bad two", "three", "bad four"]
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-1"}, {"itemIdentifier": "m-3"}]}


def test_a_batch_that_fails_whole_is_answered_not_raised() -> None:
    # Given a handler that fails everything
    def handle(record: QueueRecord) -> None:
        raise RuntimeError("down")

    # When a batch of two is answered, Then both are named: SQS keeps them both
    answer = partial_batch_response(sqs_event("a", "b"), handle)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-0"}, {"itemIdentifier": "m-1"}]}


def test_an_error_that_is_not_an_exception_is_not_swallowed() -> None:
    # Given a handler interrupted (Lambda's timeout, a KeyboardInterrupt)
    def handle(record: QueueRecord) -> None:
        raise KeyboardInterrupt

    # Then it goes up: the invocation fails, and SQS delivers the whole batch again
    with pytest.raises(KeyboardInterrupt):
        partial_batch_response(sqs_event("a"), handle)


def test_a_record_reads_its_fields_as_the_event_source_sent_them() -> None:
    # Given a record as Lambda's SQS event source sends it, and one without attributes
    sent = {
        "messageId": "m-1",
        "receiptHandle": "handle-1",
        "body": "hello",
        "attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1796040000000"},
    }
    bare = QueueRecord({"messageId": "m-2"})

    # Then each field reads as sent, and what is absent reads empty
    record = QueueRecord(sent)
    assert (record.message_id, record.receipt_handle, record.body) == ("m-1", "handle-1", "hello")
    assert record.attribute("ApproximateReceiveCount") == "2"
    assert record.attribute("ApproximateFirstReceiveTimestamp") == ""
    assert (bare.body, bare.receipt_handle, bare.attribute("SentTimestamp")) == ("", "", "")
