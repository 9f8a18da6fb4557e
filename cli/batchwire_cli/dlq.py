"""The stack's failure queues: how deep each is, how old its oldest message, and a peek.

Nothing here deletes or consumes a message: every receive uses ``VisibilityTimeout=0``, so
a message peeked at is visible again at once. A receive still counts: the message's
``ApproximateReceiveCount`` goes up by one per peek.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from batchwire_cli.errors import EXIT_USAGE, CliError
from batchwire_cli.output import Report, silent
from batchwire_cli.redact import redact
from batchwire_cli.stack import Stack, aws_errors

#: SQS returns at most 10 messages per receive.
RECEIVE_BATCH = 10


@dataclass(frozen=True)
class FailureQueue:
    logical_id: str
    short_name: str
    what_lands: str


#: Every failure queue of the template, in the order docs/operations.md describes them.
FAILURE_QUEUES: tuple[FailureQueue, ...] = (
    FailureQueue(
        "FailedInvocationsQueue",
        "failed-invocations",
        "events a function still failed on after Lambda's retries",
    ),
    FailureQueue(
        "SchedulerDeadLetterQueue",
        "scheduler",
        "schedule firings and rule events that could not be delivered",
    ),
    FailureQueue(
        "ChainDeadLetterQueue", "chain", "ChainQueue messages the chainer failed on repeatedly"
    ),
    FailureQueue(
        "RetrierDeadLetterQueue",
        "retrier",
        "ECS tasks the retrier gave up on (attempts used up, exit 4)",
    ),
    FailureQueue(
        "NotifierRuleDeadLetterQueue",
        "notifier-rules",
        "ECS/Batch failure events not delivered to the notifier",
    ),
    FailureQueue(
        "SubscriptionDeadLetterQueue",
        "subscriptions",
        "SNS messages not delivered to their subscriber",
    ),
    FailureQueue(
        "WorkDeadLetterQueue", "work", "WorkQueue messages the dispatcher refused or deferred"
    ),
    FailureQueue(
        "ExampleWorkDeadLetterQueue",
        "example-work",
        "the example consumers' queue messages that kept failing",
    ),
)


def find_failure_queue(name: str) -> FailureQueue:
    """The failure queue a logical id or short name (any case) names; CliError (usage) if none."""
    wanted = name.strip().lower()
    for queue in FAILURE_QUEUES:
        if wanted in (queue.short_name, queue.logical_id.lower()):
            return queue
    known = ", ".join(q.short_name for q in FAILURE_QUEUES)
    raise CliError(f"no failure queue {name!r}: use one of {known}", EXIT_USAGE)


def _sent_at(message: dict[str, Any]) -> datetime | None:
    stamp = message.get("Attributes", {}).get("SentTimestamp")
    return datetime.fromtimestamp(int(stamp) / 1000, UTC) if stamp else None


def peek(sqs: Any, queue_url: str, limit: int, depth: int) -> list[dict[str, Any]]:
    """Up to ``limit`` distinct messages of the ``depth`` queued, oldest first, left in the
    queue (visible again at once)."""
    seen: dict[str, dict[str, Any]] = {}
    wanted = min(limit, depth)
    empty_receives = 0
    # a receive samples some of SQS's servers: ask again until all came or nothing new does
    while len(seen) < wanted and empty_receives < 2:
        answer = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(RECEIVE_BATCH, limit),
            VisibilityTimeout=0,
            WaitTimeSeconds=1,
            MessageSystemAttributeNames=["SentTimestamp", "ApproximateReceiveCount"],
            MessageAttributeNames=["All"],
        )
        new = [m for m in answer.get("Messages", []) if m["MessageId"] not in seen]
        empty_receives = 0 if new else empty_receives + 1
        for message in new:
            seen[message["MessageId"]] = message
    messages = list(seen.values())[:limit]
    return sorted(messages, key=lambda m: _sent_at(m) or datetime.max.replace(tzinfo=UTC))


def _queue_url(stack: Stack, queue: FailureQueue) -> str | None:
    return stack.physical_id(queue.logical_id) or stack.outputs.get(f"{queue.logical_id}Url")


def queue_depths(
    stack: Stack, now: datetime | None = None, report: Report = silent
) -> list[dict[str, Any]]:
    """Each deployed failure queue with its depth and oldest message; non-empty ones first."""
    now = now or datetime.now(UTC)
    sqs = stack.target.client("sqs")
    rows = []
    deployed = [(q, url) for q in FAILURE_QUEUES if (url := _queue_url(stack, q)) is not None]
    for number, (queue, url) in enumerate(deployed, start=1):
        report(f"reading queue {queue.logical_id} ({number} of {len(deployed)})")
        with aws_errors(stack.target, f"reading queue {queue.logical_id}"):
            attributes = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "RedrivePolicy",
                ],
            )["Attributes"]
            depth = int(attributes.get("ApproximateNumberOfMessages", 0))
            # peeking would count towards a redrive policy's maxReceiveCount: never on those
            can_peek = depth > 0 and "RedrivePolicy" not in attributes
            seen = peek(sqs, url, RECEIVE_BATCH, depth) if can_peek else []
        sent = [s for s in (_sent_at(m) for m in seen) if s is not None]
        oldest = min(sent) if sent else None
        rows.append(
            {
                "queue": queue.logical_id,
                "name": queue.short_name,
                "what_lands": queue.what_lands,
                "url": url,
                "depth": depth,
                "in_flight": int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
                "oldest_sent": oldest.isoformat() if oldest else None,
                "oldest_age_seconds": int((now - oldest).total_seconds()) if oldest else None,
                # the oldest of those seen: an older one may hide among those not received
                "oldest_at_least": bool(oldest) and depth > len(seen),
            }
        )
    return sorted(rows, key=lambda row: row["depth"] == 0)


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return None


def _unwrap(body: Any) -> dict[str, Any]:
    """What a body is, and its content one envelope down (SNS notification, SQS/SNS event)."""
    if not isinstance(body, dict):
        return {"kind": "text" if body is None else "json"}
    context = body.get("requestContext")
    if isinstance(context, dict) and "functionArn" in context:
        response = body.get("responsePayload")
        response = response if isinstance(response, dict) else {}
        return {
            "kind": "lambda-failure",
            "condition": context.get("condition"),
            "function": context.get("functionArn"),
            "approximate_invoke_count": context.get("approximateInvokeCount"),
            "error_type": response.get("errorType"),
            "error_message": response.get("errorMessage"),
            "request_payload": body.get("requestPayload"),
        }
    if body.get("Type") == "Notification" and "Message" in body:
        message = body["Message"]
        parsed = _parse_json(message) if isinstance(message, str) else None
        return {
            "kind": "sns-notification",
            "topic": body.get("TopicArn"),
            "subject": body.get("Subject"),
            "published": body.get("Timestamp"),
            "message": message if parsed is None else parsed,
        }
    records = body.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict):
        source = records[0].get("eventSource") or records[0].get("EventSource")
        if source == "aws:sqs":
            bodies = [r.get("body", "") for r in records]
            return {
                "kind": "sqs-event",
                "messages": [_parse_json(b) or b for b in bodies],
            }
        if source == "aws:sns":
            sns = [r.get("Sns", {}) for r in records]
            return {
                "kind": "sns-event",
                "topic": sns[0].get("TopicArn"),
                "messages": [_parse_json(s.get("Message", "")) or s.get("Message") for s in sns],
            }
    return {"kind": "json"}


def describe_message(message: dict[str, Any], now: datetime) -> dict[str, Any]:
    """One queued message, readable and redacted: when, how often received, what it is."""
    sent = _sent_at(message)
    body_text = message.get("Body", "")
    body = _parse_json(body_text)
    attributes = {
        name: value.get("StringValue", value.get("BinaryValue", ""))
        for name, value in message.get("MessageAttributes", {}).items()
    }
    described = {
        "message_id": message["MessageId"],
        "sent": sent.isoformat() if sent else None,
        "age_seconds": int((now - sent).total_seconds()) if sent else None,
        "receive_count": int(message.get("Attributes", {}).get("ApproximateReceiveCount", 0)),
        "attributes": {k: v if isinstance(v, str) else repr(v) for k, v in attributes.items()},
        **_unwrap(body),
        "body": body if body is not None else body_text,
    }
    redacted: dict[str, Any] = redact(described)
    return redacted


def show_queue(
    stack: Stack, name: str, limit: int, now: datetime | None = None, report: Report = silent
) -> dict[str, Any]:
    """Up to ``limit`` messages of one failure queue, oldest first, never consumed."""
    now = now or datetime.now(UTC)
    queue = find_failure_queue(name)
    url = _queue_url(stack, queue)
    if url is None:
        raise CliError(
            f"queue {queue.short_name} ({queue.logical_id}) is not deployed in stack {stack.name}"
        )
    sqs = stack.target.client("sqs")
    report(f"reading queue {queue.logical_id}")
    with aws_errors(stack.target, f"reading queue {queue.logical_id}"):
        try:
            attributes = sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "RedrivePolicy"]
            )["Attributes"]
        except sqs.exceptions.QueueDoesNotExist:
            raise CliError(
                f"queue {queue.logical_id} of stack {stack.name} not found ({url}): "
                "deleted outside CloudFormation?"
            ) from None
        if "RedrivePolicy" in attributes:
            raise CliError(
                f"queue {queue.logical_id} has a redrive policy: peeking would count towards "
                "its maxReceiveCount; read it in the SQS console instead"
            )
        depth = int(attributes.get("ApproximateNumberOfMessages", 0))
        report(f"peeking at {min(limit, depth)} of the {depth} message(s) of {queue.logical_id}")
        messages = peek(sqs, url, limit, depth)
    return {
        "queue": queue.logical_id,
        "name": queue.short_name,
        "what_lands": queue.what_lands,
        "url": url,
        "depth": depth,
        "messages": [describe_message(m, now) for m in messages],
    }
