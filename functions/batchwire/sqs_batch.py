"""Partial batch responses for the SQS event sources (``ReportBatchItemFailures``).

Each record of the batch is handled on its own; a record whose handler raises is listed in
``batchItemFailures``, so SQS delivers that one again after its visibility timeout (and
moves it to the dead-letter queue after the queue's maxReceiveCount) while the others are
deleted. A batch whose every record failed is answered the same way, never by raising:
SQS keeps the records either way, and the answer names each one.

This is the one behaviour of Powertools' batch utility the functions use. That utility
also brings asyncio and its Kinesis, DynamoDB-stream and pydantic support into the import
(about 30 ms of each cold start, by ``python -m bench --importtime``), so the three SQS
functions answer with this instead. None of the queues is FIFO: a failed record does not
hold back the records after it. Records are read through ``QueueRecord``, not Powertools'
``SQSRecord``: importing any of its data classes imports them all (about 16 ms).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class QueueRecord:
    """One record of a Lambda SQS event (``Records[i]``), as the event source sent it."""

    raw_event: Mapping[str, Any]

    @property
    def message_id(self) -> str:
        return str(self.raw_event["messageId"])

    @property
    def body(self) -> str:
        body = self.raw_event.get("body")
        return body if isinstance(body, str) else ""

    @property
    def receipt_handle(self) -> str:
        return str(self.raw_event.get("receiptHandle") or "")

    def attribute(self, name: str) -> str:
        """A system attribute (``SentTimestamp``, ``ApproximateReceiveCount``); "" if absent."""
        attributes = self.raw_event.get("attributes")
        value = attributes.get(name) if isinstance(attributes, Mapping) else None
        return value if isinstance(value, str) else ""


def partial_batch_response(
    event: Mapping[str, Any], handle: Callable[[QueueRecord], object]
) -> dict[str, list[dict[str, str]]]:
    """Run ``handle`` on each record of an SQS event, in order; the failed ones, for SQS.

    The event must already be checked as an SQS event (``batchwire.envelopes``): every
    record is a mapping with a ``messageId``. An exception from ``handle`` fails its record
    only; ``handle`` logs why, as the caller knows best what the failure means.
    """
    failures: list[dict[str, str]] = []
    for raw in event["Records"]:
        record = QueueRecord(raw)
        try:
            handle(record)
        except Exception:
            failures.append({"itemIdentifier": record.message_id})
    return {"batchItemFailures": failures}
