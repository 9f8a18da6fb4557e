"""Envelopes a message comes in: the SQS event itself, and the SNS notification that other
services wrap a message in as they reach an SQS queue."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import msgspec

from batchwire.errors import RequestError, describe_validation_error

#: A character SQS does not let a message body hold (it takes XML's characters only).
_NOT_IN_SQS_BODY = re.compile(r"[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class _SqsRecord(msgspec.Struct, frozen=True):
    """The fields of an SQS record batchwire reads; Lambda's poller may add others."""

    messageId: Annotated[str, msgspec.Meta(min_length=1)]
    receiptHandle: str
    body: Annotated[str, msgspec.Meta(min_length=1)]
    eventSource: Literal["aws:sqs"]
    attributes: dict[str, str] = {}


#: The largest message SQS holds, in bytes of UTF-8 (1 MiB).
MAX_SQS_MESSAGE_BYTES = 1_048_576

#: What a missing attribute of an SQS record is reported as.
REQUIRED_ATTRIBUTE = "required, SQS sends it with every message"

_JSON_KINDS = {type(None): "null", bool: "boolean", int: "number", float: "number", str: "string"}


class _SqsEvent(msgspec.Struct, frozen=True):
    Records: Annotated[list[_SqsRecord], msgspec.Meta(min_length=1)]


def check_sqs_event(event: Any, attributes: Sequence[str] = ()) -> None:
    """Refuse ``event`` unless it is an SQS event as Lambda's poller delivers one, whose
    records have ``attributes`` (``SentTimestamp``...): RequestError naming each wrong field.

    Such an event cannot come from a queue (an empty body, a record without messageId, an
    SNS record): someone made it by hand, and no record of it is worth handling.
    """
    if not isinstance(event, dict):
        kind = _JSON_KINDS.get(type(event), "array")
        raise RequestError("not an SQS event", [f"(event): expected an object, got {kind}"])
    try:
        parsed = msgspec.convert(event, _SqsEvent)
    except msgspec.ValidationError as error:
        raise RequestError("not an SQS event", describe_validation_error(error, event)) from None
    problems = []
    for index, record in enumerate(parsed.Records):
        size = len(record.body.encode())
        if size > MAX_SQS_MESSAGE_BYTES:
            problems.append(
                f"Records[{index}].body: {size:,} bytes, over the {MAX_SQS_MESSAGE_BYTES:,} "
                "of the largest message SQS holds"
            )
        odd = _NOT_IN_SQS_BODY.search(record.body)
        if odd:
            problems.append(
                f"Records[{index}].body: holds U+{ord(odd[0]):04X} at {odd.start()}, a "
                "character SQS does not take in a message"
            )
        problems.extend(
            f"Records[{index}].attributes.{name}: {REQUIRED_ATTRIBUTE}"
            for name in attributes
            if name not in record.attributes
        )
    if problems:
        raise RequestError("not an SQS event", problems)


def sns_notification(body: str) -> dict[str, Any] | None:
    """The SNS notification envelope ``body`` is (an SNS subscription without raw delivery),
    or None when it is a message of its own. Its fields are left for the caller to check."""
    if not body.lstrip().startswith("{"):
        return None
    try:
        document = json.loads(body)
    except json.JSONDecodeError:
        return None
    if isinstance(document, dict) and document.get("Type") == "Notification":
        return document
    return None
